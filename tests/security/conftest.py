"""The security suite's platform: a gateway whose operator allowlists only the attacker's site."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.forward_proxy import ForwardProxy
from tests.harness import Gateway, ScrapydNode, wait_until
from tests.security.servers import AttackerSite, Canary

PROXY_SECRET = "pr0xy-s3cret-f0r-4tt4ck5"


@pytest.fixture(scope="session")
def attacker() -> Iterator[AttackerSite]:
    with AttackerSite() as site:
        yield site


@pytest.fixture(scope="session")
def canary() -> Iterator[Canary]:
    with Canary() as served:
        yield served


@pytest.fixture(scope="session")
def canary6() -> Iterator[Canary]:
    with Canary("::1") as served:
        yield served


@pytest.fixture(scope="session")
def attack_proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy("tester", PROXY_SECRET) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def platform(
    tmp_path_factory: pytest.TempPathFactory,
    node: ScrapydNode,
    attacker: AttackerSite,
    attack_proxy: ForwardProxy,
) -> Iterator[Gateway]:
    pools = [{"name": "pool", "type": "datacenter", "countries": ["US"], "urls": [attack_proxy.url]}]
    env = {
        # By address, and by a name that resolves to it (for the proxy's pinned address).
        "GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{attacker.port},localhost:{attacker.port}",
        "GATEWAY_PROXY_POOLS": json.dumps(pools),
    }
    started = Gateway(tmp_path_factory.mktemp("secure-gateway"), node, env=env).start()
    yield started
    started.stop()


@pytest.fixture(scope="session")
def tenant(platform: Gateway) -> Iterator[httpx.Client]:
    """An ordinary (non-admin) tenant's client: the attacker."""
    with platform.client(platform.create_key("attacker")) as client:
        yield client


def scrape(client: httpx.Client, urls: list[str], **options: Any) -> dict[str, Any]:
    """A Firecrawl v2 batch scrape to its end: its status (every page), its errors, and its id."""
    body = {"urls": urls, "formats": ["markdown", "rawHtml", "links"], **options}
    started = client.post("/v2/batch/scrape", json=body)
    assert started.status_code == 200, started.text
    batch_id = started.json()["id"]

    def ended() -> dict[str, Any] | None:
        status: dict[str, Any] = client.get(f"/v2/batch/scrape/{batch_id}").json()
        return status if status["status"] in ("completed", "failed", "cancelled") else None

    status = wait_until(ended, timeout=120, interval=0.3, what=f"batch {batch_id}")
    errors = client.get(f"/v2/batch/scrape/{batch_id}/errors").json()
    return {"id": batch_id, "status": status, "errors": errors}


def wait_for_crawl(client: httpx.Client, crawl_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        status: dict[str, Any] = client.get(f"/v2/crawl/{crawl_id}").json()
        return status if status["status"] in ("completed", "failed", "cancelled") else None

    return wait_until(ended, timeout=120, interval=0.3, what=f"crawl {crawl_id}")


def readable(client: httpx.Client) -> str:
    """Everything about its jobs a tenant can read: listings, each job, its items and its log."""
    texts = []
    listing = client.get("/api/v1/jobs", params={"limit": 500})
    texts.append(listing.text)
    for job in listing.json():
        for path in ("", "/items", "/log"):
            texts.append(client.get(f"/api/v1/jobs/{job['id']}{path}").text)
    texts.append(client.get("/listjobs.json", params={"project": "spiders_project"}).text)
    return "\n".join(texts)


@pytest.fixture(scope="session")
def own_services(attacker: AttackerSite, platform: Gateway, node: ScrapydNode) -> list[str]:
    """Redirects from the attacker's site to the gateway's /healthz and to scrapyd's daemonstatus.json."""
    node_address = node.url.split("@")[-1]
    return [
        attacker.redirect(f"{platform.url}/healthz"),
        attacker.redirect(f"http://{node_address}daemonstatus.json"),
    ]
