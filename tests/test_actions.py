"""Firecrawl's browser actions and screenshot options: run in the page, in order, through the
unmodified firecrawl-py, their outputs in ``data.actions``; bounded, and refused when they cannot run."""

from __future__ import annotations

import struct
import time
from typing import Any

import httpx
import pytest
from firecrawl import Firecrawl
from firecrawl.v2.types import (
    ClickAction,
    ExecuteJavascriptAction,
    PressAction,
    ScrapeAction,
    ScreenshotAction,
    ScreenshotFormat,
    ScrollAction,
    WaitAction,
    WriteAction,
)
from firecrawl.v2.utils.error_handler import FirecrawlError

from tests.harness import Gateway
from tests.site import REVEALED_TEXT, QuotesSite


@pytest.fixture
def key(gateway: Gateway) -> str:
    return gateway.create_key("actor")


def image_size(image: bytes) -> tuple[int, int]:
    """Width and height of a PNG or a baseline/progressive JPEG."""
    if image.startswith(b"\x89PNG\r\n\x1a\n"):
        width, height = struct.unpack(">II", image[16:24])
        return width, height
    assert image.startswith(b"\xff\xd8"), "neither a PNG nor a JPEG"
    at = 2
    while at < len(image):
        marker, length = image[at + 1], struct.unpack(">H", image[at + 2 : at + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", image[at + 5 : at + 9])
            return width, height
        at += 2 + length
    raise AssertionError("a JPEG without a frame header")


def test_actions_run_in_order_and_their_outputs_come_back(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)

    doc = firecrawl.scrape(
        f"{site.url}_form",
        formats=["markdown"],
        actions=[
            ClickAction(selector="#q"),
            WriteAction(text="spiders"),
            PressAction(key="ENTER"),
            WaitAction(selector="#out p"),
            ScrapeAction(),
            ExecuteJavascriptAction(script="document.title"),
            ExecuteJavascriptAction(script="return document.querySelectorAll('button').length"),
            ScreenshotAction(),
            ClickAction(selector="#reveal"),
            WaitAction(milliseconds=100),
            ScrollAction(direction="down"),
            ScreenshotAction(full_page=True, quality=60),
        ],
    )

    # The document is the page as the actions left it.
    assert doc.markdown is not None
    assert "You searched for: spiders" in doc.markdown
    assert REVEALED_TEXT in doc.markdown
    assert doc.actions is not None
    [scraped] = doc.actions["scrapes"]
    assert scraped["url"] == f"{site.url}_form"
    assert "You searched for: spiders" in scraped["html"]
    assert '<div id="more"></div>' in scraped["html"]
    assert doc.actions["javascriptReturns"] == [
        {"type": "string", "value": "Search form"},
        {"type": "number", "value": 2},
    ]
    assert doc.actions["pdfs"] == []
    viewport, full = doc.actions["screenshots"]
    assert viewport.endswith("-1.png")
    assert full.endswith("-2.jpg")
    with gateway.client(key) as owner, gateway.client(gateway.create_key("onlooker")) as stranger:
        first, second = owner.get(viewport), owner.get(full)
        assert (first.headers["content-type"], second.headers["content-type"]) == ("image/png", "image/jpeg")
        assert image_size(first.content) == (1280, 720)
        width, height = image_size(second.content)
        assert width == 1280
        assert height >= 3000
        assert stranger.get(viewport).status_code == 404
        # The name says the kind: a PNG is not served as a JPEG.
        assert owner.get(viewport.removesuffix(".png") + ".jpg").status_code == 404


def test_a_screenshot_format_takes_its_viewport_and_quality(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)

    sized = firecrawl.scrape(site.url, formats=[ScreenshotFormat(viewport={"width": 800, "height": 600})])
    jpeg = firecrawl.scrape(site.url, formats=[ScreenshotFormat(quality=40)])

    with gateway.client(key) as owner:
        assert sized.screenshot is not None
        assert sized.screenshot.endswith(".png")
        assert image_size(owner.get(sized.screenshot).content) == (800, 600)
        assert jpeg.screenshot is not None
        assert jpeg.screenshot.endswith(".jpg")
        shot = owner.get(jpeg.screenshot)
        assert shot.headers["content-type"] == "image/jpeg"
        assert image_size(shot.content) == (1280, 720)


def test_every_page_of_a_batch_gets_its_own_actions_outputs(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)
    paths = ["", "page/2/", "page/3/", "page/4/", "_js", "_tall", "_form", "_gallery"]
    urls = [f"{site.url}{path}" for path in paths]

    job = firecrawl.batch_scrape(
        urls,
        formats=["markdown", "screenshot"],
        actions=[ExecuteJavascriptAction(script="location.pathname")],
        poll_interval=1,
    )

    assert job.status == "completed"
    seen = {}
    for doc in job.data:
        assert doc.metadata is not None
        assert doc.actions is not None
        [answer] = doc.actions["javascriptReturns"]
        seen[doc.metadata.source_url] = answer["value"]
    assert seen == {url: url.removeprefix(site.url.rstrip("/")) for url in urls}
    with gateway.client(key) as owner:
        shots = {owner.get(doc.screenshot or "").content for doc in job.data}
    # Each page has its own screenshot, not another page's.
    assert len(shots) == len(urls)


def test_an_action_that_cannot_be_done_is_a_422_naming_it(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    with gateway.client(key) as client:
        answer = client.post(
            "/v2/scrape",
            json={
                "url": f"{site.url}_form",
                "actions": [{"type": "wait", "milliseconds": 50}, {"type": "click", "selector": "#missing"}],
                "timeout": 15000,
            },
        )

    assert answer.status_code == 422, answer.text
    body: dict[str, Any] = answer.json()
    assert body["success"] is False
    assert body["code"] == "ACTION_FAILED"
    assert "action 2 (click)" in body["error"]
    with pytest.raises(FirecrawlError, match="action 1 \\(press\\)"):
        Firecrawl(api_url=gateway.url, api_key=key).scrape(site.url, actions=[PressAction(key="NoSuchKey")])


def test_script_values_json_cannot_carry_come_back_as_json(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)
    scripts = ["NaN", "new Date(0)", "[1, Infinity, () => 1]", "window", "10n ** 30n", "undefined"]

    doc = firecrawl.scrape(site.url, actions=[ExecuteJavascriptAction(script=script) for script in scripts])

    assert doc.actions is not None
    assert [(answer["type"], answer["value"]) for answer in doc.actions["javascriptReturns"]] == [
        ("number", None),
        ("object", "1970-01-01T00:00:00.000Z"),
        ("object", [1, None, None]),
        ("object", "[object Window]"),
        ("bigint", "1" + "0" * 30),
        ("undefined", None),
    ]
    with pytest.raises(FirecrawlError, match="over 16 MiB"):
        firecrawl.scrape(site.url, actions=[ExecuteJavascriptAction(script="'x'.repeat(17 * 1024 * 1024)")])


def test_a_page_that_fakes_json_gets_no_value_past_the_check(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    # The value is made JSON in the page's own world, which the page (or a script) can rewrite.
    fake = "JSON.stringify = () => ({length: 0}); 5"

    with pytest.raises(FirecrawlError, match="could not be made JSON"):
        Firecrawl(api_url=gateway.url, api_key=key).scrape(
            site.url, actions=[ExecuteJavascriptAction(script=fake)]
        )


def test_a_script_that_never_ends_fails_its_page_in_bounded_time(
    gateway: Gateway, site: QuotesSite, key: str
) -> None:
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)
    script = "if (location.pathname === '/') { while (true) {} } return location.pathname"

    # Without a bound on the actions as a whole, the page (and the batch) would wait forever.
    started = firecrawl.start_batch_scrape(
        [site.url, f"{site.url}page/2/"],
        formats=["markdown"],
        actions=[ExecuteJavascriptAction(script=script)],
    )
    deadline = time.monotonic() + 150
    job = firecrawl.get_batch_scrape_status(started.id)
    while job.status == "scraping" and time.monotonic() < deadline:
        time.sleep(1)
        job = firecrawl.get_batch_scrape_status(started.id)

    assert job.status == "completed"
    [done] = job.data
    assert done.actions is not None
    assert done.actions["javascriptReturns"] == [{"type": "string", "value": "/page/2/"}]
    [error] = firecrawl.get_batch_scrape_errors(started.id).errors
    assert error.url == site.url
    assert error.code == "ACTION_FAILED"
    assert "ran out of time" in error.error


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ([{"type": "wait", "milliseconds": 100}] * 51, "at most 50 items"),
        (
            [{"type": "wait", "milliseconds": 40_000}, {"type": "wait", "milliseconds": 30_000}],
            "at most 60000 ms",
        ),
        ([{"type": "pdf"}], "not an action the platform runs"),
        ([{"type": "wait"}], "either milliseconds or a selector"),
        ([{"type": "click"}], "selector"),
        ([{"type": "scroll", "direction": "sideways"}], "direction"),
        ([{"type": "executeJavascript", "script": "x" * 100_001}], "script"),
        ([{"type": "screenshot", "viewport": {"width": 99_999, "height": 600}}], "width"),
    ],
)
def test_actions_out_of_bounds_are_refused(
    gateway: Gateway, site: QuotesSite, actions: list[dict[str, Any]], message: str
) -> None:
    with gateway.client(gateway.create_key("overacting")) as client:
        answer = client.post("/v2/scrape", json={"url": site.url, "actions": actions})
        assert answer.status_code == 400, answer.text
        assert message in answer.json()["error"]
        assert client.get("/v2/team/queue-status").json()["jobsInQueue"] == 0


def test_wait_for_counts_towards_the_bound_on_waits(gateway: Gateway, site: QuotesSite) -> None:
    with gateway.client(gateway.create_key("patient")) as client:
        answer: httpx.Response = client.post(
            "/v2/batch/scrape",
            json={
                "urls": [site.url],
                "waitFor": 50_000,
                "actions": [{"type": "wait", "milliseconds": 20_000}],
            },
        )
        assert answer.status_code == 400, answer.text
        assert "70000 ms" in answer.json()["error"]
