"""How long Firecrawl's one-page scrape (POST /v2/scrape) takes to answer, against fetching and
converting the same page in this process, in the same run.

    .venv/bin/python -m bench.scrape_latency [--runs N]

Starts the example quotes site and a platform on free loopback ports (as the tests do), then times,
in alternating rounds:
  - direct: one HTTP GET of the page and its conversion to markdown with the spiders' converter,
    in this process: the least any scrape of it can take;
  - platform: POST /v2/scrape with maxAge 0 (always fetched; the page goes through a spider
    process like a batch's) until its answer arrives;
  - a copy: the same scrape with maxAge of a minute, answered from the stored scrape.
Prints medians and the 90th percentiles (target: the platform's median at most 1 s).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.job_latency import PAUSE_SECONDS, Platform
from spiders_project.conversion import convert_html
from spiders_project.pages import ContentOptions
from tests.site import QuotesSite

TARGET_SECONDS = 1.0


def direct(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    page = client.get(url)
    convert_html(page.text, url, ContentOptions(only_main_content=True))
    return time.perf_counter() - started


def scrape(client: httpx.Client, url: str, max_age_ms: int) -> float:
    started = time.perf_counter()
    answer = client.post("/v2/scrape", json={"url": url, "formats": ["markdown"], "maxAge": max_age_ms})
    elapsed = time.perf_counter() - started
    answer.raise_for_status()
    expected = "hit" if max_age_ms else "miss"
    if answer.json()["data"]["metadata"]["cacheState"] != expected:
        raise RuntimeError(f"the scrape was not a cache {expected}: {answer.text[:300]}")
    return elapsed


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=11)
    runs = parser.parse_args().runs

    with tempfile.TemporaryDirectory() as workdir, QuotesSite() as site, httpx.Client() as plain:
        platform = Platform(Path(workdir), "scrape", site, {})
        try:
            scrape(platform.client, site.url, 0)  # warm-up: scrapyd caches the spider list
            times: dict[str, list[float]] = {"direct": [], "platform": [], "copy": []}
            for _ in range(runs):
                # A runner is replaced as its job starts: the next scrape waits for a warm one.
                time.sleep(PAUSE_SECONDS)
                times["direct"].append(direct(plain, site.url))
                times["platform"].append(scrape(platform.client, site.url, 0))
                times["copy"].append(scrape(platform.client, site.url, 60_000))
        finally:
            platform.stop()

    median = statistics.median(times["platform"])
    print(f"POST /v2/scrape of a small local page, {runs} runs (seconds)    median      p90")
    rows = [
        ("direct: GET and convert in this process", "direct"),
        ("platform, fetched (maxAge 0)", "platform"),
        ("platform, a stored copy (maxAge 60 s)", "copy"),
    ]
    for label, name in rows:
        print(f"  {label:<49} {statistics.median(times[name]):8.3f} {p90(times[name]):8.3f}")
    verdict = "met" if median <= TARGET_SECONDS else "missed"
    print(
        f"  target: fetched median <= {TARGET_SECONDS:.1f} s: {verdict} ({median / TARGET_SECONDS:.2f} of it)"
    )


if __name__ == "__main__":
    main()
