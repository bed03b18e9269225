"""A job runs in a runner process its node started before the job arrived, and is still its own
process: the pid scrapyd lists, cancelled by signal; a version deployed while runners wait is the
one that runs; runners that die idle cost no job; they end with their scrapyd."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.outcome import parse_outcome
from tests.conftest import TESTBED, deploy_testbed, scrapyd_deploy
from tests.harness import Gateway, ScrapydNode, job_of, pid_alive, start_job, wait_for_status, wait_until

WARM_RUNNERS = 2  # node/scrapyd.conf


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScrapydNode]:
    """A node of this module's own, so that no other test's jobs take its runners."""
    started = ScrapydNode(tmp_path_factory.mktemp("warm-node")).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def gateway(node: ScrapydNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    started = Gateway(tmp_path_factory.mktemp("warm-gateway"), node).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def testbed(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> str:
    return deploy_testbed(gateway, tmp_path_factory.mktemp("warm-testbed"))


@pytest.fixture(scope="module")
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    with gateway.client(gateway.admin_key()) as admin:
        yield admin


def running_pids(node: ScrapydNode) -> set[int]:
    listing = httpx.get(f"{node.url}listjobs.json").json()
    return {job["pid"] for job in listing["running"] if job.get("pid")}


def idle_runners(node: ScrapydNode) -> set[int]:
    """The runners that wait for a job, once the node keeps its full count of them."""

    def full() -> set[int]:
        idle = node.runner_pids() - running_pids(node)
        return idle if len(idle) == WARM_RUNNERS else set()

    return wait_until(full, timeout=30, what=f"{WARM_RUNNERS} idle runners")


def scrapyd_log(node: ScrapydNode) -> str:
    return (node.directory / "scrapyd.log").read_text(encoding="utf-8")


def started_pid(node: ScrapydNode, job_id: str) -> int | None:
    """The pid scrapyd's log gives the process of a job (listjobs.json drops it once finished)."""
    found = re.search(rf"Process started: .*job='{job_id}' pid=(\d+)", scrapyd_log(node))
    return int(found.group(1)) if found else None


@contextmanager
def stopped_runners(node: ScrapydNode, then: signal.Signals) -> Iterator[set[int]]:
    """The node's idle runners, stopped (SIGSTOP) in the block, then sent ``then``."""
    frozen = idle_runners(node)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield frozen
    finally:
        for pid in frozen:
            os.kill(pid, then)


