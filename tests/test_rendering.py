"""JavaScript rendering in the system's Chromium, screenshots, and batches routed through proxies."""

from __future__ import annotations

import struct
from typing import Any

import httpx
import pytest
from firecrawl import Firecrawl
from firecrawl.v2.types import ScreenshotFormat

from tests.conftest import PROXY_SECRET
from tests.forward_proxy import ForwardProxy
from tests.harness import Gateway, wait_until
from tests.site import JS_TEXT, LATE_TEXT, QuotesSite


def finished(client: httpx.Client, path: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        answer: dict[str, Any] = client.get(path).json()
        return answer if answer["status"] in ("completed", "failed", "cancelled") else None

    return wait_until(done, timeout=120, interval=0.3, what=f"{path} to end")


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


@pytest.fixture
def geonode(gateway: Gateway) -> httpx.Client:
    return gateway.client(gateway.create_key("renderer"), header="x-api-key")


def test_javascript_text_appears_only_with_rendering(geonode: httpx.Client, site: QuotesSite) -> None:
    urls = [f"{site.url}_js", f"{site.url}_js_late?ms=1500"]
    plain = geonode.post("/v1/batch", json={"urls": urls}).json()
    rendered = geonode.post(
        "/v1/batch",
        json={
            "urls": urls,
            "render_js": True,
            "wait_config": {"wait_for": "#late, #app p", "wait_timeout": 10000},
        },
    ).json()

    plain_results = finished(geonode, plain["status_url"])["results"]
    rendered_results = finished(geonode, rendered["status_url"])["results"]

    assert [result["status"] for result in rendered_results] == ["completed", "completed"]
    assert JS_TEXT in rendered_results[0]["data"]["markdown"]
    assert LATE_TEXT in rendered_results[1]["data"]["markdown"]
    assert JS_TEXT not in plain_results[0]["data"]["markdown"]
    assert LATE_TEXT not in plain_results[1]["data"]["markdown"]


def test_waiting_for_an_element_that_never_comes_is_that_pages_error(
    geonode: httpx.Client, site: QuotesSite
) -> None:
    urls = [f"{site.url}_js", site.url]
    started = geonode.post(
        "/v1/batch",
        json={"urls": urls, "render_js": True, "wait_config": {"wait_for": "#never", "wait_timeout": 1000}},
    ).json()

    results = finished(geonode, started["status_url"])["results"]

    assert [result["error_code"] for result in results] == [
        "WAIT_FOR_SELECTOR_TIMEOUT",
        "WAIT_FOR_SELECTOR_TIMEOUT",
    ]


def test_a_page_that_hangs_the_browser_is_that_urls_error(gateway: Gateway, site: QuotesSite) -> None:
    with gateway.client(gateway.create_key("patient")) as client:
        urls = [f"{site.url}_hang", f"{site.url}_js"]
        batch_id = client.post(
            "/v2/batch/scrape", json={"urls": urls, "waitFor": 100, "timeout": 3000}
        ).json()["id"]
        status = finished(client, f"/v2/batch/scrape/{batch_id}")
        errors = client.get(f"/v2/batch/scrape/{batch_id}/errors").json()["errors"]

    assert status["status"] == "completed"
    assert [doc["metadata"]["sourceURL"] for doc in status["data"]] == [urls[1]]
    assert [(error["url"], error["code"]) for error in errors] == [(urls[0], "TIMEOUT")]


def test_firecrawl_wait_for_renders_the_page(gateway: Gateway, site: QuotesSite) -> None:
    firecrawl = Firecrawl(api_url=gateway.url, api_key=gateway.create_key("waiter"))

    job = firecrawl.batch_scrape(
        [f"{site.url}_js_late?ms=500"], formats=["markdown"], wait_for=2000, poll_interval=1
    )

    assert LATE_TEXT in job.data[0].markdown


def test_screenshots_are_pngs_served_to_the_owner_only(gateway: Gateway, site: QuotesSite) -> None:
    key = gateway.create_key("photographer")
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)

    viewport = firecrawl.batch_scrape([site.url], formats=["markdown", "screenshot"], poll_interval=1)
    full = firecrawl.batch_scrape(
        [f"{site.url}_tall"], formats=[ScreenshotFormat(full_page=True)], poll_interval=1
    )

    with gateway.client(key) as owner, gateway.client(gateway.create_key("stranger")) as stranger:
        shot = owner.get(viewport.data[0].screenshot)
        assert shot.status_code == 200
        assert shot.headers["content-type"] == "image/png"
        assert png_size(shot.content) == (1280, 720)
        assert "Mark Twain" in viewport.data[0].markdown
        width, height = png_size(owner.get(full.data[0].screenshot).content)
        assert width == 1280
        assert height >= 3000
        assert stranger.get(viewport.data[0].screenshot).status_code == 404


