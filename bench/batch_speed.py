"""Pages per second of a 1,000-URL batch end to end, next to the machine's practical limit for the work.

    .venv/bin/python -m bench.batch_speed [--urls 1000] [--main-content] [--rounds 3] [--webhook]

The article corpus is served by nginx (``make nginx``), out of this process and on one worker, so
serving takes little from either side. Each round runs, one after the other:
  - the limit: an asyncio loop (aiohttp, 64 requests in flight) that decodes every page as Scrapy
    does (w3lib) and, in 2 threads, converts it with html-to-markdown, whose one pass also gives the
    links and head metadata; with --main-content, trafilatura's markdown in 2 processes instead;
  - the platform: POST /v2/batch/scrape with the same URLs and options, until it is completed;
  - with --webhook, the platform again with a webhook for every event (a page event per page) to
    nginx, which answers 204: what webhooks cost a batch, and how long after it its events are in.
Medians over the rounds damp a noisy machine. Prints both rates, the machine's CPU seconds per
1,000 pages for each (from /proc/stat), the ratio (target: platform >= 0.85 of the limit), and the
peak RSS of the gateway and of a spider process over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import html_to_markdown
from html_to_markdown import ConversionOptions, PreprocessingOptions
from w3lib.encoding import html_to_unicode

from bench.corpus import load_articles
from bench.memory import Sampler
from bench.static_site import NginxCorpus
from tests.harness import Gateway, ScrapydNode

IN_FLIGHT = 64
WORKERS = 2
# The whole page, navigation links kept, with links and head metadata from the same pass.
_WHOLE_PAGE = ConversionOptions(
    extract_metadata=True, preprocessing=PreprocessingOptions(remove_forms=False, remove_navigation=False)
)


def whole_page(body: bytes, content_type: str) -> int:
    """Markdown, links and metadata of a page in one html-to-markdown pass; returns the markdown's length."""
    _, text = html_to_unicode(content_type, body)
    result = html_to_markdown.convert(text, _WHOLE_PAGE)
    assert result.metadata is not None
    _ = [link.href for link in result.metadata.links], result.metadata.document
    return len(result.content or "")


def main_content(body: bytes, content_type: str) -> int:
    """trafilatura's markdown of the main content, with links and formatting, as the platform asks
    (without trafilatura's own metadata, whose date search costs more than the head's tags)."""
    import trafilatura

    _, text = html_to_unicode(content_type, body)
    markdown = trafilatura.extract(
        text,
        output_format="markdown",
        favor_precision=True,
        include_comments=False,
        include_links=True,
        include_formatting=True,
        include_tables=True,
    )
    return len(markdown or "") or 1


async def limit(urls: list[str], main: bool) -> float:
    loop = asyncio.get_running_loop()
    work: Callable[[bytes, str], int] = main_content if main else whole_page
    pool: Executor = ProcessPoolExecutor(WORKERS) if main else ThreadPoolExecutor(WORKERS)
    with pool:
        if main:  # the processes import trafilatura before the clock starts
            await asyncio.gather(
                *(loop.run_in_executor(pool, work, b"<p>warm</p>", "") for _ in range(WORKERS))
            )
        connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
        async with aiohttp.ClientSession(connector=connector) as session:
            gate = asyncio.Semaphore(IN_FLIGHT)

            async def one(url: str) -> int:
                async with gate, session.get(url) as response:
                    body = await response.read()
                    content_type = response.headers.get("content-type", "")
                return await loop.run_in_executor(pool, work, body, content_type)

            started = time.perf_counter()
            sizes = await asyncio.gather(*(one(url) for url in urls))
            elapsed = time.perf_counter() - started
    assert all(sizes), "the limit loop produced empty markdown"
    return elapsed


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent so far (all cores, idle and iowait left out)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def measured(run: Callable[[], float]) -> tuple[float, float]:
    """(seconds, CPU seconds of the machine) of one run."""
    before = busy_seconds()
    seconds = run()
    return seconds, busy_seconds() - before


def platform(gateway: Gateway, urls: list[str], only_main_content: bool, webhook: str | None = None) -> float:
    body: dict[str, Any] = {
        "urls": urls,
        "formats": ["markdown", "links"],
        "onlyMainContent": only_main_content,
    }
    if webhook is not None:
        body["webhook"] = webhook
    with gateway.client(gateway.admin_key()) as client:
        started = time.perf_counter()
        batch = client.post("/v2/batch/scrape", json=body).json()
        while (status := client.get(f"/v2/batch/scrape/{batch['id']}?limit=1").json())[
            "status"
        ] == "scraping":
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        if status["status"] != "completed" or status["completed"] != len(urls):
            raise RuntimeError(f"the batch ended {status['status']} with {status['completed']} pages")
        if webhook is not None:
            # A cheap poll (one pending event at most), so the wait costs the gateway little.
            pending = {"resource_id": batch["id"], "status": "pending", "limit": 1}
            while client.get("/api/v1/webhooks/deliveries", params=pending).json():
                time.sleep(0.1)
            late = time.perf_counter() - started - elapsed
            events = len(urls) + 2
            delivered = len(_delivered(client, batch["id"]))
            if delivered != events:
                raise RuntimeError(f"{delivered} of {events} webhook events were delivered")
            print(f"  webhooks: {events} events delivered, the last {late:.2f} s after completion")
    return elapsed


