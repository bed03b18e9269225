"""Webhooks: every start, page and end reaches a client that never polls, signed with its tenant's
secret, in order, despite receivers that fail, hang or redirect, and despite a gateway killed
before it delivered; no webhook reaches an address the policy forbids."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from firecrawl import Firecrawl
from firecrawl.v2.types import WebhookConfig

from gateway.errors import BadRequest
from gateway.store import Store
from gateway.webhooks.delivery import WebhookDelivery, _Due
from gateway.webhooks.models import Dialect
from gateway.webhooks.resolver import Resolver
from gateway.webhooks.screening import screen_webhook
from gateway.webhooks.secrets import WebhookSecrets
from spiders_project.addresses import AddressPolicy
from tests.conftest import deploy_testbed
from tests.harness import Gateway, ScrapydNode, gateway_cli, wait_for_status, wait_until
from tests.receivers import FAILURES_BEFORE_SUCCESS, Received, Receivers
from tests.site import QuotesSite

RETRIES = 4  # GATEWAY_WEBHOOK_RETRY_SECONDS below: five attempts in all


@pytest.fixture(scope="module")
def receivers() -> Iterator[Receivers]:
    with Receivers() as served:
        yield served


def webhook_env(site: QuotesSite, *ports: int) -> dict[str, str]:
    allowed = ",".join(f"127.0.0.1:{port}" for port in (site.port, *ports))
    return {
        "GATEWAY_ALLOWED_ADDRESSES": allowed,
        "GATEWAY_WEBHOOK_RETRY_SECONDS": ",".join(["0.3"] * RETRIES),
        "GATEWAY_WEBHOOK_ATTEMPT_SECONDS": "2",
    }


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, node: ScrapydNode, site: QuotesSite, receivers: Receivers
) -> Iterator[Gateway]:
    started = Gateway(
        tmp_path_factory.mktemp("webhooks"), node, env=webhook_env(site, receivers.port)
    ).start()
    deploy_testbed(started, tmp_path_factory.mktemp("webhooks-testbed"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> str:
    return gateway.create_key("webhook user")


@pytest.fixture
def client(gateway: Gateway, key: str) -> Iterator[httpx.Client]:
    with gateway.client(key) as opened:
        yield opened


def secret_of(client: httpx.Client) -> str:
    response = client.get("/api/v1/webhooks/secret")
    assert response.status_code == 200, response.text
    secret: str = response.json()["secret"]
    return secret


def events_at(receivers: Receivers, kind: str, name: str, count: int, timeout: float = 60) -> list[Received]:
    def enough() -> list[Received]:
        found = receivers.received(kind, name)
        return found if len(found) >= count else []

    return wait_until(
        enough,
        timeout=timeout,
        what=f"{count} webhook requests at /{kind}/{name}",
    )


def deliveries(client: httpx.Client, **query: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/webhooks/deliveries", params=query)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def test_a_firecrawl_batch_scrape_webhook_tells_every_start_page_and_end_signed(
    gateway: Gateway, key: str, client: httpx.Client, site: QuotesSite, receivers: Receivers
) -> None:
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)
    urls = [site.url, f"{site.url}page/2/", f"{site.url}page/3/", f"{site.url}_status/404"]
    webhook = WebhookConfig(
        url=receivers.url("ok", "batch"),
        headers={"Authorization": "Bearer receiver-token"},
        metadata={"customer": "acme"},
        events=["started", "page", "completed"],
    )

    job = firecrawl.batch_scrape(urls, formats=["markdown"], webhook=webhook, poll_interval=1)

    assert job.status == "completed"
    received = events_at(receivers, "ok", "batch", 1 + len(urls) + 1)
    events = [entry.event for entry in received]
    assert len(received) == 6
    secret = secret_of(client)
    assert all(entry.signed_with(secret, "X-Firecrawl-Signature") for entry in received)
    assert all(entry.signed_with(secret) for entry in received)
    assert not received[0].signed_with(secret + "x")
    assert all(entry.headers["authorization"] == "Bearer receiver-token" for entry in received)
    assert all(entry.headers["content-type"] == "application/json" for entry in received)
    # In order: started, the pages (in any order among themselves), completed.
    assert [event["type"] for event in events] == ["batch_scrape.started"] + ["batch_scrape.page"] * 4 + [
        "batch_scrape.completed"
    ]
    batch_id = events[0]["id"]
    assert all(event["id"] == batch_id for event in events)
    assert all(event["metadata"] == {"customer": "acme"} for event in events)
    assert len({event["webhookId"] for event in events}) == 6
    assert all(entry.headers["x-webhook-id"] == entry.event["webhookId"] for entry in received)
    assert events[0]["data"] == []
    assert events[-1]["data"] == []
    assert events[-1]["success"] is True
    pages = {event["data"][0]["metadata"]["sourceURL"]: event for event in events[1:-1]}
    assert set(pages) == set(urls)
    first = pages[site.url]
    assert first["success"] is True
    assert "The secret of getting ahead is getting started." in first["data"][0]["markdown"]
    assert first["data"][0]["metadata"]["statusCode"] == 200
    failed = pages[urls[-1]]
    assert failed["success"] is False
    assert failed["error"]
    assert failed["data"][0]["metadata"]["statusCode"] == 404
    assert "markdown" not in failed["data"][0]

    # A receiver has an event a moment before its 2xx is recorded: wait for the record.
    listed = wait_until(
        lambda: (
            (found := deliveries(client, resource_id=batch_id))
            and all(entry["status"] != "pending" for entry in found)
            and found
        ),
        timeout=10,
        what="every delivery's outcome recorded",
    )
    # Listed in the order they were emitted: started first, completed last.
    assert [entry["type"] for entry in listed] == [event["type"] for event in events]
    assert {entry["id"] for entry in listed} == {event["webhookId"] for event in events}
    assert listed[0]["id"] == events[0]["webhookId"]
    assert listed[-1]["id"] == events[-1]["webhookId"]
    assert all(entry["status"] == "delivered" and entry["attempts"] == 1 for entry in listed)
    assert all(entry["last_status_code"] == 204 for entry in listed)


def test_a_firecrawl_crawl_webhook_sends_only_the_events_asked_for(
    gateway: Gateway, key: str, site: QuotesSite, receivers: Receivers
) -> None:
    firecrawl = Firecrawl(api_url=gateway.url, api_key=key)
    webhook = WebhookConfig(url=receivers.url("ok", "crawl"), metadata={"run": "7"}, events=["completed"])

    job = firecrawl.crawl(site.url, limit=3, webhook=webhook, poll_interval=1)

    assert job.status == "completed"
    [completed] = events_at(receivers, "ok", "crawl", 1)
    assert completed.event["type"] == "crawl.completed"
    assert completed.event["metadata"] == {"run": "7"}
    # Nothing else comes after it.
    with pytest.raises(AssertionError):
        events_at(receivers, "ok", "crawl", 2, timeout=2)


def test_geonode_and_scrapeless_batches_take_webhooks_in_their_own_naming(
    client: httpx.Client, site: QuotesSite, receivers: Receivers
) -> None:
    geonode = client.post(
        "/v1/batch",
        json={"urls": [site.url, f"{site.url}page/2/"], "webhook": receivers.url("ok", "geonode")},
    )
    assert geonode.status_code == 202, geonode.text
    scrapeless = client.post(
        "/api/v1/crawler/scrape/batch",
        json={"urls": [site.url], "webhook": {"url": receivers.url("ok", "scrapeless"), "events": ["page"]}},
    )
    assert scrapeless.status_code == 200, scrapeless.text

    # Geonode's batches tell their start and end (no page events); Scrapeless' are Firecrawl's.
    started, completed = [entry.event for entry in events_at(receivers, "ok", "geonode", 2)]
    assert (started["type"], completed["type"]) == ("batch.started", "batch.completed")
    assert completed["id"] == geonode.json()["job_id"]
    [page] = events_at(receivers, "ok", "scrapeless", 1)
    assert page.event["type"] == "batch_scrape.page"
    assert page.event["data"][0]["metadata"]["sourceURL"] == site.url
    with pytest.raises(AssertionError):
        events_at(receivers, "ok", "geonode", 3, timeout=2)
    refused = client.post(
        "/v1/batch",
        json={"urls": [site.url], "webhook": {"url": receivers.url("ok", "x"), "events": ["page"]}},
    )
    assert refused.status_code == 400
    assert "unknown events page" in refused.json()["error"]


def test_a_datasource_webhook_tells_each_crawl_with_what_changed(
    client: httpx.Client, site: QuotesSite, receivers: Receivers
) -> None:
    created = client.post(
        "/crawl",
        json={"url": site.url, "page_limit": 3, "webhook": {"url": receivers.url("ok", "datasource")}},
    )
    assert created.status_code == 201, created.text
    datasource_id = created.json()["id"]
    [first] = events_at(receivers, "ok", "datasource", 1)
    assert first.event["type"] == "crawl.completed"
    assert first.event["id"] == datasource_id
    counts = ("total_pages", "new_pages", "updated_pages", "removed_pages", "unchanged_pages")

    def crawl_counts(crawl_id: str) -> dict[str, int]:
        crawl = client.get(f"/crawl/{datasource_id}/crawls/{crawl_id}").json()
        return {name: crawl[name] for name in counts}

    # The counts the crawl's read shows, in the event: the first crawl finds every page new.
    assert {name: first.event["data"][name] for name in counts} == crawl_counts(
        first.event["data"]["crawl_id"]
    )
    assert first.event["data"]["new_pages"] >= 1
    assert first.event["data"]["removed_pages"] == 0

    assert client.post(f"/crawl/{datasource_id}/crawls").status_code == 201
    second = events_at(receivers, "ok", "datasource", 2)[1].event
    assert second["type"] == "crawl.completed"
    assert second["data"]["crawl_id"] != first.event["data"]["crawl_id"]
    assert {name: second["data"][name] for name in counts} == crawl_counts(second["data"]["crawl_id"])
    assert second["data"]["new_pages"] == 0
    assert second["data"]["unchanged_pages"] == first.event["data"]["new_pages"]
    changed = client.patch(f"/crawl/{datasource_id}", json={"webhook": receivers.url("ok", "x")})
    assert changed.status_code == 400


def test_a_job_webhook_tells_its_start_and_its_end_with_the_items_scraped(
    client: httpx.Client, receivers: Receivers
) -> None:
    response = client.post(
        "/api/v1/jobs",
        json={
            "spider_name": "ticker",
            "arguments": {"count": 3, "interval": 0},
            "webhook": receivers.url("ok", "job"),
        },
    )
    assert response.status_code == 200, response.text
    job_id = response.json()["jobId"]
    wait_for_status(client, job_id, "finished")

    started, finished = [entry.event for entry in events_at(receivers, "ok", "job", 2)]
    assert (started["type"], finished["type"]) == ("job.started", "job.finished")
    assert started["id"] == finished["id"] == job_id
    assert finished["data"]["items_scraped"] == 3
    assert finished["success"] is True


def test_a_cancelled_job_tells_its_cancel(client: httpx.Client, receivers: Receivers) -> None:
    response = client.post(
        "/api/v1/jobs",
        json={
            "spider_name": "ticker",
            "arguments": {"count": 1000, "interval": 0.1},
            "webhook": {"url": receivers.url("ok", "cancelled-job"), "events": ["cancelled"]},
        },
    )
    job_id = response.json()["jobId"]
    wait_for_status(client, job_id, "running")
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 200

    [cancelled] = events_at(receivers, "ok", "cancelled-job", 1)
    assert cancelled.event["type"] == "job.cancelled"
    assert cancelled.event["success"] is False


def test_a_receiver_that_fails_three_times_gets_the_event_on_the_fourth_attempt(
    client: httpx.Client, receivers: Receivers
) -> None:
    job_id = start_job_with_webhook(client, receivers.url("flaky", "job"), events=["finished"])
    received = events_at(receivers, "flaky", "job", FAILURES_BEFORE_SUCCESS + 1)
    assert len({entry.event["webhookId"] for entry in received}) == 1
    assert len({entry.body for entry in received}) == 1  # every attempt the same signed bytes
    [delivery] = wait_until(
        lambda: (
            (found := deliveries(client, resource_id=job_id)) and found[0]["status"] == "delivered" and found
        ),
        what="the delivery to be recorded",
    )
    assert delivery["attempts"] == FAILURES_BEFORE_SUCCESS + 1
    assert delivery["last_status_code"] == 200


def test_a_receiver_that_always_fails_ends_failed_and_can_be_retried(
    client: httpx.Client, receivers: Receivers
) -> None:
    job_id = start_job_with_webhook(client, receivers.url("error", "job"), events=["finished"])
    [delivery] = wait_until(
        lambda: (
            (found := deliveries(client, resource_id=job_id)) and found[0]["status"] == "failed" and found
        ),
        what="the delivery to fail for good",
    )
    assert delivery["attempts"] == RETRIES + 1
    assert delivery["last_status_code"] == 500
    assert delivery["last_error"] == "HTTP 500"
    assert len(receivers.received("error", "job")) == RETRIES + 1

    retried = client.post(f"/api/v1/webhooks/deliveries/{delivery['id']}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending"
    # One attempt per retry asked for, and no retries of its own: no amplification.
    events_at(receivers, "error", "job", RETRIES + 2)
    wait_until(
        lambda: deliveries(client, resource_id=job_id)[0]["status"] == "failed", what="the retry to fail"
    )
    assert len(receivers.received("error", "job")) == RETRIES + 2


def test_redirects_are_not_followed_and_a_hanging_receiver_holds_up_no_one(
    client: httpx.Client, receivers: Receivers
) -> None:
    hanging = start_job_with_webhook(client, receivers.url("hang", "job"), events=["finished"])
    events_at(receivers, "hang", "job", 1)
    redirected = start_job_with_webhook(client, receivers.url("redirect", "job"), events=["finished"])
    prompt = start_job_with_webhook(client, receivers.url("ok", "beside-a-hang"), events=["finished"])

    # Delivered while the hanging receiver still holds its first attempt.
    events_at(receivers, "ok", "beside-a-hang", 1, timeout=15)
    [delivery] = wait_until(
        lambda: (found := deliveries(client, resource_id=redirected)) and found[0]["attempts"] >= 1 and found,
        what="the redirect's attempt",
    )
    assert delivery["last_status_code"] == 302
    assert "not followed" in delivery["last_error"]
    assert receivers.received("ok", "job-redirected") == []
    [hung] = wait_until(
        lambda: (found := deliveries(client, resource_id=hanging)) and found[0]["attempts"] >= 1 and found,
        what="the hanging receiver's attempt to time out",
    )
    assert hung["last_error"] == "no answer within 2 s"
    assert deliveries(client, resource_id=prompt)[0]["status"] == "delivered"


def test_a_webhook_url_with_non_ascii_characters_is_sent_as_it_goes_on_the_wire(
    client: httpx.Client, receivers: Receivers
) -> None:
    start_job_with_webhook(client, receivers.url("ok", "café"), events=["finished"])
    [received] = events_at(receivers, "ok", "caf%C3%A9", 1)
    assert received.event["type"] == "job.finished"
    refused = client.post(
        "/api/v1/jobs",
        json={
            "spider_name": "ticker",
            "webhook": {"url": receivers.url("ok", "x"), "headers": {"X-Name": "café"}},
        },
    )
    assert refused.status_code == 400
    assert "ASCII" in refused.json()["error"]


def start_job_with_webhook(client: httpx.Client, url: str, **webhook: Any) -> str:
    body = {
        "spider_name": "ticker",
        "arguments": {"count": 1, "interval": 0},
        "webhook": {"url": url, **webhook},
    }
    response = client.post("/api/v1/jobs", json=body)
    assert response.status_code == 200, response.text
    job_id: str = response.json()["jobId"]
    return job_id


# Safety


def test_a_webhook_to_a_forbidden_address_is_refused_at_submission_and_never_sent(
    gateway: Gateway, key: str, client: httpx.Client, site: QuotesSite
) -> None:
    firecrawl_body = {"urls": [site.url], "formats": ["markdown"]}
    with Receivers() as canary:  # on loopback, on a port no operator allowed
        for url in (canary.url("ok", "canary"), f"http://localhost:{canary.port}/ok/canary"):
            refused = client.post("/v2/batch/scrape", json={**firecrawl_body, "webhook": url})
            assert refused.status_code == 400, refused.text
            assert "webhook" in refused.json()["error"]
            job = client.post("/api/v1/jobs", json={"spider_name": "ticker", "webhook": {"url": url}})
            assert job.status_code == 400, job.text
        for url in (
            "http://169.254.169.254/latest/meta-data/",
            "file:///etc/passwd",
            "http://user:pw@example.com/",
        ):
            assert client.post("/v2/batch/scrape", json={**firecrawl_body, "webhook": url}).status_code == 400
        assert canary.all_received() == []
    # Nothing was stored for the refused requests.
    assert deliveries(client, resource_id="none") == []


def test_a_schedules_webhook_is_checked_like_any_other_and_refused_whole(
    client: httpx.Client, site: QuotesSite
) -> None:
    schedule = {"name": "nightly", "cron": "0 3 * * *"}
    spider = {**schedule, "spider_name": "ticker"}
    with Receivers() as canary:  # on loopback, on a port no operator allowed
        for body in (
            # A batch's webhook is the schedule's, naming batch_scrape events.
            {**schedule, "batch": {"urls": [site.url], "webhook": canary.url("ok", "canary")}},
            {**spider, "webhook": {"url": canary.url("ok", "canary")}},
            {**spider, "webhook": "http://169.254.169.254/latest/meta-data/"},
            # Events of another target than the schedule's, and events nobody knows.
            {**spider, "webhook": {"url": "https://example.com/hook", "events": ["batch_scrape.page"]}},
            {**spider, "webhook": {"url": "https://example.com/hook", "events": ["run.exploded"]}},
            {**spider, "webhook": {"url": "https://example.com/hook", "events": []}},
        ):
            refused = client.post("/api/v1/schedules", json=body)
            assert refused.status_code == 400, refused.text
            assert "webhook" in refused.json()["error"]
        assert client.get("/api/v1/schedules").json() == []
        # A 400 names what is wrong in the form given.
        bad_header = {"url": "https://example.com/hook", "headers": {"X-Team": 1}}
        refused = client.post("/api/v1/schedules", json={**spider, "webhook": bad_header})
        assert refused.json()["error"] == "webhook.headers.X-Team must be a string"

        created = client.post("/api/v1/schedules", json=spider)
        assert created.status_code == 201, created.text
        changed = client.patch(
            f"/api/v1/schedules/{created.json()['id']}", json={"webhook": canary.url("ok", "canary")}
        )
        assert changed.status_code == 400, changed.text
        assert client.get(f"/api/v1/schedules/{created.json()['id']}").json()["webhook"] is None
        assert client.delete(f"/api/v1/schedules/{created.json()['id']}").status_code == 200
        assert canary.all_received() == []


def test_a_schedules_webhook_tells_its_runs_and_the_events_it_names_of_their_jobs(
    client: httpx.Client, receivers: Receivers
) -> None:
    created = client.post(
        "/api/v1/schedules",
        json={
            "name": "ticks",
            "cron": "0 3 * * *",
            "spider_name": "ticker",
            "arguments": {"count": 2, "interval": 0},
            "webhook": {
                "url": receivers.url("ok", "schedule-job"),
                "events": ["run.started", "job.started", "job.finished"],
                "headers": {"Authorization": "Bearer schedule-receiver-token"},
                "metadata": {"team": "data"},
            },
        },
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["webhook"] == {
        "url": receivers.url("ok", "schedule-job"),
        "events": ["job.finished", "job.started", "run.started"],
        "metadata": {"team": "data"},
        "header_names": ["Authorization"],
    }
    # The receiver's credentials are sent, never shown.
    for read in (f"/api/v1/schedules/{schedule['id']}", "/api/v1/schedules"):
        assert "schedule-receiver-token" not in client.get(read).text

    run = client.post(f"/api/v1/schedules/{schedule['id']}/run").json()
    job_id = run["job_id"]
    wait_for_status(client, job_id, "finished")
    received = events_at(receivers, "ok", "schedule-job", 3)
    by_type = {entry.event["type"]: entry for entry in received}
    assert sorted(by_type) == ["job.finished", "job.started", "schedule.run.started"]
    secret = secret_of(client)
    for entry in received:
        assert entry.signed_with(secret)
        assert entry.headers["authorization"] == "Bearer schedule-receiver-token"
        assert entry.event["metadata"] == {"team": "data"}
    started = by_type["schedule.run.started"].event
    assert started["id"] == schedule["id"]
    assert started["data"]["schedule_id"] == schedule["id"]
    assert started["data"]["run"]["id"] == run["id"]
    assert started["data"]["run"]["job_id"] == job_id
    assert started["data"]["run"]["trigger"] == "manual"
    finished = by_type["job.finished"].event
    assert finished["id"] == job_id
    assert finished["data"]["items_scraped"] == 2

    # Without its webhook, the schedule's next run and its job tell no one.
    removed = client.patch(f"/api/v1/schedules/{schedule['id']}", json={"webhook": None})
    assert removed.json()["webhook"] is None
    quiet_job = client.post(f"/api/v1/schedules/{schedule['id']}/run").json()["job_id"]
    wait_for_status(client, quiet_job, "finished")
    assert deliveries(client, resource_id=quiet_job) == []
    assert deliveries(client, resource_id=schedule["id"]) == []
    assert len(receivers.received("ok", "schedule-job")) == 3


def test_a_datasource_schedules_webhook_tells_skipped_and_failed_runs_and_its_own_crawls(
    client: httpx.Client, site: QuotesSite, receivers: Receivers
) -> None:
    datasource = client.post(
        "/crawl",
        json={"url": f"{site.url}_slow?seconds=3", "page_limit": 1, "auto_start_crawl": False},
    ).json()
    created = client.post(
        "/api/v1/schedules",
        json={
            "name": "recrawl",
            "cron": "@weekly",
            "datasource_id": datasource["id"],
            "webhook": {
                "url": receivers.url("ok", "schedule-datasource"),
                "events": ["run.failed", "run.skipped", "crawl.completed"],
            },
        },
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]

    # A crawl started by hand is under way: the schedule's run is skipped, and says so.
    by_hand = client.post(f"/crawl/{datasource['id']}/crawls").json()["id"]
    skipped = client.post(f"/api/v1/schedules/{schedule_id}/run").json()
    assert skipped["outcome"] == "skipped", skipped
    [told] = events_at(receivers, "ok", "schedule-datasource", 1)
    assert told.event["type"] == "schedule.run.skipped"
    assert told.event["success"] is False
    assert "already under way" in told.event["error"]
    assert told.event["data"]["run"]["id"] == skipped["id"]
    assert told.event["data"]["run"]["outcome"] == "skipped"

    def crawl_ended(crawl_id: str) -> dict[str, Any] | None:
        crawl: dict[str, Any] = client.get(f"/crawl/{datasource['id']}/crawls/{crawl_id}").json()
        return crawl if crawl["status"] in ("completed", "failed") else None

    wait_until(lambda: crawl_ended(by_hand), timeout=90, what="the crawl started by hand")
    # The schedule's own crawl is told; the one started by hand was not.
    crawl_id = client.post(f"/api/v1/schedules/{schedule_id}/run").json()["crawl_id"]
    wait_until(lambda: crawl_ended(crawl_id), timeout=90, what="the scheduled crawl")
    completed = events_at(receivers, "ok", "schedule-datasource", 2)[1].event
    assert completed["type"] == "crawl.completed"
    assert completed["data"]["crawl_id"] == crawl_id

    # The datasource gone, the run fails, disables the schedule and tells why.
    assert client.delete(f"/crawl/{datasource['id']}").status_code in (200, 204)
    failed = client.post(f"/api/v1/schedules/{schedule_id}/run").json()
    assert failed["outcome"] == "failed"
    told_failed = events_at(receivers, "ok", "schedule-datasource", 3)[2].event
    assert told_failed["type"] == "schedule.run.failed"
    assert "the schedule was disabled" in told_failed["error"]
    assert len(receivers.received("ok", "schedule-datasource")) == 3


def test_a_batch_schedules_webhook_gets_its_batches_pages_signed_as_firecrawl_signs(
    client: httpx.Client, site: QuotesSite, receivers: Receivers
) -> None:
    created = client.post(
        "/api/v1/schedules",
        json={
            "name": "pages",
            "cron": "0 3 * * *",
            "batch": {"urls": [site.url, f"{site.url}page/2/"], "formats": ["markdown"]},
            "webhook": {
                "url": receivers.url("ok", "schedule-batch"),
                "events": ["batch_scrape.page", "batch_scrape.completed"],
            },
        },
    )
    assert created.status_code == 201, created.text
    batch_id = client.post(f"/api/v1/schedules/{created.json()['id']}/run").json()["batch_id"]
    received = events_at(receivers, "ok", "schedule-batch", 3)
    assert [entry.event["type"] for entry in received] == [
        "batch_scrape.page",
        "batch_scrape.page",
        "batch_scrape.completed",
    ]
    secret = secret_of(client)
    for entry in received:
        assert entry.event["id"] == batch_id
        assert entry.signed_with(secret, "X-Firecrawl-Signature")
    sources = sorted(entry.event["data"][0]["metadata"]["sourceURL"] for entry in received[:2])
    assert sources == [site.url, f"{site.url}page/2/"]


def test_a_webhook_never_leads_to_the_platforms_proxies_even_on_an_allowed_address(
    tmp_path: Path, node: ScrapydNode, site: QuotesSite
) -> None:
    with Receivers() as proxy:  # stands where an operator's proxy pool listens, on an allowed address
        pools = [{"name": "pool", "urls": [f"http://user:secret@127.0.0.1:{proxy.port}"]}]
        env = {**webhook_env(site, proxy.port), "GATEWAY_PROXY_POOLS": json.dumps(pools)}
        gateway = Gateway(tmp_path / "gateway", node, env=env).start()
        try:
            with gateway.client(gateway.create_key("user")) as client:
                refused = client.post(
                    "/v2/batch/scrape", json={"urls": [site.url], "webhook": proxy.url("ok", "proxy")}
                )
                assert refused.status_code == 400, refused.text
                assert "platform's own service" in refused.json()["error"]
        finally:
            gateway.stop()
        assert proxy.all_received() == []


@pytest.mark.parametrize(
    ("webhook", "said"),
    [
        (
            {"url": "https://example.com/", "headers": {"X-Firecrawl-Signature": "sha256=0"}},
            "X-Firecrawl-Signature",
        ),
        ({"url": "https://example.com/", "headers": {"Content-Type": "text/plain"}}, "Content-Type"),
        ({"url": "https://example.com/", "headers": {"Transfer-Encoding": "chunked"}}, "Transfer-Encoding"),
        ({"url": "https://example.com/", "headers": {"X-Ok": "a\r\nX-Injected: 1"}}, "line break"),
        ({"url": "https://example.com/", "events": ["exploded"]}, "unknown events"),
    ],
)
def test_a_webhook_may_not_override_the_platforms_headers(
    client: httpx.Client, site: QuotesSite, webhook: dict[str, Any], said: str
) -> None:
    refused = client.post("/v2/batch/scrape", json={"urls": [site.url], "webhook": webhook})
    assert refused.status_code == 400, refused.text
    assert said in refused.json()["error"]


def test_tenants_see_and_retry_only_their_own_deliveries_and_secrets(
    gateway: Gateway, client: httpx.Client, receivers: Receivers
) -> None:
    job_id = start_job_with_webhook(client, receivers.url("ok", "isolation"), events=["finished"])
    [mine] = wait_until(lambda: deliveries(client, resource_id=job_id), what="a delivery")
    with gateway.client(gateway.create_key("stranger")) as stranger:
        assert deliveries(stranger) == []
        assert deliveries(stranger, resource_id=job_id) == []
        assert stranger.post(f"/api/v1/webhooks/deliveries/{mine['id']}/retry").status_code == 404
        their_secret = secret_of(stranger)
        rotated = stranger.post("/api/v1/webhooks/secret").json()["secret"]
    my_secret = secret_of(client)
    assert len({my_secret, their_secret, rotated}) == 3
    assert secret_of(client) == my_secret  # another tenant's rotation leaves mine alone


def test_a_rotated_secret_signs_what_is_sent_from_then_on(client: httpx.Client, receivers: Receivers) -> None:
    old = secret_of(client)
    new = client.post("/api/v1/webhooks/secret").json()["secret"]
    assert new != old
    assert secret_of(client) == new
    start_job_with_webhook(client, receivers.url("ok", "rotated"), events=["finished"])
    [received] = events_at(receivers, "ok", "rotated", 1)
    assert received.signed_with(new)
    assert not received.signed_with(old)


def test_the_connect_time_check_refuses_an_address_the_submission_check_let_through(tmp_path: Path) -> None:
    """A name that resolved to a public address at submission and to a forbidden one at delivery
    (DNS rebinding), or an address the operator allowed then and not now: the delivery connects to
    nothing the policy forbids, whether the URL's host is a name or an address."""

    async def deliver(url: str) -> str | None:
        store = Store(f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}")
        delivery = WebhookDelivery(store, _FixedSecret(store), AddressPolicy())
        due = _Due(1, "event", "tenant", "job.finished", 0, "subscription", url, {}, Dialect.PLATFORM)
        try:
            attempt = await delivery.send(due, b"{}")
        finally:
            await delivery.close()
            await store.close()
        return attempt.error

    with Receivers() as canary:
        for host in ("localhost", "127.0.0.1", "[::ffff:127.0.0.1]"):
            error = asyncio.run(deliver(f"http://{host}:{canary.port}/ok/x"))
            assert error is not None, host
            assert "address policy" in error, (host, error)
        assert canary.all_received() == []


