"""Bounded resources: what a tenant's page can make a spider decompress, render or export, and what
a tenant's spend can run up, stay within the platform's limits."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import deploy_testbed
from tests.harness import Gateway, wait_for_status
from tests.security.conftest import scrape, wait_for_crawl
from tests.security.servers import AttackerSite


def test_a_gzip_bomb_sitemap_is_not_unpacked_past_the_page_limit(
    tenant: httpx.Client, attacker: AttackerSite
) -> None:
    # 200 MiB of sitemap in 200 KiB.
    bomb = gzip.compress(b"<urlset>" + b" " * (200 * 1024 * 1024), compresslevel=9)
    attacker.serve("/sitemap.xml", bomb, "application/gzip")
    attacker.page("/bomb/", '<a href="/bomb/a">a</a>')
    attacker.page("/bomb/a", "<p>a page</p>")
    try:
        crawl = tenant.post("/v2/crawl", json={"url": f"{attacker.url}bomb/", "limit": 5}).json()
        status = wait_for_crawl(tenant, crawl["id"])
    finally:
        attacker.forget("/sitemap.xml")
    jobs = tenant.get("/api/v1/jobs", params={"limit": 5}).json()
    log = tenant.get(f"/api/v1/jobs/{jobs[0]['id']}/log").text

    assert status["status"] == "completed"
    assert status["completed"] == 2
    assert "larger than 10485760 bytes unpacked" in log


def test_a_rendered_page_is_capped_like_a_downloaded_one(
    tenant: httpx.Client, attacker: AttackerSite
) -> None:
    # A small page whose script builds a 15 MiB document in the browser.
    page = attacker.page(
        "/huge-dom", "<body><script>document.body.textContent = 'x'.repeat(15 * 1024 * 1024)</script></body>"
    )

    result = scrape(tenant, [page], waitFor=500)

    assert [error["code"] for error in result["errors"]["errors"]] == ["TOO_LARGE"]


@pytest.fixture
def own_platform(tmp_path: Path, node: object, attacker: AttackerSite) -> Gateway:
    env = {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{attacker.port}"}
    return Gateway(tmp_path / "gateway", node, env=env).start()  # type: ignore[arg-type]


def test_an_item_too_large_for_the_feed_is_skipped_and_ingestion_goes_on(
    own_platform: Gateway, tmp_path: Path
) -> None:
    try:
        deploy_testbed(own_platform, tmp_path)
        with own_platform.client(own_platform.create_key("bloater")) as client:
            started = client.post("/api/v1/jobs", json={"spider_name": "bloated", "project": "testbed"})
            job = wait_for_status(client, started.json()["jobId"], "finished", timeout=120)
            items = [
                json.loads(line) for line in client.get(f"/api/v1/jobs/{job['id']}/items").text.splitlines()
            ]
    finally:
        own_platform.stop()
    assert [item["n"] for item in items] == [1, 3]
    assert job["items_scraped"] == 2
