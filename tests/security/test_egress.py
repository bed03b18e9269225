"""Attacks on the address policy: a tenant's key must reach only the public web and its own site.

Every test sends an ordinary tenant's work at the attacker's site (the only allowlisted address),
which leads it to a canary on a loopback port the policy forbids, to local files, to the platform's
own services, or to names that do not resolve. The canaries must receive no connection at all, and
nothing the tenant can read may hold what those places would have answered.
"""

from __future__ import annotations

import httpx
import pytest

from tests.harness import Gateway, wait_for_status
from tests.security.conftest import readable, scrape, wait_for_crawl
from tests.security.servers import CANARY_BODY, AttackerSite, Canary

LOCAL_FILE_MARKER = "root:x:0:0"


def _text(result: dict[str, object]) -> str:
    return repr(result)


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirects_of_every_kind_to_a_forbidden_port_reach_nothing(
    tenant: httpx.Client, attacker: AttackerSite, canary: Canary, code: int
) -> None:
    before = canary.connections
    urls = [attacker.redirect(canary.url, code), attacker.redirect(f"//127.0.0.1:{canary.port}/x", code)]

    result = scrape(tenant, urls)

    assert canary.connections == before
    assert result["status"]["completed"] == 2
    assert {error["code"] for error in result["errors"]["errors"]} == {"BLOCKED_ADDRESS"}
    assert CANARY_BODY not in _text(result)


def test_a_one_page_scrape_reaches_no_forbidden_port_directly_or_by_redirect(
    tenant: httpx.Client, attacker: AttackerSite, canary: Canary
) -> None:
    before = canary.connections

    direct = tenant.post("/v2/scrape", json={"url": canary.url, "maxAge": 0})
    redirected = tenant.post("/v2/scrape", json={"url": attacker.redirect(canary.url), "maxAge": 0})

    assert canary.connections == before
    assert direct.status_code == 400
    assert redirected.status_code == 502
    assert redirected.json()["code"] == "BLOCKED_ADDRESS"
    assert CANARY_BODY not in direct.text + redirected.text


def test_a_map_reaches_no_forbidden_port_directly_or_by_redirect(
    tenant: httpx.Client, attacker: AttackerSite, canary: Canary
) -> None:
    before = canary.connections

    direct = tenant.post("/v2/map", json={"url": canary.url})
    redirected = tenant.post("/v2/map", json={"url": attacker.redirect(canary.url), "sitemap": "skip"})

    assert canary.connections == before
    assert direct.status_code == 400
    assert redirected.status_code == 200
    assert CANARY_BODY not in direct.text + redirected.text


@pytest.mark.parametrize(
    "target",
    [
        "file:///etc/passwd",
        "file:///proc/self/environ",
        "ftp://127.0.0.1:21/",
        "data:text/html,<h1>root:x:0:0</h1>",
        "view-source:http://127.0.0.1:9/",
        "gopher://127.0.0.1:70/",
    ],
)
def test_redirects_to_other_schemes_are_refused(
    tenant: httpx.Client, attacker: AttackerSite, target: str
) -> None:
    result = scrape(tenant, [attacker.redirect(target)])

    # Refused, or left as the redirect it was: never followed.
    assert [doc["metadata"]["statusCode"] for doc in result["status"]["data"]] in ([], [302])
    assert [error["code"] for error in result["errors"]["errors"]] in ([], ["BLOCKED_ADDRESS"])
    assert LOCAL_FILE_MARKER not in _text(result)


def test_a_site_crawl_redirected_to_local_files_reads_none(
    tenant: httpx.Client, attacker: AttackerSite, platform: Gateway
) -> None:
    node_password = f"file://{platform.data_dir}/scrapyd/.password"
    for target in ("file:///etc/passwd", "file:///proc/self/environ", node_password):
        crawl = tenant.post("/v2/crawl", json={"url": attacker.redirect(target), "limit": 5})
        assert crawl.status_code == 200, crawl.text
        crawl_id = crawl.json()["id"]
        status = wait_for_crawl(tenant, crawl_id)
        errors = tenant.get(f"/v2/crawl/{crawl_id}/errors").text
        text = repr(status) + errors
        assert LOCAL_FILE_MARKER not in text
        assert "SCRAPYD" not in text
        assert "GATEWAY_" not in text