def test_a_tenant_whose_name_server_stalls_holds_up_no_one_elses_deliveries(tmp_path: Path) -> None:
    """getaddrinfo cannot be cancelled: a hostile tenant's webhook hosts whose name server never
    answers must not take every lookup thread, or every tenant's deliveries fail with it."""
    released = threading.Event()

    def getaddrinfo(host: str, port: int) -> list[str]:
        if host.endswith(".stalls.test"):
            released.wait(30)
            return []
        return ["127.0.0.1"] if host == "receiver.test" else []

    def due(seq: int, tenant: str, url: str) -> _Due:
        return _Due(seq, f"event-{seq}", tenant, "job.finished", 0, f"sub-{seq}", url, {}, Dialect.PLATFORM)

    async def deliver(port: int) -> tuple[list[str | None], str | None, str | None]:
        store = Store(f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}")
        resolver = Resolver(seconds=2.0, threads=8, per_tenant=2, getaddrinfo=getaddrinfo)
        policy = AddressPolicy.from_entries(allowed=[f"127.0.0.1:{port}"], denied=[])
        delivery = WebhookDelivery(store, _FixedSecret(store), policy, resolver=resolver)
        try:
            stalled = [
                asyncio.create_task(delivery.send(due(n, "hostile", f"https://h{n}.stalls.test/"), b"{}"))
                for n in range(12)
            ]
            await asyncio.sleep(0.2)
            others = await delivery.send(due(100, "other", f"http://receiver.test:{port}/ok/other"), b"{}")
            # The hostile tenant's next lookup waits behind its own stalled ones.
            own = await delivery.send(due(101, "hostile", f"http://receiver.test:{port}/ok/own"), b"{}")
            return [attempt.error for attempt in await asyncio.gather(*stalled)], others.error, own.error
        finally:
            released.set()
            await delivery.close()
            resolver.close()
            await store.close()

    with Receivers() as receiver:
        stalled_errors, others_error, own_error = asyncio.run(deliver(receiver.port))
        assert others_error is None
        assert [entry.path for entry in receiver.all_received()] == ["/ok/other"]
    assert all(error is not None and "address policy" in error for error in stalled_errors)
    assert own_error is not None
    assert "address policy" in own_error


