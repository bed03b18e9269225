"""Jobs in the ScrapeThis shape, run for real on scrapyd against the tests' own website."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.harness import Gateway, job_of, pid_alive, start_job, wait_for_status, wait_until
from tests.site import QuotesSite


def items_of(client: httpx.Client, job_id: str, **params: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/jobs/{job_id}/items", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def test_quotes_job_runs_with_arguments_and_yields_items(user: httpx.Client, site: QuotesSite) -> None:
    job_id = start_job(user, "quotes", start_url=site.url, tag="life", max_pages=2)

    job = wait_for_status(user, job_id, "finished")

    items = items_of(user, job_id)
    assert job["items_scraped"] == len(items) == 4
    assert all("life" in item["tags"] for item in items)
    assert {item["page"] for item in items} == {1, 2}
    assert job["started_at"]
    assert job["finished_at"]
    assert job["error"] is None


def test_job_detail_has_the_scrapethis_fields(user: httpx.Client, site: QuotesSite) -> None:
    spider = next(s for s in user.get("/api/v1/spiders").json() if s["name"] == "quotes")
    job_id = user.post(
        "/api/v1/jobs", json={"spider_id": spider["id"], "arguments": {"start_url": site.url, "max_pages": 1}}
    ).json()["jobId"]

    job = wait_for_status(user, job_id, "finished")

    for field in (
        "id",
        "spider_id",
        "status",
        "items_scraped",
        "user_id",
        "created_at",
        "started_at",
        "finished_at",
    ):
        assert field in job
    assert job["id"] == job_id
    assert job["spider_id"] == spider["id"]
    assert job["spider"] == {"id": spider["id"], "name": "quotes"}
    assert job["items_scraped"] == 6
    assert job["created_at"].endswith("Z")


def test_arguments_reach_the_spider_as_strings_and_json(user: httpx.Client, testbed: str) -> None:
    arguments = {"word": "plain", "count": 3, "ratio": 0.5, "flags": ["a", "b"], "nested": {"k": None}}

    job_id = start_job(user, "echo", **arguments)
    wait_for_status(user, job_id, "finished")

    # scrapyd adds _job, the job's id, to every spider's arguments.
    received = {item["name"]: item for item in items_of(user, job_id) if item["name"] != "_job"}
    assert {name: item["value"] for name, item in received.items()} == {
        "word": "plain",
        "count": "3",
        "ratio": "0.5",
        "flags": '["a","b"]',
        "nested": '{"k":null}',
    }
    assert {item["type"] for item in received.values()} == {"str"}


def test_spiders_list_every_deployed_project_with_stable_ids(user: httpx.Client, testbed: str) -> None:
    spiders = user.get("/api/v1/spiders").json()

    by_name = {spider["name"]: spider for spider in spiders}
    assert by_name["quotes"]["project"] == "spiders_project"
    assert by_name["quotes"]["repo_path"] == "spiders/quotes.py"
    assert by_name["ticker"]["project"] == "testbed"
    assert by_name["ticker"]["repo_path"] == "spiders/ticker.py"
    assert by_name["stubborn"]["repo_path"] == "spiders/misfits.py"
    assert all(spider["version"] for spider in spiders)
    assert user.get("/api/v1/spiders").json() == spiders
    assert [s["name"] for s in user.get("/api/v1/spiders", params={"name": "TICK"}).json()] == ["ticker"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"arguments": {}}, "Missing spider_id or spider_name"),
        ({"spider_name": "quotes", "arguments": [1, 2]}, "arguments must be a JSON object"),
        ({"spider_name": "quotes", "arguments": "tag=life"}, "arguments must be a JSON object"),
        ({"spider_id": "not-a-uuid"}, "spider_id must be"),
        ({"spider_name": "quotes", "arguments": {"project": "x"}}, "reserved by scrapyd"),
        ({"spider_name": "quotes", "arguments": {"bad name": "x"}}, "invalid argument name"),
    ],
)
def test_bad_job_requests_answer_400_with_a_message(user: httpx.Client, body: object, message: str) -> None:
    response = user.post("/api/v1/jobs", json=body)

    assert response.status_code == 400
    assert message in response.json()["error"]


@pytest.mark.parametrize("spider", ["batch", "site"])
def test_the_page_spiders_cannot_be_started_as_jobs(user: httpx.Client, spider: str) -> None:
    # Their inputs decide which addresses they may reach: only the gateway may give them.
    body = {"spider_name": spider, "arguments": {"inputs_url": "http://attacker.example/inputs"}}

    response = user.post("/api/v1/jobs", json=body)

    assert response.status_code == 400
    assert "only through the batch and crawl APIs" in response.json()["error"]


def test_a_body_that_is_not_json_answers_400(user: httpx.Client) -> None:
    response = user.post("/api/v1/jobs", content=b"{not json", headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


def test_unknown_spiders_and_jobs_answer_404(user: httpx.Client) -> None:
    assert user.post("/api/v1/jobs", json={"spider_name": "nope"}).status_code == 404
    unknown_id = "00000000-0000-4000-8000-000000000000"
    assert user.post("/api/v1/jobs", json={"spider_id": unknown_id}).json() == {"error": "Spider not found"}
    assert user.get("/api/v1/jobs/0123456789abcdef").status_code == 404
    assert user.delete("/api/v1/jobs/0123456789abcdef").status_code == 404


def test_job_list_is_newest_first_and_filters(user: httpx.Client, site: QuotesSite, testbed: str) -> None:
    first = start_job(user, "echo", word="one")
    second = start_job(user, "quotes", start_url=site.url, max_pages=1)
    wait_for_status(user, first, "finished")
    wait_for_status(user, second, "finished")

    jobs = user.get("/api/v1/jobs").json()
    assert [job["id"] for job in jobs] == [second, first]
    assert jobs[0]["spider"]["repo_path"] == "spiders/quotes.py"
    assert [job["id"] for job in user.get("/api/v1/jobs", params={"limit": 1}).json()] == [second]
    quotes_id = jobs[0]["spider_id"]
    assert [job["id"] for job in user.get("/api/v1/jobs", params={"spider_id": quotes_id}).json()] == [second]
    assert user.get("/api/v1/jobs", params={"status": "running"}).json() == []
    assert len(user.get("/api/v1/jobs", params={"status": "finished"}).json()) == 2
    assert user.get("/api/v1/jobs", params={"status": "sleeping"}).status_code == 400
    assert user.get("/api/v1/jobs", params={"limit": "many"}).status_code == 400


def test_items_scraped_rises_while_the_job_runs(user: httpx.Client, testbed: str) -> None:
    job_id = start_job(user, "ticker", count=12, interval=0.4)

    seen = set()
    job = wait_for_status(user, job_id, "running")
    while job["status"] == "running":
        seen.add(job["items_scraped"])
        job = job_of(user, job_id)

    assert job["status"] == "finished"
    assert job["items_scraped"] == 12
    # Counted live, not only at the end: several intermediate counts were visible.
    assert len({count for count in seen if 0 < count < 12}) >= 3


def test_items_are_paginated(user: httpx.Client, testbed: str) -> None:
    job_id = start_job(user, "ticker", count=7, interval=0)
    wait_for_status(user, job_id, "finished")

    response = user.get(f"/api/v1/jobs/{job_id}/items", params={"limit": 3})
    assert response.headers["x-total-count"] == "7"
    assert response.headers["x-next-offset"] == "3"
    assert [item["n"] for item in items_of(user, job_id, limit=3)] == [0, 1, 2]
    assert [item["n"] for item in items_of(user, job_id, offset=6, limit=3)] == [6]
    last = user.get(f"/api/v1/jobs/{job_id}/items", params={"offset": 6, "limit": 3})
    assert "link" not in last.headers


def test_log_of_a_job_is_its_scrapy_log(user: httpx.Client, site: QuotesSite) -> None:
    job_id = start_job(user, "quotes", start_url=site.url, max_pages=1)
    wait_for_status(user, job_id, "finished")

    response = user.get(f"/api/v1/jobs/{job_id}/log")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "Spider closed (finished)" in response.text


def test_cancel_stops_a_running_job_and_its_process(
    user: httpx.Client, node_pids: Callable[[str], int], testbed: str
) -> None:
    job_id = start_job(user, "ticker", count=1000, interval=0.2)
    wait_until(lambda: job_of(user, job_id)["items_scraped"] >= 2, what="first items")
    pid = node_pids(job_id)
    assert pid_alive(pid)

    response = user.delete(f"/api/v1/jobs/{job_id}")

    assert response.status_code == 200
    assert response.json() == {"ok": True, "message": "Job cancelled"}
    assert job_of(user, job_id)["status"] == "cancelled"
    wait_until(lambda: not pid_alive(pid), timeout=15, what="the spider process to stop")
    job = wait_until(lambda: (job := job_of(user, job_id))["finished_at"] and job, what="the job to settle")
    assert job["status"] == "cancelled"
    assert 2 <= job["items_scraped"] < 1000
    assert user.delete(f"/api/v1/jobs/{job_id}").status_code == 409


def test_cancel_kills_a_spider_that_ignores_the_graceful_signal(
    user: httpx.Client, node_pids: Callable[[str], int], testbed: str
) -> None:
    job_id = start_job(user, "stubborn")
    wait_for_status(user, job_id, "running")
    pid = node_pids(job_id)

    assert user.delete(f"/api/v1/jobs/{job_id}").status_code == 200

    # The test gateway's grace period is 3 s; the spider would otherwise sleep for 10 minutes.
    wait_until(lambda: not pid_alive(pid), timeout=20, what="the stubborn spider to be killed")
    job = wait_until(lambda: (job := job_of(user, job_id))["finished_at"] and job, what="the job to settle")
    assert job["status"] == "cancelled"


def test_a_spider_stopped_by_someone_else_ends_as_error(
    user: httpx.Client, node_pids: Callable[[str], int], testbed: str
) -> None:
    # A bounded ticker: Scrapy's graceful stop may let the start generator run out first.
    job_id = start_job(user, "ticker", count=150, interval=0.2)
    wait_until(lambda: job_of(user, job_id)["items_scraped"] >= 2, what="first items")

    # Scrapy shuts down gracefully: the spider closes as "shutdown", which no cancel asked for.
    os.kill(node_pids(job_id), signal.SIGINT)

    job = wait_for_status(user, job_id, "finished", "error", "cancelled", timeout=90)
    assert job["status"] == "error"
    assert job["error"] == "the spider was stopped before it finished (its node shut down?)"


def test_cancel_of_a_finished_job_answers_409(user: httpx.Client, testbed: str) -> None:
    job_id = start_job(user, "echo")
    wait_for_status(user, job_id, "finished")

    response = user.delete(f"/api/v1/jobs/{job_id}")

    assert response.status_code == 409
    assert "finished" in response.json()["error"]


@pytest.mark.parametrize(
    ("spider", "error"),
    [
        ("broken_init", "exited with code 1"),
        ("broken_start", "start_error"),
        ("hard_exit", "exited with code 3"),
    ],
)
def test_a_spider_that_fails_ends_as_error(user: httpx.Client, testbed: str, spider: str, error: str) -> None:
    job_id = start_job(user, spider)

    job = wait_for_status(user, job_id, "finished", "error")

    assert job["status"] == "error"
    assert error in job["error"]
    assert job["finished_at"]


def test_a_job_of_an_invalid_argument_ends_as_error_with_its_log(
    user: httpx.Client, site: QuotesSite
) -> None:
    job_id = start_job(user, "quotes", start_url=site.url, max_pages="many")

    job = wait_for_status(user, job_id, "finished", "error")

    assert job["status"] == "error"
    assert "max_pages must be a whole number" in user.get(f"/api/v1/jobs/{job_id}/log").text


def test_another_tenants_job_answers_404(gateway: Gateway, user: httpx.Client, testbed: str) -> None:
    job_id = start_job(user, "echo")

    with gateway.client(gateway.create_key("someone else")) as other:
        assert other.get(f"/api/v1/jobs/{job_id}").status_code == 404
        assert other.delete(f"/api/v1/jobs/{job_id}").status_code == 404
        assert other.get(f"/api/v1/jobs/{job_id}/items").status_code == 404
        assert other.get(f"/api/v1/jobs/{job_id}/log").status_code == 404
        assert other.get("/api/v1/jobs").json() == []
    assert user.get(f"/api/v1/jobs/{job_id}").status_code == 200
