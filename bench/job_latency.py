"""How long a one-page job takes through the platform, against plain `scrapy crawl` in the same run.

    .venv/bin/python -m bench.job_latency [--runs N]

Starts the example quotes site and two platforms on free loopback ports (as the tests do): one
whose node keeps runners started ahead of their jobs (node/scrapyd.conf's `warm_runners`, the
default) and one whose node starts a new runner per job (`warm_runners = 0`, scrapyd's own way).
Then times, in alternating rounds, the same one-page crawl of the `quotes` spider:
  - plain: `scrapy crawl quotes` as a process, start to exit;
  - platform: POST /api/v1/jobs until the job reads `running`, and until it reads `finished`.
Prints medians (target: POST to finished at most 0.5 s on the warm node) and the memory of the
idle runners, scrapyd and the gateway.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.harness import REPO, Gateway, ScrapydNode, wait_until
from tests.site import QuotesSite

POLL_SECONDS = 0.01
TARGET_SECONDS = 0.5
# A job's runner is replaced as it starts; the next job waits for its replacement to be warm.
PAUSE_SECONDS = 2.0


def plain_scrapy(site_url: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "scrapy",
            "crawl",
            "quotes",
            "-a",
            f"start_url={site_url}",
            "-a",
            "max_pages=1",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def through_platform(client: httpx.Client, site_url: str) -> tuple[float, float]:
    started = time.perf_counter()
    answer = client.post(
        "/api/v1/jobs", json={"spider_name": "quotes", "arguments": {"start_url": site_url, "max_pages": 1}}
    )
    answer.raise_for_status()
    job_id = answer.json()["jobId"]
    to_running = None
    while True:
        status = client.get(f"/api/v1/jobs/{job_id}").json()["status"]
        now = time.perf_counter() - started
        if status != "pending" and to_running is None:
            to_running = now
        if status in ("finished", "error", "cancelled"):
            if status != "finished":
                raise RuntimeError(f"job {job_id} ended as {status}")
            return to_running or now, now
        time.sleep(POLL_SECONDS)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Platform:
    """A scrapyd node with ``config`` and a gateway in front of it."""

    def __init__(self, workdir: Path, name: str, site: QuotesSite, config: dict[str, str]) -> None:
        self.node = ScrapydNode(workdir / f"{name}-node", config=config).start()
        env = {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{site.port}"}
        self.gateway = Gateway(workdir / f"{name}-gateway", self.node, env=env).start()
        self.client = self.gateway.client(self.gateway.admin_key())
        self.running: list[float] = []
        self.finished: list[float] = []

    def time_one(self, site_url: str) -> None:
        to_running, to_finished = through_platform(self.client, site_url)
        self.running.append(to_running)
        self.finished.append(to_finished)

    def stop(self) -> None:
        self.client.close()
        self.gateway.stop()
        self.node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs

    with tempfile.TemporaryDirectory() as workdir, QuotesSite() as site:
        warm = Platform(Path(workdir), "warm", site, {})
        cold = Platform(Path(workdir), "cold", site, {"warm_runners": "0"})
        try:
            for platform in (warm, cold):
                through_platform(platform.client, site.url)  # warm-up: scrapyd caches the spider list
            plain_scrapy(site.url)
            plain = []
            for _ in range(runs):
                plain.append(plain_scrapy(site.url))
                time.sleep(PAUSE_SECONDS)
                warm.time_one(site.url)
                cold.time_one(site.url)
            idle = wait_until(lambda: warm.node.runner_pids(), what="idle runners")
            runner_rss = [rss_mib(pid) for pid in idle]
            scrapyd_rss = rss_mib(warm.node.scrapyd_process.pid)
            gateway_process = warm.gateway.process
            gateway_rss = rss_mib(gateway_process.pid) if gateway_process else 0.0
        finally:
            warm.stop()
            cold.stop()

    plain_median = statistics.median(plain)
    warm_finished = statistics.median(warm.finished)
    print(f"one-page quotes crawl, median of {runs} runs (seconds)")
    print(f"  plain scrapy crawl, start to exit          {plain_median:6.3f}")
    print(f"  warm runners, POST to running              {statistics.median(warm.running):6.3f}")
    print(
        f"  warm runners, POST to finished             {warm_finished:6.3f}"
        f"  (target <= {TARGET_SECONDS:.3f}: {'met' if warm_finished <= TARGET_SECONDS else 'missed'})"
    )
    print(f"  a runner per job, POST to running          {statistics.median(cold.running):6.3f}")
    print(f"  a runner per job, POST to finished         {statistics.median(cold.finished):6.3f}")
    print(f"  ratio warm / plain scrapy crawl            {warm_finished / plain_median:6.2f}")
    print("memory (MiB RSS)")
    print(f"  idle runners: {len(runner_rss)} x {statistics.mean(runner_rss):.0f}")
    print(f"  scrapyd {scrapyd_rss:.0f}, gateway {gateway_rss:.0f}")


if __name__ == "__main__":
    main()
