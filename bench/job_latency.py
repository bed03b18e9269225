"""How much time the platform adds to a one-page spider, against plain `scrapy crawl` in the same run.

    .venv/bin/python -m bench.job_latency [--runs N]

Starts a scrapyd node and a gateway on free loopback ports (as the tests do) and the example quotes
site, then times, for the same one-page crawl of the `quotes` spider:
  - plain: `scrapy crawl quotes` as a process, start to exit;
  - platform: POST /api/v1/jobs until the job reads `running`, and until it reads `finished`.
Prints medians and the platform's overhead over plain Scrapy (target: under 1 second).
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

from tests.harness import REPO, Gateway, ScrapydNode
from tests.site import QuotesSite

POLL_SECONDS = 0.01


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs

    with tempfile.TemporaryDirectory() as workdir, QuotesSite() as site:
        node = ScrapydNode(Path(workdir) / "node").start()
        env = {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{site.port}"}
        gateway = Gateway(Path(workdir) / "gateway", node, env=env).start()
        try:
            with gateway.client(gateway.admin_key()) as client:
                through_platform(client, site.url)  # warm-up: scrapyd caches the spider list
                plain_scrapy(site.url)
                plain, running, finished = [], [], []
                for _ in range(runs):
                    plain.append(plain_scrapy(site.url))
                    to_running, to_finished = through_platform(client, site.url)
                    running.append(to_running)
                    finished.append(to_finished)
        finally:
            gateway.stop()
            node.stop()

    plain_median = statistics.median(plain)
    finished_median = statistics.median(finished)
    print(f"one-page quotes crawl, median of {runs} runs (seconds)")
    print(f"  plain scrapy crawl, start to exit      {plain_median:6.3f}")
    print(f"  platform, POST to running              {statistics.median(running):6.3f}")
    print(f"  platform, POST to finished             {finished_median:6.3f}")
    print(f"  platform overhead over plain Scrapy    {finished_median - plain_median:6.3f}  (target < 1.000)")
    print(f"  ratio platform / plain                 {finished_median / plain_median:6.2f}")


if __name__ == "__main__":
    main()