def _delivered(client: Any, batch_id: str) -> list[Any]:
    listed = client.get(
        "/api/v1/webhooks/deliveries", params={"resource_id": batch_id, "status": "delivered", "limit": 1000}
    )
    found: list[Any] = listed.json()
    if len(found) == 1000:
        more = client.get(
            "/api/v1/webhooks/deliveries",
            params={"resource_id": batch_id, "status": "delivered", "limit": 1000, "offset": 1000},
        )
        found += more.json()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--urls", type=int, default=1000)
    parser.add_argument("--main-content", action="store_true", help="onlyMainContent (trafilatura)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--webhook", action="store_true", help="also the platform with a webhook for every event"
    )
    args = parser.parse_args()
    articles = load_articles()

    with tempfile.TemporaryDirectory() as workdir, NginxCorpus(articles) as site:
        urls = [site.url_of(articles[n % len(articles)], n) for n in range(args.urls)]
        warm = [site.url_of(articles[n % len(articles)], -1 - n) for n in range(20)]
        node = ScrapydNode(Path(workdir) / "node").start()
        env = {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{site.port}", "GATEWAY_LOG_LEVEL": "warning"}
        gateway = Gateway(Path(workdir) / "gateway", node, env=env).start()
        limit_runs: list[tuple[float, float]] = []
        platform_runs: list[tuple[float, float]] = []
        webhook_runs: list[tuple[float, float]] = []
        webhook = f"http://127.0.0.1:{site.port}/webhook" if args.webhook else None
        assert gateway.process is not None
        memory = Sampler(gateway.process.pid, node)
        try:
            platform(gateway, warm, args.main_content)  # scrapyd caches the spider list
            memory.start()
            for _ in range(args.rounds):
                limit_runs.append(measured(lambda: asyncio.run(limit(urls, args.main_content))))
                platform_runs.append(measured(lambda: platform(gateway, urls, args.main_content)))
                if webhook is not None:
                    webhook_runs.append(measured(lambda: platform(gateway, urls, args.main_content, webhook)))
        finally:
            memory.stop()
            gateway.stop()
            node.stop()
    report(args.urls, args.rounds, args.main_content, limit_runs, platform_runs)
    if webhook_runs:
        with_webhook = statistics.median(seconds for seconds, _ in webhook_runs)
        without = statistics.median(seconds for seconds, _ in platform_runs)
        cpu = statistics.median(busy for _, busy in webhook_runs) * 1000 / args.urls
        print(
            f"  with a webhook for every event: {args.urls / with_webhook:.1f} pages/s,"
            f" {cpu:.1f} CPU s / 1,000 pages (delivery included);"
            f" ratio with / without {without / with_webhook:.2f}"
        )
    print(f"  peak RSS: gateway {memory.gateway_peak:.0f} MiB, a spider process {memory.spider_peak:.0f} MiB")


def report(
    count: int,
    rounds: int,
    main: bool,
    limit_runs: list[tuple[float, float]],
    platform_runs: list[tuple[float, float]],
) -> None:
    def rate(runs: list[tuple[float, float]]) -> float:
        return count / statistics.median(seconds for seconds, _ in runs)

    def cpu(runs: list[tuple[float, float]]) -> float:
        return statistics.median(busy for _, busy in runs) * 1000 / count

    limit_rate, platform_rate = rate(limit_runs), rate(platform_runs)
    each = ", ".join(
        f"{limit_seconds / platform_seconds:.2f}"
        for (limit_seconds, _), (platform_seconds, _) in zip(limit_runs, platform_runs, strict=True)
    )
    mode = "main content" if main else "whole page"
    loop = "trafilatura markdown, 2 processes" if main else "html-to-markdown, 2 threads"
    rows = [
        (f"medians of {rounds} rounds", "pages/s", "CPU s / 1,000 pages"),
        (f"limit: aiohttp + {loop}", f"{limit_rate:.1f}", f"{cpu(limit_runs):.1f}"),
        (
            "platform: POST /v2/batch/scrape until completed",
            f"{platform_rate:.1f}",
            f"{cpu(platform_runs):.1f}",
        ),
        ("ratio platform / limit (target >= 0.85)", f"{platform_rate / limit_rate:.2f}", ""),
        ("ratio of each round", each, ""),
    ]
    print(f"{count} corpus URLs from nginx, markdown + links + metadata, {mode}, {os.cpu_count()} cores")
    for name, first, second in rows:
        print(f"  {name:52} {first:>9}   {second}")


if __name__ == "__main__":
    main()
