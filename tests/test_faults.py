"""Faults at chosen moments, with a standalone node and a gateway given it with ``--scrapyd``.

Each test puts the platform through one kind of fault while batches of slow pages and item jobs
run, then checks, within a settle time well under a minute, what a client must see: no job pending
or running, no batch still scraping, every URL exactly one record and none ``NOT_FETCHED``, the
items of every job exactly what its process wrote, credits exact, and no job run twice.

The moments within each fault's window are drawn from a seeded generator: ``FAULT_SEED=<n>``
replays a run, and the seed is printed with every failure.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import deploy_testbed
from tests.harness import Gateway, ScrapydNode, job_of, parent_of, start_job, wait_until
from tests.site import QuotesSite

SETTLE_SECONDS = 45.0


@pytest.fixture
def rng() -> random.Random:
    seed = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(1_000_000))
    print(f"FAULT_SEED={seed}")
    return random.Random(seed)


class NodeDoor:
    """A reverse proxy between the gateway and its node that can hold back ``schedule.json`` calls:
    the gateway records a dispatch, and the call never reaches scrapyd."""

    def __init__(self, node: ScrapydNode) -> None:
        door = self
        self.node = node
        self.holding = False
        self.held = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._forward(b"")

            def do_HEAD(self) -> None:
                self._forward(b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if door.holding and self.path.startswith("/schedule.json"):
                    door.held += 1
                    time.sleep(120)  # until the gateway that sent it is gone
                    return
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                target = urlsplit(door.node.url)
                headers = {name: value for name, value in self.headers.items() if name.lower() != "host"}
                try:
                    answer = httpx.request(
                        self.command,
                        f"http://127.0.0.1:{target.port}{self.path}",
                        headers=headers,
                        content=body,
                        timeout=30,
                    )
                except httpx.HTTPError:
                    self.send_error(502)
                    return
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                length = answer.headers.get("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(answer.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        credentials = urlsplit(self.node.url).netloc.rpartition("@")[0]
        return f"http://{credentials}@127.0.0.1:{self._server.server_address[1]}/"

    def close(self) -> None:
        self._server.shutdown()


class _DoorNode:
    """What ``Gateway`` needs of a node (its URL): the door's."""

    def __init__(self, door: NodeDoor) -> None:
        self.url = door.url


@pytest.fixture
def slow_site() -> Iterator[QuotesSite]:
    with QuotesSite() as site:
        yield site


@pytest.fixture
def node(tmp_path: Path) -> Iterator[ScrapydNode]:
    started = ScrapydNode(tmp_path / "node", max_proc=2).start()
    yield started
    started.stop()


@pytest.fixture
def door(node: ScrapydNode) -> Iterator[NodeDoor]:
    opened = NodeDoor(node)
    yield opened
    opened.close()


