"""What one tenant's work may take from the others: credits hold while jobs run, a tenant's jobs
share the nodes within a limit, and a job that runs too long is stopped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import deploy_testbed
from tests.harness import Gateway, ScrapydNode, job_of, start_job, wait_for_status


def test_credits_hold_while_jobs_run(gateway: Gateway, testbed: str) -> None:
    with gateway.client(gateway.create_key("five credits", credits=5)) as client:
        jobs = [start_job(client, "ticker", count=400, interval=0.05) for _ in range(2)]
        ended = [
            wait_for_status(client, job_id, "finished", "cancelled", "error", timeout=60) for job_id in jobs
        ]
        items = sum(job["items_scraped"] for job in ended)
        spent = client.post("/api/v1/jobs", json={"spider_name": "ticker", "project": "testbed"})

    for job in ended:
        assert job["status"] == "cancelled"
        assert job["error"] == "stopped: the key's credits ran out"
    # Each job overran by at most the chunk of its feed that spent the credits: a tick's worth.
    assert 5 <= items < 60
    assert spent.status_code == 402


@pytest.fixture
def fair_platform(tmp_path: Path) -> Iterator[Gateway]:
    node = ScrapydNode(tmp_path / "node").start()
    env = {"GATEWAY_MAX_JOBS_PER_TENANT": "2", "GATEWAY_MAX_JOB_SECONDS": "4"}
    platform = Gateway(tmp_path / "gateway", node, env=env).start()
    deploy_testbed(platform, tmp_path)
    yield platform
    platform.stop()
    node.stop()


def test_a_tenant_gets_its_share_of_the_nodes_and_no_job_runs_forever(fair_platform: Gateway) -> None:
    greedy = fair_platform.client(fair_platform.create_key("greedy"))
    other = fair_platform.client(fair_platform.create_key("other"))
    with greedy, other:
        queued = [start_job(greedy, "ticker", count=12, interval=0.1) for _ in range(4)]
        mine = start_job(other, "ticker", count=3, interval=0.1)
        most_at_once, others_ran_while_greedy_waited = 0, False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [job_of(greedy, job_id)["status"] for job_id in queued]
            most_at_once = max(most_at_once, states.count("running"))
            if "pending" in states and job_of(other, mine)["status"] in ("running", "finished"):
                others_ran_while_greedy_waited = True
            if all(state in ("finished", "cancelled", "error") for state in states):
                break
            time.sleep(0.2)
        endless = start_job(other, "ticker", count=100_000, interval=0.1)
        stopped = wait_for_status(other, endless, "cancelled", "error", timeout=60)

        assert wait_for_status(other, mine, "finished")["items_scraped"] == 3
        assert [wait_for_status(greedy, job_id, "finished")["items_scraped"] for job_id in queued] == [12] * 4
    assert most_at_once == 2
    assert others_ran_while_greedy_waited
    assert stopped["status"] == "cancelled"
    assert stopped["error"] == "stopped: it ran longer than the 4 s a job may run"


def test_requests_without_a_key_have_a_rate_limit(tmp_path: Path, node: ScrapydNode) -> None:
    platform = Gateway(tmp_path / "gateway", node, env={"GATEWAY_RATE_LIMIT_PER_MINUTE": "30"})
    platform.start()
    try:
        answers = [httpx.get(f"{platform.url}/healthz") for _ in range(40)]
    finally:
        platform.stop()

    limited = [answer for answer in answers if answer.status_code == 429]
    assert limited
    assert all(answer.status_code in (200, 429) for answer in answers)
    assert int(limited[0].headers["Retry-After"]) >= 1
