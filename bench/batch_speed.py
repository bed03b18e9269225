"""Pages per second of a 1,000-URL batch end to end, next to a plain asyncio loop doing the same work.

    .venv/bin/python -m bench.batch_speed [--urls 1000] [--main-content] [--rounds 3]

Serves the article corpus on loopback (each page under several distinct URLs), then:
  - baseline: an asyncio HTTP loop (httpx, 64 requests in flight) that decodes and converts every page
    with the same functions as the batch pipelines (markdown, links, head metadata), in a process
    pool with one worker per core;
  - platform: POST /v2/batch/scrape with the same URLs and options, until the batch is completed.
Each round runs both, one after the other; medians over the rounds damp a noisy machine. Prints both
rates and their ratio (target: platform >= 0.7 of the baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx

from bench.corpus import CorpusSite, load_articles
from spiders_project.conversion import convert_html
from spiders_project.decoding import decode_body
from spiders_project.metadata import head_metadata
from spiders_project.pages import ContentOptions
from tests.harness import Gateway, ScrapydNode


def convert(body: bytes, content_type: str, url: str, options: ContentOptions) -> int:
    """What the batch pipelines do to an HTML page; returns the markdown's length."""
    text, _ = decode_body(body, content_type)
    content = convert_html(text, url, options)
    head_metadata(text, url)
    return len(content.markdown)


async def baseline(urls: list[str], options: ContentOptions) -> float:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(64)
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        async with httpx.AsyncClient(timeout=60) as client:

            async def one(url: str) -> int:
                async with gate:
                    response = await client.get(url)
                return await loop.run_in_executor(
                    pool, convert, response.content, response.headers.get("content-type", ""), url, options
                )

            started = time.perf_counter()
            sizes = await asyncio.gather(*(one(url) for url in urls))
            elapsed = time.perf_counter() - started
    assert all(sizes), "the baseline produced empty markdown"
    return elapsed


def platform(gateway: Gateway, urls: list[str], only_main_content: bool) -> float:
    with gateway.client(gateway.admin_key()) as client:
        started = time.perf_counter()
        batch = client.post(
            "/v2/batch/scrape",
            json={"urls": urls, "formats": ["markdown", "links"], "onlyMainContent": only_main_content},
        ).json()
        while (status := client.get(f"/v2/batch/scrape/{batch['id']}?limit=1").json())[
            "status"
        ] == "scraping":
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        if status["status"] != "completed" or status["completed"] != len(urls):
            raise RuntimeError(f"the batch ended {status['status']} with {status['completed']} pages")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--urls", type=int, default=1000)
    parser.add_argument("--main-content", action="store_true", help="onlyMainContent (trafilatura)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    articles = load_articles()
    options = ContentOptions(only_main_content=args.main_content, want_links=True)

    with tempfile.TemporaryDirectory() as workdir, CorpusSite(articles) as site:
        urls = [site.url_of(articles[n % len(articles)], n) for n in range(args.urls)]
        warm = [site.url_of(articles[n % len(articles)], -1 - n) for n in range(20)]
        node = ScrapydNode(Path(workdir) / "node").start()
        env = {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{site.port}", "GATEWAY_LOG_LEVEL": "warning"}
        gateway = Gateway(Path(workdir) / "gateway", node, env=env).start()
        base_runs, platform_runs = [], []
        try:
            platform(gateway, warm, args.main_content)  # scrapyd caches the spider list
            for _ in range(args.rounds):
                base_runs.append(asyncio.run(baseline(urls, options)))
                platform_runs.append(platform(gateway, urls, args.main_content))
        finally:
            gateway.stop()
            node.stop()

    base_seconds, platform_seconds = statistics.median(base_runs), statistics.median(platform_runs)
    base_rate, platform_rate = args.urls / base_seconds, args.urls / platform_seconds
    rounds = ", ".join(f"{base / mine:.2f}" for base, mine in zip(base_runs, platform_runs, strict=True))
    mode = (
        "main content (trafilatura + html-to-markdown)"
        if args.main_content
        else "whole page (html-to-markdown)"
    )
    print(f"{args.urls} URLs of corpus pages, markdown + links + metadata, {mode}, {os.cpu_count()} cores")
    print(f"medians of {args.rounds} rounds")
    print(f"  baseline: asyncio + process pool   {base_seconds:6.1f} s  {base_rate:6.1f} pages/s")
    print(f"  platform: POST until completed     {platform_seconds:6.1f} s  {platform_rate:6.1f} pages/s")
    print(f"  ratio platform / baseline          {platform_rate / base_rate:6.2f}  (target >= 0.70)")
    print(f"  ratio of each round                {rounds}")


if __name__ == "__main__":
    main()
