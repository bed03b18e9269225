"""The gateway↔spider contract and the named seams: a picker chosen by path, a converter by setting."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from scrapy.utils.test import get_crawler

from gateway.config import ConfigError
from gateway.nodes.pool import LeastLoaded, NodePool, load_picker
from gateway.nodes.scrapyd import Node, ScrapydClient
from spiders_project.contract import Inputs, PageFacts, RecordStatus
from spiders_project.conversion import PageContent
from spiders_project.gateway_inputs import InputsUnavailable, _get
from spiders_project.items import FetchedPage
from spiders_project.pages import ContentOptions
from spiders_project.pipelines import PageContentPipeline, _content, _page_options


def test_inputs_travel_whole_through_their_json() -> None:
    inputs = Inputs(
        batch_id="b1",
        pages=[(0, "https://example.com/"), (7, "https://example.com/a")],
        options={"formats": ["markdown"]},
        crawl={"url": "https://example.com/", "track_changes": True},
        proxies=["http://u:p@proxy:3128"],
        known={"https://example.com/": {"etag": '"x"'}},
    )
    assert Inputs.from_json(json.loads(json.dumps(inputs.to_json()))) == inputs
    assert "known" not in Inputs(batch_id="b", pages=[], options={}, crawl=None, proxies=[]).to_json()


def test_a_page_record_gives_the_gateway_back_its_facts() -> None:
    facts = PageFacts(0, "https://example.com/", RecordStatus.FAILED, 503, "HTTP_ERROR", "busy", 12, 1)
    record = facts.to_record() | {"markdown": "# hi", "metadata": {}}
    assert PageFacts.of_record(json.loads(json.dumps(record))) == facts
    assert "content_hash" not in record
    assert PageFacts.of_record({"input_index": "0"}) is None
    assert PageFacts.of_record(["not", "a", "record"]) is None


class _Answer(BaseHTTPRequestHandler):
    body = b"{}"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.mark.parametrize("body", [b"{}", b'{"batch_id": "b", "pages": [[0]]}', b"[1, 2]"])
def test_an_answer_that_is_not_inputs_is_inputs_unavailable(
    answering: ThreadingHTTPServer, body: bytes
) -> None:
    _Answer.body = body
    with pytest.raises(InputsUnavailable):
        _get(f"http://127.0.0.1:{answering.server_address[1]}/inputs")


class Second:
    """A picker that takes the second node, whatever the load."""

    async def pick(self, clients: Sequence[ScrapydClient]) -> ScrapydClient:
        return clients[1]


def test_a_node_picker_is_chosen_by_its_path() -> None:
    nodes = [Node.from_url("http://127.0.0.1:1"), Node.from_url("http://127.0.0.1:2")]

    async def pick() -> str:
        async with httpx.AsyncClient() as http:
            pool = NodePool(nodes, http, load_picker("tests.test_seams:Second"))
            return (await pool.pick()).node.url

    assert asyncio.run(pick()) == nodes[1].url
    assert isinstance(load_picker("gateway.nodes.pool.LeastLoaded"), LeastLoaded)
    for wrong in ("gateway.nodes.pool:Nothing", "no_such_module:Picker", "gateway.nodes.pool:NodeHealth"):
        with pytest.raises(ConfigError, match="node_picker"):
            load_picker(wrong)


def shouting_converter(text: str, url: str, options: ContentOptions) -> PageContent:
    return PageContent(markdown=f"CONVERTED {url}", html=None, links=["https://example.com/x"])


def test_the_page_converter_is_a_scrapy_setting() -> None:
    crawler = get_crawler(settings_dict={"PAGE_CONVERTER": "tests.test_seams.shouting_converter"})
    pipeline = PageContentPipeline(crawler)
    page = FetchedPage(
        input_index=0,
        source_url="https://example.com/",
        final_url="https://example.com/",
        content_type="text/html",
        body=b"<html><body><p>hello</p></body></html>",
    )

    record = _content(page, _page_options(crawler), pipeline.convert)

    assert record.markdown == "CONVERTED https://example.com/"
    assert record.links == ["https://example.com/x"]
