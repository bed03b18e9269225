"""Hostile input: each answers 4xx with a JSON error before anything is stored or sent to scrapyd,
and nothing a tenant sends can take a node's slot or the gateway's event loop from the others."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import Gateway, ScrapydNode, start_job, wait_for_status
from tests.security.servers import AttackerSite


def _refused(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    error: str = body.get("error") or body["message"]  # scrapyd's dialect says "message"
    return error


@pytest.mark.parametrize(
    "arguments",
    [{"tag": "x\u0000y"}, {"tag": "x" * 70_000}, {"x\u0000": "y"}],
)
def test_spider_arguments_that_would_break_a_spawn_are_refused(
    tenant: httpx.Client, arguments: object
) -> None:
    before = len(tenant.get("/api/v1/jobs").json())

    _refused(tenant.post("/api/v1/jobs", json={"spider_name": "quotes", "arguments": arguments}))

    assert len(tenant.get("/api/v1/jobs").json()) == before


def test_scrapyd_schedule_refuses_poisoned_settings_and_priorities(tenant: httpx.Client) -> None:
    schedule = {"project": "spiders_project", "spider": "quotes"}
    assert "NUL" in _refused(tenant.post("/schedule.json", data={**schedule, "tag": "x\u0000y"}))
    assert "KiB" in _refused(
        tenant.post("/schedule.json", data={**schedule, "setting": "USER_AGENT=" + "u" * 200_000})
    )
    for priority in ("inf", "-inf", "nan", "1e400", "1000", "0.5"):
        assert "priority" in _refused(tenant.post("/schedule.json", data={**schedule, "priority": priority}))


@pytest.mark.parametrize(
    "setting",
    ["DOWNLOAD_MAXSIZE=0", "DOWNLOAD_MAXSIZE=1073741824", "CONCURRENT_REQUESTS=5000", "RETRY_TIMES=nan"],
)
def test_user_keys_crawl_settings_stay_within_a_share_of_the_node(tenant: httpx.Client, setting: str) -> None:
    schedule = {"project": "spiders_project", "spider": "quotes", "setting": setting}

    assert setting.partition("=")[0] in _refused(tenant.post("/schedule.json", data=schedule))


def test_user_keys_cannot_choose_the_page_converter(tenant: httpx.Client) -> None:
    """PAGE_CONVERTER names code the spider process imports and calls on every page."""
    schedule = {"project": "spiders_project", "spider": "quotes", "setting": "PAGE_CONVERTER=os.system"}

    assert "PAGE_CONVERTER" in _refused(tenant.post("/schedule.json", data=schedule))


def test_forms_other_than_an_egg_upload_are_small(tenant: httpx.Client) -> None:
    schedule = {"project": "spiders_project", "spider": "quotes", "padding": "x" * (2 * 1024 * 1024)}

    assert "larger than" in _refused(tenant.post("/schedule.json", data=schedule))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"urls": ["http://example.com/"], "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"urls": ["http://example.com/"], "x": ' + b'{"a":' * 100 + b"1" + b"}" * 100 + b"}",
        b'{"urls": ["http://example.com/\\ud800"]}',
        b'{"urls": ["http://example.com/"], "formats": ["\\udfff"]}',
    ],
)
def test_malformed_json_answers_400(tenant: httpx.Client, raw: bytes) -> None:
    response = tenant.post("/v2/batch/scrape", content=raw, headers={"Content-Type": "application/json"})

    _refused(response)


def test_huge_selector_and_pattern_lists_are_refused_at_once(
    tenant: httpx.Client, attacker: AttackerSite
) -> None:
    started = time.monotonic()
    selectors = tenant.post(
        "/v2/batch/scrape",
        json={"urls": [attacker.url], "includeTags": [f"div.c{n}" for n in range(300_000)]},
    )
    patterns = tenant.post("/v2/crawl", json={"url": attacker.url, "includePaths": ["^/a"] * 300_000})
    overflow = tenant.post("/v2/crawl", json={"url": attacker.url, "includePaths": ["a{4294967296}"]})
    long_pattern = tenant.post("/v2/crawl", json={"url": attacker.url, "excludePaths": ["(a|b)" * 1000]})

    assert "at most 100" in _refused(selectors)
    assert "at most 100" in _refused(patterns)
    _refused(overflow)
    _refused(long_pattern)
    # Not a timing test: the gateway answered everyone while it checked (a health check in between).
    assert httpx.get(f"{str(tenant.base_url).rstrip('/')}/healthz", timeout=10).status_code in (200, 503)
    assert time.monotonic() - started < 60


def test_odd_paths_answer_404(tenant: httpx.Client) -> None:
    for path in (
        "/screenshots/x/\u00b2.png",
        "/screenshots/x/99999999999999999999.png",
        "/screenshots/x/-1.png",
    ):
        _refused(tenant.get(path), 404)


def _chunks(total: int) -> Iterator[bytes]:
    chunk = b"x" * (1024 * 1024)
    for _ in range(total // len(chunk)):
        yield chunk


def _declared_only(gateway: Gateway, length: int) -> bytes:
    """A request that declares a body of ``length`` bytes and sends none: the answer must not wait."""
    head = (
        "POST /addversion.json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {gateway.admin_key()}\r\n"
        f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {length}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as connection:
        connection.sendall(head.encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and answer.endswith(b"}"):
                break
        return answer


def test_upload_bodies_are_bounded_while_they_stream(platform: Gateway) -> None:
    declared = _declared_only(platform, 300 * 1024 * 1024)
    with platform.client(platform.admin_key()) as admin:
        streamed = admin.post(
            "/addversion.json",
            content=_chunks(120 * 1024 * 1024),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )

    assert declared.startswith(b"HTTP/1.1 400")
    assert b"larger than" in declared
    assert "larger than" in _refused(streamed)


def test_a_huge_request_head_is_cut_off_before_any_key_is_checked(platform: Gateway) -> None:
    """Headers of megabytes (no key needed to send them) are refused at the HTTP layer, unread."""
    host, port = platform.url.removeprefix("http://").rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Padding: ")
        sent = 0
        try:
            while sent < 8 * 1024 * 1024:
                connection.sendall(b"a" * 65536)
                sent += 65536
            connection.sendall(b"\r\n\r\n")
        except OSError:
            pass  # the gateway closed the connection while the head was still coming
        try:
            answer = connection.recv(65536)
        except OSError:
            answer = b""

    # Cut off (the gateway closed the connection) long before the 8 MiB were sent; never served.
    assert sent < 8 * 1024 * 1024
    assert answer == b"" or answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), answer[:200]
    with platform.client() as client:
        assert client.get("/healthz").status_code in (200, 503)


@pytest.fixture
def one_slot(tmp_path: Path, attacker: AttackerSite) -> Iterator[tuple[ScrapydNode, Gateway]]:
    node = ScrapydNode(tmp_path / "node", max_proc=1).start()
    env = {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{attacker.port}"}
    gateway = Gateway(tmp_path / "gateway", node, env=env).start()
    yield node, gateway
    gateway.stop()
    node.stop()


def test_a_job_that_cannot_be_spawned_frees_its_slot(
    one_slot: tuple[ScrapydNode, Gateway], attacker: AttackerSite
) -> None:
    node, gateway = one_slot
    # Straight to scrapyd, past the gateway's checks, as a job stored before them would be re-sent.
    for n in range(3):
        answer = httpx.post(
            f"{node.url}schedule.json",
            data={
                "project": "spiders_project",
                "spider": "quotes",
                "jobid": f"poisoned-{n}",
                "tag": "x\u0000y",
            },
        )
        assert answer.json()["status"] == "ok", answer.text

    with gateway.client(gateway.create_key("after")) as client:
        page = attacker.page("/one-quote", '<div class="quote"><span class="text">hi</span></div>')
        job = wait_for_status(client, start_job(client, "quotes", start_url=page), "finished", timeout=60)

    assert job["items_scraped"] == 1
    finished = {entry["id"]: entry for entry in httpx.get(f"{node.url}listjobs.json").json()["finished"]}
    assert {"poisoned-0", "poisoned-1", "poisoned-2"} <= set(finished)
    log = httpx.get(f"{node.url}logs/spiders_project/quotes/poisoned-0.log").text
    assert "NUL byte" in json.dumps(log)
