"""Reads while a batch ingests: how fast the gateway answers status polls when spiders fill it.

    .venv/bin/python -m bench.read_load [--urls 1000] [--connections 16] [--seconds 8]

The article corpus is served by nginx (``make nginx``). A load generator in this process (asyncio,
keep-alive HTTP/1.1 connections on loopback, each request sent when the last answer arrived)
alternates ``GET /v2/batch/scrape/{id}?limit=1`` and ``GET /api/v1/jobs/{id}``, for at most
--seconds and --max-requests, twice in one run:
  - idle: against a finished batch and its job, nothing else running (the baseline);
  - ingesting: against a 1,000-URL batch and its running job, while its pages come in.
Prints requests per second and p50/p99 latency of each phase (target while ingesting: at least
1,000 requests/s with p99 under 50 ms), how many pages were ingested during the load, the
batch's pages per second with and without the load, and the peak RSS of the gateway and of a
spider process.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.corpus import load_articles
from bench.memory import Sampler
from bench.static_site import NginxCorpus
from tests.harness import Gateway, ScrapydNode, wait_until

TARGET_RATE = 1000.0
TARGET_P99_MS = 50.0


@dataclass
class Load:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else 0.0


async def _read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def _connection(
    port: int, requests: list[bytes], deadline: float, budget: list[int], load: Load
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        turn = 0
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            started = time.perf_counter()
            writer.write(requests[turn % len(requests)])
            turn += 1
            status = await _read_answer(reader)
            if status == 200:
                load.latencies.append(time.perf_counter() - started)
            else:
                load.failures += 1
    finally:
        writer.close()


async def generate(
    port: int, paths: list[str], key: str, connections: int, seconds: float, most: int
) -> Load:
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
        for path in paths
    ]
    load = Load()
    budget = [most]
    started = time.monotonic()
    await asyncio.gather(
        *(_connection(port, requests, started + seconds, budget, load) for _ in range(connections))
    )
    load.seconds = time.monotonic() - started
    return load


def batch_job_ids(client: httpx.Client) -> set[str]:
    return {job["id"] for job in client.get("/api/v1/jobs").json() if job["spider"]["name"] == "batch"}


def batch_paths(client: httpx.Client, batch_id: str, known_jobs: set[str]) -> list[str]:
    """The two reads a client polls with: the batch's first page of results and one of its jobs
    (a job of the batch spider started since ``known_jobs`` were listed)."""
    new_jobs = wait_until(lambda: batch_job_ids(client) - known_jobs, what="the batch's job")
    return [f"/v2/batch/scrape/{batch_id}?limit=1", f"/api/v1/jobs/{min(new_jobs)}"]


def start_batch(client: httpx.Client, urls: list[str]) -> str:
    answer = client.post("/v2/batch/scrape", json={"urls": urls, "formats": ["markdown", "links"]})
    answer.raise_for_status()
    batch_id: str = answer.json()["id"]
    return batch_id


def status_of(client: httpx.Client, batch_id: str) -> dict[str, Any]:
    status: dict[str, Any] = client.get(f"/v2/batch/scrape/{batch_id}?limit=1").json()
    return status


def wait_completed(client: httpx.Client, batch_id: str) -> None:
    wait_until(lambda: status_of(client, batch_id)["status"] == "completed", timeout=600, interval=0.25)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--urls", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--max-requests", type=int, default=100_000)
    args = parser.parse_args()
    articles = load_articles()

    with tempfile.TemporaryDirectory() as workdir, NginxCorpus(articles) as site:

        def urls(tag: int, count: int) -> list[str]:
            return [site.url_of(articles[n % len(articles)], tag * 100_000 + n) for n in range(count)]

        node = ScrapydNode(Path(workdir) / "node").start()
        env = {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{site.port}", "GATEWAY_LOG_LEVEL": "warning"}
        gateway = Gateway(Path(workdir) / "gateway", node, env=env).start()
        port = int(gateway.url.rsplit(":", 1)[1].strip("/"))
        key = gateway.admin_key()
        assert gateway.process is not None
        memory = Sampler(gateway.process.pid, node)
        memory.start()
        try:
            with gateway.client(key) as client:
                finished = start_batch(client, urls(1, 20))
                wait_completed(client, finished)
                paths = batch_paths(client, finished, set())
                idle = asyncio.run(
                    generate(port, paths, key, args.connections, args.seconds, args.max_requests)
                )

                started = time.perf_counter()
                unloaded = start_batch(client, urls(2, args.urls))
                wait_completed(client, unloaded)
                unloaded_rate = args.urls / (time.perf_counter() - started)

                started = time.perf_counter()
                known = batch_job_ids(client)
                loaded = start_batch(client, urls(3, args.urls))
                paths = batch_paths(client, loaded, known)
                wait_until(
                    lambda: int(status_of(client, loaded)["completed"]) >= 50, timeout=120, interval=0.1
                )
                before = int(status_of(client, loaded)["completed"])
                ingesting = asyncio.run(
                    generate(port, paths, key, args.connections, args.seconds, args.max_requests)
                )
                during = int(status_of(client, loaded)["completed"]) - before
                wait_completed(client, loaded)
                loaded_rate = args.urls / (time.perf_counter() - started)
        finally:
            memory.stop()
            gateway.stop()
            node.stop()

    print(f"reads with {args.connections} keep-alive connections, at most {args.seconds:.0f} s a phase")
    for name, load in (("idle", idle), ("ingesting", ingesting)):
        print(
            f"  {name:10} {load.rate:7.0f} requests/s  p50 {load.percentile(0.5):6.1f} ms"
            f"  p99 {load.percentile(0.99):6.1f} ms  ({len(load.latencies)} answered, {load.failures} failed)"
        )
    print(f"  pages ingested during the load: {during}")
    met = ingesting.rate >= TARGET_RATE and ingesting.percentile(0.99) < TARGET_P99_MS
    print(
        f"  target while ingesting: >= {TARGET_RATE:.0f} requests/s, p99 < {TARGET_P99_MS:.0f} ms:"
        f" {'met' if met else 'missed'} (ratio {ingesting.rate / TARGET_RATE:.2f} of the rate,"
        f" {ingesting.rate / idle.rate if idle.rate else 0:.2f} of the idle gateway's)"
    )
    print(f"  the batch: {unloaded_rate:.0f} pages/s alone, {loaded_rate:.0f} pages/s under the load")
    print(f"  peak RSS: gateway {memory.gateway_peak:.0f} MiB, a spider process {memory.spider_peak:.0f} MiB")


if __name__ == "__main__":
    main()