def test_a_webhook_whose_host_does_not_resolve_in_time_is_refused_at_submission() -> None:
    released = threading.Event()

    def getaddrinfo(host: str, port: int) -> list[str]:
        released.wait(30)
        return ["93.184.215.14"]

    async def submit() -> str:
        resolver = Resolver(seconds=0.5, getaddrinfo=getaddrinfo)
        try:
            await screen_webhook(
                "https://slow-dns.test/hook",
                headers=None,
                metadata=None,
                events=None,
                known_events={"finished"},
                dialect=Dialect.PLATFORM,
                policy=AddressPolicy(),
                resolver=resolver,
                tenant_id="tenant",
            )
        except BadRequest as exc:
            return exc.message
        finally:
            released.set()
            resolver.close()
        return "accepted"

    assert "cannot be reached" in asyncio.run(submit())


class _FixedSecret(WebhookSecrets):
    async def of(self, tenant_id: str) -> str:
        return "whsec_test"


def test_an_event_of_a_gateway_killed_before_delivery_arrives_once_after_restart(
    tmp_path: Path, node: ScrapydNode, site: QuotesSite
) -> None:
    receivers = Receivers()  # its port is known, but nothing listens there yet
    env = {**webhook_env(site, receivers.port), "GATEWAY_WEBHOOK_RETRY_SECONDS": "3,3,3,3,3,3"}
    gateway = Gateway(tmp_path / "gateway", node, env=env).start()
    try:
        with gateway.client(gateway.create_key("user")) as client:
            started = client.post(
                "/v2/batch/scrape",
                json={
                    "urls": [site.url],
                    "webhook": {"url": receivers.url("ok", "restart"), "events": ["completed"]},
                },
            )
            assert started.status_code == 200, started.text
            batch_id = started.json()["id"]
            wait_until(
                lambda: client.get(f"/v2/batch/scrape/{batch_id}").json()["status"] == "completed",
                timeout=60,
                what="the batch to complete",
            )
        wait_until(lambda: outbox_of(gateway) == [("completed", "pending")], what="the event in the outbox")
        gateway.kill()
        with receivers:
            gateway.start()
            [received] = events_at(receivers, "ok", "restart", 1, timeout=30)
            assert received.event["type"] == "batch_scrape.completed"
            assert received.event["id"] == batch_id
            wait_until(
                lambda: outbox_of(gateway) == [("completed", "delivered")], what="the delivery recorded"
            )
            assert len(receivers.received("ok", "restart")) == 1
    finally:
        if gateway.process and gateway.process.poll() is None:
            gateway.stop()


def outbox_of(gateway: Gateway) -> list[tuple[str, str]]:
    with sqlite3.connect(gateway.data_dir / "gateway.sqlite3") as db:
        return list(db.execute("SELECT event, status FROM webhook_events ORDER BY seq"))


def test_operators_read_and_rotate_a_tenants_secret_from_the_command_line(
    gateway: Gateway, client: httpx.Client
) -> None:
    listed = gateway_cli(gateway.data_dir, "keys", "list").stdout
    tenant = next(line.split()[2] for line in listed.splitlines() if "webhook user" in line)

    assert gateway_cli(gateway.data_dir, "webhook-secret", tenant).stdout.strip() == secret_of(client)
    rotated = gateway_cli(gateway.data_dir, "webhook-secret", tenant, "--rotate").stdout.strip()
    assert rotated.startswith("whsec_")
    assert secret_of(client) == rotated
    unknown = gateway_cli(gateway.data_dir, "webhook-secret", "no-such-tenant")
    assert unknown.returncode == 1
    assert "no tenant no-such-tenant" in unknown.stderr
