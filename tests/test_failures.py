"""Restarts and crashes of each daemon lose nothing; unexpected errors tell the client nothing private."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import deploy_testbed
from tests.harness import Gateway, ScrapydNode, job_of, start_job, wait_for_status, wait_until
from tests.site import QuotesSite


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[ScrapydNode, Gateway]]:
    """A node (one job at a time, so others queue) and a gateway of this test's own."""
    node = ScrapydNode(tmp_path / "node", max_proc=1).start()
    gateway = Gateway(tmp_path / "gateway", node).start()
    deploy_testbed(gateway, tmp_path)
    yield node, gateway
    if gateway.process and gateway.process.poll() is None:
        gateway.stop()
    node.stop()


def items_of(client: httpx.Client, job_id: str) -> list[str]:
    return client.get(f"/api/v1/jobs/{job_id}/items").text.splitlines()


def test_a_gateway_killed_while_jobs_run_resumes_with_exact_counts(
    platform: tuple[ScrapydNode, Gateway],
) -> None:
    node, gateway = platform
    key = gateway.create_key("user")
    with gateway.client(key) as client:
        long_job = start_job(client, "ticker", count=25, interval=0.1)
        queued_job = start_job(client, "ticker", count=5, interval=0)
        wait_until(lambda: job_of(client, long_job)["items_scraped"] >= 3, what="the first items")

    gateway.kill()
    # Both jobs go on without the gateway: the long one ends, the queued one runs and ends.
    wait_until(
        lambda: httpx.get(f"{node.url}daemonstatus.json").json()["finished"] == 2,
        timeout=60,
        what="both jobs to end on the node",
    )
    gateway.start()

    with gateway.client(key) as client:
        first = wait_for_status(client, long_job, "finished")
        second = wait_for_status(client, queued_job, "finished")
        assert first["items_scraped"] == 25
        assert second["items_scraped"] == 5
        assert sorted(int(line.split(":")[1].strip(" }")) for line in items_of(client, long_job)) == list(
            range(25)
        )
        assert len(items_of(client, queued_job)) == 5


def test_a_gateway_restarted_gracefully_keeps_following_a_running_job(
    platform: tuple[ScrapydNode, Gateway],
) -> None:
    _, gateway = platform
    key = gateway.create_key("user")
    with gateway.client(key) as client:
        job_id = start_job(client, "ticker", count=30, interval=0.1)
        wait_for_status(client, job_id, "running")

    # uvicorn shuts down gracefully, then exits by the signal it was sent.
    assert gateway.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in gateway.printed()
    gateway.start()

    with gateway.client(key) as client:
        assert job_of(client, job_id)["status"] in ("running", "finished")
        assert wait_for_status(client, job_id, "finished")["items_scraped"] == 30
        assert len(items_of(client, job_id)) == 30


def test_a_killed_node_ends_its_running_job_as_error_and_keeps_pending_jobs(
    platform: tuple[ScrapydNode, Gateway],
) -> None:
    node, gateway = platform
    with gateway.client(gateway.create_key("user")) as client:
        running = start_job(client, "ticker", count=1000, interval=0.1)
        wait_for_status(client, running, "running")
        queued = start_job(client, "ticker", count=3, interval=0)
        doomed = start_job(client, "ticker", count=3, interval=0)

        node.kill()
        # Cancelled while its node is down: the node is told when it is back, before it runs the job.
        assert client.delete(f"/api/v1/jobs/{doomed}").status_code == 200
        # While the node is down, new work still queues in the gateway.
        waiting = start_job(client, "ticker", count=2, interval=0)
        health = httpx.get(f"{gateway.url}/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"

        # The test gateway gives up on an unreachable node after 5 s.
        lost = wait_for_status(client, running, "error", timeout=30)
        assert "has not answered" in lost["error"]
        assert job_of(client, queued)["status"] == "pending"
        assert job_of(client, waiting)["status"] == "pending"

        node.start()
        assert wait_for_status(client, queued, "finished")["items_scraped"] == 3
        assert wait_for_status(client, waiting, "finished")["items_scraped"] == 2
        assert job_of(client, running)["status"] == "error"
        cancelled = job_of(client, doomed)
        assert cancelled["status"] == "cancelled"
        assert cancelled["items_scraped"] == 0
        assert client.get(f"/api/v1/jobs/{doomed}/log").status_code == 404


def test_a_node_restarted_under_a_running_job_ends_it_as_error(platform: tuple[ScrapydNode, Gateway]) -> None:
    node, gateway = platform
    with gateway.client(gateway.create_key("user")) as client:
        job_id = start_job(client, "ticker", count=1000, interval=0.1)
        wait_until(lambda: job_of(client, job_id)["items_scraped"] >= 2, what="the first items")

        node.kill()
        node.start()

        job = wait_for_status(client, job_id, "error", timeout=30)
        assert "lost the job" in job["error"]
        assert job["items_scraped"] >= 2
        assert job["finished_at"]


def test_a_batch_survives_a_gateway_restart(tmp_path: Path, site: QuotesSite) -> None:
    node = ScrapydNode(tmp_path / "node").start()
    gateway = Gateway(tmp_path / "gateway", node, env={"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{site.port}"})
    gateway.start()
    try:
        key = gateway.create_key("user")
        # Slow pages, more than one claim's worth: the spiders must ask the gateway for more while it is down.
        urls = [f"{site.url}_slow?seconds=1&n={n}" for n in range(300)]
        with gateway.client(key) as client:
            batch_id = client.post("/v2/batch/scrape", json={"urls": urls, "onlyMainContent": False}).json()[
                "id"
            ]
            wait_until(lambda: client.get(f"/v2/batch/scrape/{batch_id}?limit=1").json()["completed"] >= 20)
        gateway.kill()
        time.sleep(3)
        gateway.start()
        with gateway.client(key) as client:
            status = wait_until(
                lambda: (
                    (answer := client.get(f"/v2/batch/scrape/{batch_id}?limit=1").json())["status"]
                    != "scraping"
                    and answer
                ),
                timeout=120,
                what="the batch to end",
            )
            assert status["status"] == "completed"
            assert status["completed"] == 300
            assert client.get(f"/v2/batch/scrape/{batch_id}/errors").json()["errors"] == []
    finally:
        if gateway.process and gateway.process.poll() is None:
            gateway.stop()
        node.stop()


def test_an_unexpected_failure_answers_500_without_details(platform: tuple[ScrapydNode, Gateway]) -> None:
    _, gateway = platform
    key = gateway.create_key("user")
    with sqlite3.connect(gateway.data_dir / "gateway.sqlite3") as db:
        db.execute("DROP TABLE spiders")

    with gateway.client(key) as client:
        response = client.get("/api/v1/spiders")

    assert response.status_code == 500
    assert response.json() == {"error": "An unexpected error occurred on the server."}
    assert "Traceback" in gateway.printed()
    assert "no such table: spiders" in gateway.printed()