@pytest.fixture
def gateway_env(request: pytest.FixtureRequest, slow_site: QuotesSite) -> dict[str, str]:
    """The gateway's environment; a test may add to it with ``indirect`` parametrisation."""
    return {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{slow_site.port}", **getattr(request, "param", {})}


@pytest.fixture
def gateway(tmp_path: Path, door: NodeDoor, gateway_env: dict[str, str]) -> Iterator[Gateway]:
    started = Gateway(tmp_path / "gateway", _DoorNode(door), env=gateway_env).start()  # type: ignore[arg-type]
    deploy_testbed(started, tmp_path)
    yield started
    if started.process is not None and started.process.poll() is None:
        started.stop()


def slow_urls(site: QuotesSite, count: int, seconds: float, tag: str) -> list[str]:
    return [f"{site.url}_slow?seconds={seconds}&batch={tag}&n={n}" for n in range(count)]


def start_batch(client: httpx.Client, urls: list[str]) -> str:
    answer = client.post("/v2/batch/scrape", json={"urls": urls, "formats": ["links"]})
    assert answer.status_code == 200, answer.text
    batch_id: str = answer.json()["id"]
    return batch_id


def wait_for_first_pages(client: httpx.Client, batch_id: str) -> None:
    wait_until(
        lambda: client.get(f"/v2/batch/scrape/{batch_id}?limit=1").json()["completed"] >= 1,
        timeout=60,
        what="the first pages",
    )


def batch_records(client: httpx.Client, batch_id: str) -> list[dict[str, Any]]:
    page = client.get(f"/v2/batch/scrape/{batch_id}", params={"limit": 1000}).json()
    documents: list[dict[str, Any]] = page["data"]
    while "next" in page:
        page = client.get(page["next"]).json()
        documents += page["data"]
    return documents


def wait_settled(client: httpx.Client, batch_ids: list[str], work_left: float = 0.0) -> float:
    """Wait until no job is pending or running and no batch is scraping (``SETTLE_SECONDS``, plus
    the time the work left needs on its own); the seconds it took."""
    started_at = time.monotonic()

    def unsettled() -> list[str]:
        jobs = client.get("/api/v1/jobs", params={"limit": 500}).json()
        going = [
            f"job {job['id']} {job['status']}" for job in jobs if job["status"] in ("pending", "running")
        ]
        for batch_id in batch_ids:
            if (status := client.get(f"/v2/batch/scrape/{batch_id}").json()["status"]) == "scraping":
                going.append(f"batch {batch_id} {status}")
        return going

    while going := unsettled():
        waited = time.monotonic() - started_at
        assert waited < SETTLE_SECONDS + work_left, f"still going after {waited:.0f} s: {going}"
        time.sleep(0.5)
    return time.monotonic() - started_at


def feed_lines(node: ScrapydNode, job_id: str) -> int:
    feeds = list(node.directory.rglob(f"items/*/*/{job_id}.jl"))
    return sum(feed.read_text(encoding="utf-8").count("\n") for feed in feeds)


def starts_in_log(node: ScrapydNode, job_id: str) -> int:
    logs = list(node.directory.rglob(f"logs/*/*/{job_id}.log"))
    return sum(log.read_text(encoding="utf-8", errors="replace").count("Spider opened") for log in logs)


def credits_used(gateway: Gateway, key_name: str) -> int:
    with sqlite3.connect(gateway.data_dir / "gateway.sqlite3") as db:
        (used,) = db.execute("SELECT credits_used FROM api_keys WHERE name = ?", (key_name,)).fetchone()
    return int(used)


def assert_all_accounted_for(
    gateway: Gateway, node: ScrapydNode, client: httpx.Client, key_name: str, batches: dict[str, list[str]]
) -> None:
    """Every URL one successful record, every job's items exactly its feed, no job run twice,
    credits exactly the pages fetched plus the items taken."""
    charged = 0
    for batch_id, urls in batches.items():
        status = client.get(f"/v2/batch/scrape/{batch_id}").json()
        assert status["status"] == "completed", status
        records = batch_records(client, batch_id)
        assert sorted(record["metadata"]["sourceURL"] for record in records) == sorted(urls)
        assert client.get(f"/v2/batch/scrape/{batch_id}/errors").json()["errors"] == []
        assert status["creditsUsed"] == len(urls)
        charged += len(urls)
    for job in client.get("/api/v1/jobs", params={"limit": 500}).json():
        assert starts_in_log(node, job["id"]) <= 1, f"job {job['id']} ran more than once"
        if job["spider"]["name"] != "batch":
            assert job["items_scraped"] == feed_lines(node, job["id"]), job
            charged += job["items_scraped"]
    assert credits_used(gateway, key_name) == charged


def test_jobs_the_node_lost_before_they_ran_are_sent_again_within_seconds(
    node: ScrapydNode, door: NodeDoor, gateway: Gateway, slow_site: QuotesSite, rng: random.Random
) -> None:
    key_name = "lost-before-run"
    key = gateway.create_key(key_name)
    with gateway.client(key) as client:
        # Jobs that run while another waits in scrapyd's on-disk queue (two slots; with the held
        # one, the tenant's four jobs at a time).
        queued = [start_job(client, "ticker", "testbed", count=4, interval=0.5) for _ in range(3)]
        # The gateway records a dispatch, then dies before scrapyd hears of it.
        door.holding = True
        sender = threading.Thread(
            target=lambda: httpx.post(
                f"{gateway.url}/api/v1/jobs",
                json={
                    "spider_name": "ticker",
                    "project": "testbed",
                    "arguments": {"count": 3, "interval": 0},
                },
                headers={"Authorization": f"Bearer {key}"},
                timeout=60,
            ),
            daemon=True,
        )
        sender.start()
        wait_until(lambda: door.held == 1, what="the gateway's schedule call")
        jobs = client.get("/api/v1/jobs", params={"limit": 50}).json()
        (held,) = [job["id"] for job in jobs if job["id"] not in queued]
    gateway.kill()
    door.holding = False
    # scrapyd dies with its spiders, comes back, and dies again while it launches its queue.
    node.kill()
    node.start()
    time.sleep(rng.uniform(0.0, 1.5))
    node.kill()
    node.start()
    gateway.start()

    with gateway.client(key) as client:
        print(f"settled {wait_settled(client, []):.1f} s after the restart")
        assert job_of(client, held)["status"] == "finished"
        assert job_of(client, held)["items_scraped"] == 3
        for job_id in queued:
            job = job_of(client, job_id)
            # A job killed while it ran ends as error, with the items it wrote; the others ran once.
            assert job["status"] in ("finished", "error"), job
            if job["status"] == "finished":
                assert job["items_scraped"] == 4
        assert_all_accounted_for(gateway, node, client, key_name, {})


def test_a_batch_spider_waits_out_a_gateway_restart(
    node: ScrapydNode, gateway: Gateway, slow_site: QuotesSite, rng: random.Random
) -> None:
    key_name = "gateway-restart"
    key = gateway.create_key(key_name)
    urls = slow_urls(slow_site, 240, 1.0, "restart")
    with gateway.client(key) as client:
        batch_id = start_batch(client, urls)
        wait_for_first_pages(client, batch_id)
        time.sleep(rng.uniform(0.0, 2.0))
    assert gateway.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    time.sleep(10)
    gateway.start()

    with gateway.client(key) as client:
        wait_settled(client, [batch_id])
        assert_all_accounted_for(gateway, node, client, key_name, {batch_id: urls})
        # The same spider processes did the whole batch: nobody gave up and nobody had to restart.
        batch_jobs = [job for job in client.get("/api/v1/jobs").json() if job["spider"]["name"] == "batch"]
        assert {job["status"] for job in batch_jobs} == {"finished"}
        assert client.get(f"/v2/batch/scrape/{batch_id}").json()["spiderRestarts"] == 0


def test_spiders_that_outlive_their_scrapyd_stop_and_their_work_is_kept(
    node: ScrapydNode, gateway: Gateway, slow_site: QuotesSite, rng: random.Random
) -> None:
    key_name = "orphans"
    key = gateway.create_key(key_name)
    # Still being claimed when scrapyd dies: 600 pages of 3 s take 2 processes about 14 s.
    urls = slow_urls(slow_site, 600, 3.0, "orphans")
    with gateway.client(key) as client:
        # The item job first, so that it has one of the node's two slots.
        ticker = start_job(client, "ticker", "testbed", count=400, interval=0.05)
        wait_until(lambda: job_of(client, ticker)["items_scraped"] >= 5, timeout=60, what="the first items")
        batch_id = start_batch(client, urls)
        wait_for_first_pages(client, batch_id)
        time.sleep(rng.uniform(0.0, 2.0))
        node.kill_scrapyd_alone()
        time.sleep(rng.uniform(0.5, 2.0))
        node.start()

        print(f"settled {wait_settled(client, [batch_id], work_left=60.0):.1f} s after the restart")
        job = job_of(client, ticker)
        assert job["status"] == "error"
        assert "scrapyd died while the job ran" in job["error"]
        assert 0 < job["items_scraped"] < 400
        assert_all_accounted_for(gateway, node, client, key_name, {batch_id: urls})
        # The batch's process that ran with that scrapyd says so; its queued one did the rest.
        batch_errors = [
            job["error"] for job in client.get("/api/v1/jobs").json() if job["spider"]["name"] == "batch"
        ]
        assert any("scrapyd died while the job ran" in (error or "") for error in batch_errors)
    # No runner of the first scrapyd is left, busy or idle: the ones there are belong to the second.
    second_scrapyd = node.scrapyd_process.pid
    leftovers = [pid for pid in node.runner_pids() if parent_of(pid) not in (second_scrapyd, None)]
    assert leftovers == []


def test_a_spider_the_gateway_wrote_off_gets_no_more_urls(
    node: ScrapydNode, gateway: Gateway, slow_site: QuotesSite, rng: random.Random
) -> None:
    """scrapyd hangs longer than ``node_lost_after`` (5 s here): the gateway settles its running
    jobs as error while their processes live on. Those get no more URLs; another process takes
    the rest."""
    key_name = "written-off"
    key = gateway.create_key(key_name)
    # Slow enough that the spiders still claim when the gateway writes them off: 900 pages of 3 s
    # take 2 processes (32 at a time on one site) about 42 s, and what is left then takes the one
    # that replaces them about 60 s.
    urls = slow_urls(slow_site, 900, 3.0, "written-off")
    with gateway.client(key) as client:
        batch_id = start_batch(client, urls)
        wait_for_first_pages(client, batch_id)
        running = [job["id"] for job in client.get("/api/v1/jobs").json() if job["status"] == "running"]
        time.sleep(rng.uniform(0.0, 1.0))
        process = node.scrapyd_process
        process.send_signal(signal.SIGSTOP)
        try:
            wait_until(
                lambda: {job_of(client, job_id)["status"] for job_id in running} == {"error"},
                timeout=30,
                what="the write-off",
            )
            time.sleep(rng.uniform(1.0, 3.0))
        finally:
            process.send_signal(signal.SIGCONT)

        wait_settled(client, [batch_id], work_left=100.0)
        for job_id in running:
            assert "has not answered" in job_of(client, job_id)["error"]
        assert_all_accounted_for(gateway, node, client, key_name, {batch_id: urls})
        assert client.get(f"/v2/batch/scrape/{batch_id}").json()["spiderRestarts"] == 1
    for job_id in running:
        (log,) = node.directory.rglob(f"logs/*/*/{job_id}.log")
        assert '"close_reason": "job_over"' in log.read_text(encoding="utf-8")


def test_a_node_stopped_gracefully_lets_its_spiders_close(
    node: ScrapydNode, gateway: Gateway, slow_site: QuotesSite, rng: random.Random
) -> None:
    """SIGTERM to scrapyd and its spiders at once (systemd, Ctrl-C): each spider's stop stays the
    graceful one it began, although its scrapyd is gone before it ends."""
    key_name = "graceful-stop"
    key = gateway.create_key(key_name)
    # Pages of 3 s: a spider's graceful stop waits for the ones under way, outliving its scrapyd.
    urls = slow_urls(slow_site, 300, 3.0, "graceful")
    with gateway.client(key) as client:
        batch_id = start_batch(client, urls)
        wait_for_first_pages(client, batch_id)
        stopped = [job["id"] for job in client.get("/api/v1/jobs").json() if job["status"] == "running"]
        time.sleep(rng.uniform(0.0, 2.0))
        node.stop()
        node.start()

        print(f"settled {wait_settled(client, [batch_id], work_left=45.0):.1f} s after the restart")
        assert_all_accounted_for(gateway, node, client, key_name, {batch_id: urls})
    for job_id in stopped:
        (log,) = node.directory.rglob(f"logs/*/*/{job_id}.log")
        assert '"close_reason": "shutdown"' in log.read_text(encoding="utf-8")


def new_processes(client: httpx.Client, known: set[str]) -> set[str]:
    jobs = client.get("/api/v1/jobs").json()
    return {job["id"] for job in jobs if job["status"] == "running" and job["id"] not in known}


@pytest.mark.parametrize("gateway_env", [{"GATEWAY_BATCH_CLAIM_PATIENCE_SECONDS": "2"}], indirect=True)
def test_spiders_that_give_up_on_an_absent_gateway_never_cost_the_batch_its_pages(
    node: ScrapydNode, gateway: Gateway, slow_site: QuotesSite, rng: random.Random
) -> None:
    """Three outages, each longer than the spiders' patience (2 s here): each time every spider
    gives up, and the batch gets new ones, beyond the two restarts a failing batch gets."""
    key_name = "outages"
    key = gateway.create_key(key_name)
    # Enough pages of 3 s that some are left after the third outage.
    urls = slow_urls(slow_site, 900, 3.0, "outages")
    with gateway.client(key) as client:
        batch_id = start_batch(client, urls)
        wait_for_first_pages(client, batch_id)
        seen = {job["id"] for job in client.get("/api/v1/jobs").json()}
    for _ in range(3):
        assert gateway.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        # Long enough for the pages under way (3 s) and the patience (2 s) to run out.
        time.sleep(rng.uniform(9.0, 11.0))
        gateway.start()
        with gateway.client(key) as client:
            seen |= wait_until(partial(new_processes, client, set(seen)), timeout=30, what="a new process")

    with gateway.client(key) as client:
        wait_settled(client, [batch_id], work_left=90.0)
        assert_all_accounted_for(gateway, node, client, key_name, {batch_id: urls})
        # More than the two restarts a batch gets for faults of its own.
        assert client.get(f"/v2/batch/scrape/{batch_id}").json()["spiderRestarts"] >= 3
