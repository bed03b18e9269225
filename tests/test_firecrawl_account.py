"""Firecrawl v2's account calls through the unmodified firecrawl-py: credits, the queue,
concurrency and the crawls under way, each the calling tenant's own."""

from __future__ import annotations

import httpx
from firecrawl import Firecrawl

from gateway.api.models.firecrawl import UNLIMITED_CREDITS
from tests.harness import Gateway, wait_for_status, wait_until
from tests.site import QuotesSite


def test_credit_usage_is_the_calling_keys_and_counts_what_a_batch_spent(
    gateway: Gateway, site: QuotesSite
) -> None:
    limited = Firecrawl(api_url=gateway.url, api_key=gateway.create_key("credits", credits=50))
    before = limited.get_credit_usage()
    assert (before.remaining_credits, before.plan_credits) == (50, 50)
    assert before.billing_period_start is None

    job = limited.batch_scrape([site.url, f"{site.url}page/2/"], formats=["markdown"], poll_interval=1)
    assert job.status == "completed"
    assert limited.get_credit_usage().remaining_credits == 48

    unlimited = Firecrawl(api_url=gateway.url, api_key=gateway.create_key("no limit")).get_credit_usage()
    assert (unlimited.remaining_credits, unlimited.plan_credits) == (UNLIMITED_CREDITS, None)


def test_queue_status_and_concurrency_count_the_tenants_own_spider_processes(
    gateway: Gateway, testbed: str
) -> None:
    key = gateway.create_key("queue")
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)
    idle = firecrawl.get_queue_status()
    assert (idle.jobs_in_queue, idle.active_jobs_in_queue, idle.most_recent_success) == (0, 0, None)

    with gateway.client(key) as client:
        quick = client.post("/api/v1/jobs", json={"spider_name": "ticker", "arguments": {"count": 1}})
        wait_for_status(client, quick.json()["jobId"], "finished")
        slow = client.post(
            "/api/v1/jobs", json={"spider_name": "ticker", "arguments": {"count": 1000, "interval": 0.1}}
        ).json()["jobId"]
        wait_for_status(client, slow, "running")
        # Another tenant's work is not this one's queue.
        other = Firecrawl(api_url=gateway.url, api_key=gateway.create_key("someone else"))
        assert other.get_concurrency().concurrency == 0

        concurrency = firecrawl.get_concurrency()
        assert (concurrency.concurrency, concurrency.max_concurrency) == (1, 4)
        busy = firecrawl.get_queue_status()
        assert (busy.jobs_in_queue, busy.active_jobs_in_queue, busy.waiting_jobs_in_queue) == (1, 1, 0)
        assert busy.max_concurrency == 4
        assert busy.most_recent_success is not None
        assert client.delete(f"/api/v1/jobs/{slow}").status_code == 200
        wait_for_status(client, slow, "cancelled")
    assert firecrawl.get_concurrency().concurrency == 0


def test_active_crawls_are_the_tenants_crawls_under_way_with_their_options(
    gateway: Gateway, site: QuotesSite
) -> None:
    key = gateway.create_key("crawls")
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)
    started = firecrawl.start_crawl(f"{site.url}_slow?seconds=20", limit=3, include_paths=["/_slow.*"])
    active = firecrawl.get_active_crawls().crawls
    assert [crawl.id for crawl in active] == [started.id]
    assert active[0].url == f"{site.url}_slow?seconds=20"
    assert active[0].options is not None
    assert active[0].options["limit"] == 3
    assert active[0].options["includePaths"] == ["/_slow.*"]

    other = Firecrawl(api_url=gateway.url, api_key=gateway.create_key("not theirs"))
    assert other.get_active_crawls().crawls == []
    with gateway.client(key) as client:
        # The name the API gives it answers the same.
        ongoing = client.get("/v2/crawl/ongoing").json()
        assert [crawl["id"] for crawl in ongoing["crawls"]] == [started.id]
        assert ongoing["crawls"][0]["teamId"] == active[0].team_id
        assert firecrawl.cancel_crawl(started.id)

        def gone() -> bool:
            listed: httpx.Response = client.get("/v2/crawl/active")
            return listed.json()["crawls"] == []

        wait_until(gone, timeout=30, what="the cancelled crawl to leave the list")