@pytest.mark.parametrize(
    "host",
    [
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "2130706433",
        "0x7f000001",
        "127.1",
    ],
)
def test_other_spellings_of_loopback_are_refused(
    tenant: httpx.Client, attacker: AttackerSite, canary: Canary, host: str
) -> None:
    before = canary.connections

    result = scrape(tenant, [attacker.redirect(f"http://{host}:{canary.port}/")])

    assert canary.connections == before
    assert CANARY_BODY not in _text(result)


def test_ipv6_loopback_is_refused(tenant: httpx.Client, attacker: AttackerSite, canary6: Canary) -> None:
    before = canary6.connections

    result = scrape(tenant, [attacker.redirect(canary6.url)])

    assert canary6.connections == before
    assert [error["code"] for error in result["errors"]["errors"]] == ["BLOCKED_ADDRESS"]


def test_names_that_do_not_resolve_are_refused_even_through_a_proxy(
    tenant: httpx.Client, attacker: AttackerSite, attack_proxy: object
) -> None:
    seen_before = list(attack_proxy.seen)  # type: ignore[attr-defined]
    urls = ["http://metadata.google.internal/computeMetadata/v1/", "http://intranet.invalid/"]

    result = scrape(tenant, urls, proxy="basic", location={"country": "US"})

    assert [error["code"] for error in result["errors"]["errors"]] == ["DNS_ERROR", "DNS_ERROR"]
    # The proxy was never asked for them: a failed lookup is a refusal, not a pass.
    assert attack_proxy.seen == seen_before  # type: ignore[attr-defined]


def test_the_platforms_own_services_are_refused(tenant: httpx.Client, own_services: list[str]) -> None:
    result = scrape(tenant, own_services)

    assert {error["code"] for error in result["errors"]["errors"]} == {"BLOCKED_ADDRESS"}
    assert '"status": "ok"' not in _text(result)
    assert "node_name" not in _text(result)


def test_the_quotes_spider_obeys_the_policy(tenant: httpx.Client, canary: Canary) -> None:
    before = canary.connections
    urls = (canary.url, "file:///etc/passwd", f"http://[::ffff:127.0.0.1]:{canary.port}/")
    jobs = [
        tenant.post("/api/v1/jobs", json={"spider_name": "quotes", "arguments": {"start_url": url}}).json()
        for url in urls
    ]

    for started in jobs:
        job = wait_for_status(tenant, started["jobId"], "finished", "error")
        assert job["items_scraped"] == 0

    assert canary.connections == before
    text = readable(tenant)
    assert LOCAL_FILE_MARKER not in text
    assert CANARY_BODY not in text


def test_a_pools_proxy_is_no_target(
    tenant: httpx.Client, attacker: AttackerSite, attack_proxy: object
) -> None:
    seen_before = list(attack_proxy.seen)  # type: ignore[attr-defined]
    proxy_address = attack_proxy.url.split("@")[-1]  # type: ignore[attr-defined]

    result = scrape(tenant, [attacker.redirect(f"http://{proxy_address}/stats"), f"http://{proxy_address}/"])

    assert result["status"]["data"] == []
    assert attack_proxy.seen == seen_before  # type: ignore[attr-defined]


def test_a_pools_proxy_is_given_the_checked_address_not_the_name(
    tenant: httpx.Client, attacker: AttackerSite, attack_proxy: object
) -> None:
    """A proxy given a host name would resolve it itself, later and in its own network (a DNS
    rebinding window): it must be asked for the address the policy checked, plain HTTP and tunnels."""
    seen_before = len(attack_proxy.seen)  # type: ignore[attr-defined]
    attacker.page("/through-the-proxy", "<html><body><p>Fetched through the pool.</p></body></html>")
    by_name = f"http://localhost:{attacker.port}/through-the-proxy"

    result = scrape(
        tenant, [by_name, f"https://localhost:{attacker.port}/tls"], proxy="basic", location={"country": "US"}
    )

    pages = {page["metadata"]["sourceURL"]: page for page in result["status"]["data"]}
    assert "Fetched through the pool." in pages[by_name]["markdown"]
    asked = attack_proxy.seen[seen_before:]  # type: ignore[attr-defined]
    assert f"http://127.0.0.1:{attacker.port}/through-the-proxy" in asked
    assert f"CONNECT 127.0.0.1:{attacker.port}" in asked
    assert not [target for target in asked if "localhost" in target]