def test_geonode_screenshot_format_renders_and_returns_a_url(geonode: httpx.Client, site: QuotesSite) -> None:
    started = geonode.post(
        "/v1/batch", json={"urls": [f"{site.url}_js"], "formats": ["markdown", "screenshot"]}
    ).json()

    result = finished(geonode, started["status_url"])["results"][0]

    assert JS_TEXT in result["data"]["markdown"]
    png = geonode.get(result["data"]["screenshot"]).content
    assert png_size(png)[0] == 1280


def test_a_batch_goes_through_its_pool_and_past_a_dead_proxy(
    gateway: Gateway, geonode: httpx.Client, site: QuotesSite, forward_proxy: ForwardProxy
) -> None:
    urls = [f"{site.url}?via-proxy={n}" for n in range(4)]
    started = geonode.post("/v1/batch", json={"urls": urls, "proxy": {"country": "US", "type": "datacenter"}})

    assert started.status_code == 202
    status = finished(geonode, started.json()["status_url"])
    assert status["completed_urls"] == 4
    # The pool's first proxy is down: each page got through the second.
    assert {url for url in urls if url in forward_proxy.seen} == set(urls)
    assert PROXY_SECRET not in geonode.get(started.json()["status_url"]).text
    jobs = [job for job in geonode.get("/api/v1/jobs").json() if job["spider"]["name"] == "batch"]
    assert all(PROXY_SECRET not in geonode.get(f"/api/v1/jobs/{job['id']}/log").text for job in jobs)


def test_rendered_pages_go_through_the_proxy_too(
    geonode: httpx.Client, site: QuotesSite, forward_proxy: ForwardProxy
) -> None:
    url = f"{site.url}_js?rendered-via-proxy"
    started = geonode.post(
        "/v1/batch", json={"urls": [url], "render_js": True, "proxy": {"country": "DE"}}
    ).json()

    result = finished(geonode, started["status_url"])["results"][0]

    assert JS_TEXT in result["data"]["markdown"]
    assert url in forward_proxy.seen


def test_a_proxy_nobody_configured_answers_400_naming_the_pools(
    geonode: httpx.Client, site: QuotesSite
) -> None:
    response = geonode.post(
        "/v1/batch", json={"urls": [site.url], "proxy": {"country": "FR", "type": "residential"}}
    )

    assert response.status_code == 400
    message = response.json()["error"]
    assert "residential in FR" in message
    assert "datacenter (US)" in message
    assert "residential (DE)" in message
    assert PROXY_SECRET not in message


def test_firecrawl_stealth_and_location_pick_a_pool(
    gateway: Gateway, site: QuotesSite, forward_proxy: ForwardProxy
) -> None:
    with gateway.client(gateway.create_key("stealthy")) as client:
        url = f"{site.url}?stealth"
        started = client.post(
            "/v2/batch/scrape", json={"urls": [url], "proxy": "stealth", "location": {"country": "DE"}}
        )
        assert started.status_code == 200
        finished(client, f"/v2/batch/scrape/{started.json()['id']}")
        assert url in forward_proxy.seen
        nowhere = client.post("/v2/batch/scrape", json={"urls": [url], "location": {"country": "JP"}})
        assert nowhere.status_code == 400


def test_custom_headers_reach_the_page_when_rendering(geonode: httpx.Client, site: QuotesSite) -> None:
    url = f"{site.url}_js?rendered-headers"
    started = geonode.post(
        "/v1/batch", json={"urls": [url], "render_js": True, "headers": {"X-Trace": "rendered-1"}}
    ).json()
    finished(geonode, started["status_url"])

    sent = [
        headers
        for path, headers in zip(site.requests, site.headers, strict=True)
        if path == "/_js?rendered-headers"
    ]
    assert sent
    assert sent[-1].get("X-Trace") == "rendered-1"