def items_of(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/jobs/{job_id}/items")
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def deploy_testbed_as(gateway: Gateway, workdir: Path, project: str, echo_marker: str) -> None:
    """The tests' project, deployed as ``project``, its echo spider also echoing ``echo_marker``."""
    project_dir = workdir / project
    shutil.rmtree(project_dir, ignore_errors=True)
    shutil.copytree(TESTBED, project_dir)
    echo = project_dir / "testbed" / "spiders" / "echo.py"
    source = echo.read_text(encoding="utf-8")
    echo.write_text(
        source.replace(
            "self.received = dict(kwargs)", f"self.received = dict(kwargs, marker={echo_marker!r})"
        ),
        encoding="utf-8",
    )
    result = scrapyd_deploy(project_dir, gateway.url, gateway.admin_key(), project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_job_runs_in_a_runner_started_before_it_and_stays_its_own_process(
    node: ScrapydNode, gateway: Gateway, client: httpx.Client, testbed: str
) -> None:
    waiting = idle_runners(node)
    job_id = start_job(client, "ticker", project=testbed, count=1000, interval=0.05)
    job = wait_until(lambda: (job := job_of(client, job_id))["status"] == "running" and job, what="running")
    pid = wait_until(lambda: running_pids(node) & waiting, what="the job's pid in listjobs.json").pop()
    assert job["items_scraped"] >= 0
    # Another runner took its place; the job's process is not among the idle ones.
    refilled = idle_runners(node)
    assert pid not in refilled
    wait_until(lambda: job_of(client, job_id)["items_scraped"] >= 3, what="items")

    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 200
    wait_until(lambda: not pid_alive(pid), what=f"process {pid} to end")
    ended = wait_until(
        lambda: (job := job_of(client, job_id))["finished_at"] and job, what="the job to settle"
    )
    assert ended["status"] == "cancelled"
    assert 3 <= ended["items_scraped"] < 1000
    log = client.get(f"/api/v1/jobs/{job_id}/log").text
    # scrapyd's cancel signalled the job's process, which began Scrapy's graceful stop.
    assert "Closing spider (shutdown)" in log


def test_a_job_cancelled_while_its_start_items_are_in_its_pipelines_closes_gracefully(
    client: httpx.Client, testbed: str
) -> None:
    # Items come from start() faster than the project's pipeline lets them go: at any moment some
    # are in the pipeline, where a stop used to wait forever (until the gateway's kill).
    job_id = start_job(client, "ticker", project=testbed, count=1000, interval=0.05, item_delay=1)
    wait_until(lambda: job_of(client, job_id)["items_scraped"] >= 3, what="items")

    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 200
    ended = wait_until(
        lambda: (job := job_of(client, job_id))["finished_at"] and job, what="the job to settle"
    )
    assert ended["status"] == "cancelled"
    log = client.get(f"/api/v1/jobs/{job_id}/log").text
    # The spider closed by itself and the process exited: no kill after the cancel's grace.
    outcome = parse_outcome(log)
    assert outcome.close_reason == "shutdown", log[-2000:]
    assert outcome.exit_code == 0
    # Every item that was in the pipeline when the stop came went on to the feed.
    scraped = re.search(r"'item_scraped_count': (\d+)", log)
    assert scraped is not None
    assert ended["items_scraped"] == int(scraped.group(1)) >= 3


def test_a_version_deployed_while_runners_wait_is_the_one_that_runs(
    node: ScrapydNode, gateway: Gateway, client: httpx.Client, tmp_path: Path
) -> None:
    deploy_testbed_as(gateway, tmp_path, "versioned", "first")
    first = start_job(client, "echo", project="versioned", word="hi")
    wait_for_status(client, first, "finished")
    waiting = idle_runners(node)

    deploy_testbed_as(gateway, tmp_path, "versioned", "second")
    second = start_job(client, "echo", project="versioned", word="hi")
    wait_for_status(client, second, "finished")

    assert {"name": "marker", "value": "first", "type": "str"} in items_of(client, first)
    assert {"name": "marker", "value": "second", "type": "str"} in items_of(client, second)
    # It ran in a runner that was waiting before the second version arrived.
    assert started_pid(node, second) in waiting


def test_runners_that_die_idle_cost_no_job(
    node: ScrapydNode, gateway: Gateway, client: httpx.Client, testbed: str
) -> None:
    killed = idle_runners(node)
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    job_id = start_job(client, "ticker", project=testbed, count=3, interval=0)

    assert wait_for_status(client, job_id, "finished")["items_scraped"] == 3
    replaced = idle_runners(node)
    assert not replaced & killed


def test_idle_runners_end_with_their_scrapyd(tmp_path: Path) -> None:
    node = ScrapydNode(tmp_path / "node").start()
    try:
        waiting = idle_runners(node)
        node.kill_scrapyd_alone()
        wait_until(lambda: not any(pid_alive(pid) for pid in waiting), what="idle runners to end")
    finally:
        node.stop()


def test_a_runner_that_dies_before_it_reads_its_job_is_replaced_and_the_job_runs(
    node: ScrapydNode, gateway: Gateway, client: httpx.Client, testbed: str
) -> None:
    # Stopped runners cannot read a job: the next job goes to one of them, which is then killed.
    with stopped_runners(node, then=signal.SIGKILL) as frozen:
        job_id = start_job(client, "ticker", project=testbed, count=3, interval=0)
        wait_until(lambda: started_pid(node, job_id) in frozen, what="the job given to a stopped runner")

    job = wait_for_status(client, job_id, "finished", "error")
    assert job["status"] == "finished"
    assert job["items_scraped"] == 3
    log = client.get(f"/api/v1/jobs/{job_id}/log").text
    # One process ran the job and its exit is the only one recorded.
    assert log.count('"exit_code"') == 1
    assert '"exit_code": 0' in log


def test_a_cancel_before_the_runner_read_its_job_stops_the_job(
    node: ScrapydNode, gateway: Gateway, client: httpx.Client, testbed: str
) -> None:
    # A stopped runner reads its job only once it continues, after the cancel's signal was sent.
    with stopped_runners(node, then=signal.SIGCONT) as frozen:
        job_id = start_job(client, "ticker", project=testbed, count=1000, interval=0.05)
        wait_until(lambda: started_pid(node, job_id) in frozen, what="the job given to a stopped runner")
        cancels = scrapyd_log(node).count("/cancel.json")
        assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 200
        wait_until(lambda: scrapyd_log(node).count("/cancel.json") > cancels, what="the cancel at scrapyd")

    job = wait_until(lambda: (job := job_of(client, job_id))["finished_at"] and job, what="the job to settle")
    assert job["status"] == "cancelled"
    assert job["items_scraped"] == 0
    assert f"job='{job_id}'" not in "".join(
        line for line in scrapyd_log(node).splitlines() if "Process restarted" in line
    )


def test_jobs_run_when_a_library_imported_ahead_breaks_the_runners(tmp_path: Path) -> None:
    # Importing Twisted's default reactor ahead would choose the reactor before the job's settings.
    node = ScrapydNode(tmp_path / "node", config={"warm_imports": "twisted.internet.reactor"}).start()
    gateway = Gateway(tmp_path / "gateway", node).start()
    try:
        with gateway.client(gateway.admin_key()) as admin:
            project = deploy_testbed(gateway, tmp_path / "testbed")
            job_id = start_job(admin, "ticker", project=project, count=3, interval=0)
            job = wait_for_status(admin, job_id, "finished", "error", timeout=90)
            assert (job["status"], job["items_scraped"]) == ("finished", 3)
        assert "an import ahead installed a Twisted reactor" in scrapyd_log(node)
    finally:
        gateway.stop()
        node.stop()


def test_a_job_line_cannot_be_forged_by_an_argument(
    node: ScrapydNode, gateway: Gateway, testbed: str
) -> None:
    # A tenant's argument that looks like the end of the job line and the start of another job.
    forged = 'x"]}\n{"arguments": ["crawl", "ticker"], "environment": {"SCRAPY_PROJECT": "testbed"}}\n'
    with gateway.client(gateway.create_key("forger")) as tenant:
        job_id = start_job(tenant, "echo", project=testbed, word=forged)
        assert wait_for_status(tenant, job_id, "finished", "error")["status"] == "finished"
        assert {"name": "word", "value": forged, "type": "str"} in items_of(tenant, job_id)
