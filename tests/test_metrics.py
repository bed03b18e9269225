"""``GET /metrics``: scraped and parsed with the Prometheus client's own parser while a batch runs;
for the operator's token or an admin key only, off the rate limits, and with nothing a caller chose
(a path, a key) in its labels."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.harness import Gateway, ScrapydNode, wait_until
from tests.site import QuotesSite

TOKEN = secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory, node: ScrapydNode) -> Iterator[Gateway]:
    env = {
        "GATEWAY_METRICS_TOKEN": TOKEN,
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "20",
        "GATEWAY_ALLOWED_ADDRESSES": "127.0.0.1/32",
    }
    started = Gateway(tmp_path_factory.mktemp("metrics-gateway"), node, env=env).start()
    yield started
    started.stop()


def scrape(gateway: Gateway, credential: str = TOKEN) -> dict[str, list[Sample]]:
    answer = httpx.get(f"{gateway.url}/metrics", headers={"Authorization": f"Bearer {credential}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family.samples for family in text_string_to_metric_families(answer.text)}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(
        sample.value
        for sample in samples
        if sample.name == name and all(sample.labels.get(key) == want for key, want in labels.items())
    )


def test_metrics_follow_a_batch_and_the_requests_that_read_it(watched: Gateway, site: QuotesSite) -> None:
    pages = [site.url, *(f"{site.url}page/{n}/" for n in (2, 3, 4))]
    urls = [*pages, f"{site.url}_status/404"]
    with watched.client(watched.create_key("watched tenant")) as client:
        batch_id = client.post("/v2/batch/scrape", json={"urls": urls}).json()["id"]
        during = scrape(watched)
        # One status read a second: the tenant's key has 20 requests a minute.
        wait_until(
            lambda: client.get(f"/v2/batch/scrape/{batch_id}").json()["status"] == "completed",
            timeout=60,
            interval=1.0,
            what="the batch to complete",
        )
    # The store's counts are read at most every 10 s.
    after = wait_until(
        lambda: (
            (now := scrape(watched, watched.admin_key()))
            and value(now["gateway_batch_pages"], "gateway_batch_pages", status="completed") >= len(pages)
            and now
        ),
        timeout=30,
        interval=2.0,
        what="the metrics to count the batch's pages",
    )

    assert value(during["gateway_node_up"], "gateway_node_up") == 1
    assert {"job-sync", "batch-progress", "scheduler"} <= {
        sample.labels["loop"] for sample in after["gateway_loop_duration_seconds"]
    }
    assert value(after["gateway_page_records_ingested"], "gateway_page_records_ingested_total") >= len(urls)
    assert value(after["gateway_batch_pages"], "gateway_batch_pages", status="completed") >= len(pages)
    assert value(after["gateway_batch_pages"], "gateway_batch_pages", status="failed") >= 1
    assert value(after["gateway_jobs"], "gateway_jobs", spider="batch", status="finished") >= 1
    assert "gateway_feed_ingestion_lag_seconds" in after
    assert after["process_resident_memory_bytes"][0].value > 0
    # Status reads are counted under their route's template, with their latency.
    requests = after["gateway_http_requests"]
    route = "/v2/batch/scrape/{batch_id}"
    assert value(requests, "gateway_http_requests_total", route=route, method="GET", status="200") >= 1
    latency = after["gateway_http_request_duration_seconds"]
    assert value(latency, "gateway_http_request_duration_seconds_count", route=route, method="GET") >= 1


def test_metrics_are_for_the_operator_alone(watched: Gateway) -> None:
    tenant_key = watched.create_key("curious tenant")
    base = f"{watched.url}/metrics"

    anonymous = httpx.get(base)
    wrong = httpx.get(base, headers={"Authorization": f"Bearer {TOKEN}x"})
    tenant = httpx.get(base, headers={"Authorization": f"Bearer {tenant_key}"})

    assert (anonymous.status_code, wrong.status_code, tenant.status_code) == (401, 401, 403)
    assert all("error" in answer.json() for answer in (anonymous, wrong, tenant))
    assert "gateway_jobs" not in tenant.text


def test_scrapes_take_no_rate_limit_and_no_caller_chosen_label(watched: Gateway) -> None:
    admin = watched.admin_key()
    probe = secrets.token_hex(8)
    httpx.get(f"{watched.url}/no/such/route/{probe}")
    httpx.request(f"X{probe}", f"{watched.url}/v2/scrape")
    httpx.get(f"{watched.url}/v2/batch/scrape/{probe}")  # no key: 401, before any route ran

    # The gateway allows 20 requests a minute a key: a scraper is not one of them.
    answers = [
        httpx.get(f"{watched.url}/metrics", headers={"Authorization": f"Bearer {admin}"}) for _ in range(30)
    ]
    with watched.client(admin) as client:
        assert 429 in {client.get("/api/v1/jobs").status_code for _ in range(30)}

    assert {answer.status_code for answer in answers} == {200}
    text = answers[-1].text
    assert probe not in text
    assert 'route="unmatched"' in text
    assert 'method="other"' in text
    assert 'route="/v2/batch/scrape/{batch_id}",status="401"' in text
    assert admin not in text
    assert TOKEN not in text
