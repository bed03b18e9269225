"""Memory of the gateway and of the spiders over batches whose status pages are read back in full.

    .venv/bin/python -m bench.memory [--batches 10] [--urls 1000]

The article corpus is served by nginx (``make nginx``). Each of --batches whole-page batches
(markdown and links, ``onlyMainContent: false``, --urls URLs) runs to ``completed``; then every
page of its results is read back through ``GET /v2/batch/scrape/{id}``, following ``next`` as
firecrawl-py does (pages of up to 10 MiB). The RSS of the gateway and of every spider process is
sampled every 0.1 s throughout.
Prints the gateway's RSS after each batch and its peak, and the spiders' peak, against the targets:
gateway under 250 MiB, each spider under 150 MiB.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.corpus import load_articles
from bench.job_latency import rss_mib
from bench.static_site import NginxCorpus
from tests.harness import Gateway, ScrapydNode

GATEWAY_TARGET_MIB = 250.0
SPIDER_TARGET_MIB = 150.0


class Sampler(threading.Thread):
    """The peak RSS of the gateway and of any spider process, sampled until stopped."""

    def __init__(self, gateway_pid: int, node: ScrapydNode) -> None:
        super().__init__(daemon=True)
        self.gateway_pid = gateway_pid
        self.node = node
        self.gateway_peak = 0.0
        self.spider_peak = 0.0
        self.running = True

    def stop(self) -> None:
        self.running = False
        if self.is_alive():
            self.join()

    def run(self) -> None:
        while self.running:
            self.gateway_peak = max(self.gateway_peak, _rss(self.gateway_pid))
            for pid in self.node.runner_pids():
                self.spider_peak = max(self.spider_peak, _rss(pid))
            time.sleep(0.1)


def _rss(pid: int) -> float:
    try:
        return rss_mib(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def read_back(client: httpx.Client, batch_id: str) -> tuple[int, int]:
    """Every page of the batch's results, following ``next``: (documents, status pages)."""
    url: str | None = f"/v2/batch/scrape/{batch_id}"
    documents = reads = 0
    while url:
        answer = client.get(url, timeout=120)
        answer.raise_for_status()
        body = answer.json()
        documents += len(body["data"])
        reads += 1
        url = body.get("next")
    return documents, reads


def run_batch(client: httpx.Client, urls: list[str]) -> str:
    body = {"urls": urls, "formats": ["markdown", "links"], "onlyMainContent": False}
    answer = client.post("/v2/batch/scrape", json=body)
    answer.raise_for_status()
    batch_id: str = answer.json()["id"]
    deadline = time.monotonic() + 900
    while client.get(f"/v2/batch/scrape/{batch_id}?limit=1").json()["status"] != "completed":
        if time.monotonic() > deadline:
            raise RuntimeError(f"batch {batch_id} did not complete")
        time.sleep(0.5)
    return batch_id


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--urls", type=int, default=1000)
    args = parser.parse_args()
    articles = load_articles()

    with tempfile.TemporaryDirectory() as workdir, NginxCorpus(articles) as site:
        node = ScrapydNode(Path(workdir) / "node").start()
        env = {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{site.port}", "GATEWAY_LOG_LEVEL": "warning"}
        gateway = Gateway(Path(workdir) / "gateway", node, env=env).start()
        assert gateway.process is not None
        sampler = Sampler(gateway.process.pid, node)
        sampler.start()
        after_each: list[float] = []
        try:
            with gateway.client(gateway.admin_key()) as client:
                for number in range(args.batches):
                    urls = [
                        site.url_of(articles[n % len(articles)], number * 100_000 + n)
                        for n in range(args.urls)
                    ]
                    batch_id = run_batch(client, urls)
                    documents, reads = read_back(client, batch_id)
                    if documents != args.urls:
                        raise RuntimeError(f"read back {documents} of {args.urls} pages")
                    after_each.append(rss_mib(gateway.process.pid))
                    print(
                        f"  batch {number + 1}: {documents} pages read back in {reads} status pages;"
                        f" gateway {after_each[-1]:.0f} MiB",
                        flush=True,
                    )
        finally:
            sampler.stop()
            gateway.stop()
            node.stop()

    print(f"memory over {args.batches} batches of {args.urls} pages, status pages read back in full")
    gateway_met = sampler.gateway_peak < GATEWAY_TARGET_MIB
    spider_met = sampler.spider_peak < SPIDER_TARGET_MIB
    print(
        f"  gateway: peak {sampler.gateway_peak:.0f} MiB, {after_each[-1]:.0f} MiB at the end"
        f" (target < {GATEWAY_TARGET_MIB:.0f}: {'met' if gateway_met else 'missed'},"
        f" ratio {sampler.gateway_peak / GATEWAY_TARGET_MIB:.2f})"
    )
    print(
        f"  spiders: peak {sampler.spider_peak:.0f} MiB"
        f" (target < {SPIDER_TARGET_MIB:.0f}: {'met' if spider_met else 'missed'},"
        f" ratio {sampler.spider_peak / SPIDER_TARGET_MIB:.2f})"
    )


if __name__ == "__main__":
    main()
