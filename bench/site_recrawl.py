"""Bytes and time of a website recrawl next to the first crawl of the same site, in one run.

    .venv/bin/python -m bench.site_recrawl [--pages 1000] [--changed 0.05] [--page-bytes 20000]

Serves a generated site on loopback (``tests/website.py``: ETag and Last-Modified on every page, a
footer clock that changes on every request), registers it as an open.cx datasource and waits for its
first crawl. Then it edits, adds and deletes pages (``--changed`` of the site in all: 60 % edits,
20 % additions, 20 % deletions), recrawls, and prints:
  - the change counts next to the ones the edits make (they must be exact);
  - the bytes the site sent for each crawl, and their ratio (target: recrawl < 10 % of the first);
  - the time of each crawl.
Pages default to 20 kB of text, a sixth of the article corpus' median page (115 kB of HTML): the
fixed cost of a 304 weighs more on small pages, so this is on the strict side.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.harness import Gateway, ScrapydNode
from tests.website import Website

COUNTS = ("new_pages", "updated_pages", "removed_pages", "unchanged_pages")


def crawl(client: httpx.Client, datasource_id: str, crawl_id: str) -> tuple[dict[str, Any], float]:
    """Wait for the crawl to end; returns it and how long it took since it was asked for."""
    started = time.perf_counter()
    while True:
        answer: dict[str, Any] = client.get(f"/crawl/{datasource_id}/crawls/{crawl_id}").json()
        if answer["status"] not in ("pending", "scraping"):
            break
        time.sleep(0.25)
    if answer["status"] != "completed":
        raise RuntimeError(f"the crawl ended {answer['status']}: {answer['error_message']}")
    return answer, time.perf_counter() - started


def _span(crawl: dict[str, Any]) -> float:
    started = datetime.fromisoformat(crawl["started_at"].replace("Z", "+00:00"))
    completed = datetime.fromisoformat(crawl["completed_at"].replace("Z", "+00:00"))
    return (completed - started).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--changed", type=float, default=0.05, help="share of the site changed")
    parser.add_argument("--page-bytes", type=int, default=20_000, help="article text per page")
    args = parser.parse_args()
    changed = max(5, round(args.pages * args.changed))
    edits, additions = round(changed * 0.6), round(changed * 0.2)
    deletions = changed - edits - additions

    with (
        tempfile.TemporaryDirectory() as workdir,
        Website(args.pages, paragraph_bytes=args.page_bytes) as site,
    ):
        node = ScrapydNode(Path(workdir) / "node").start()
        env = {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{site.port}", "GATEWAY_LOG_LEVEL": "warning"}
        gateway = Gateway(Path(workdir) / "gateway", node, env=env).start()
        try:
            with gateway.client(gateway.admin_key()) as client:
                client.timeout = httpx.Timeout(60.0)
                body = {"url": f"{site.url}/", "page_limit": 5000, "crawl_interval_hours": None}
                datasource = client.post("/crawl", json=body).json()
                first_id = client.get(f"/crawl/{datasource['id']}/crawls").json()["data"][0]["id"]
                first, first_seconds = crawl(client, datasource["id"], first_id)
                first_bytes, first_requests = site.bytes_sent, len(site.requests)
                site.reset_counts()

                chosen = random.Random(7).sample(range(args.pages), edits + deletions)
                for n in chosen[:edits]:
                    site.edit(n)
                for n in chosen[edits:]:
                    site.delete(n)
                for _ in range(additions):
                    site.add()
                expected = {
                    "new_pages": additions,
                    "updated_pages": edits,
                    "removed_pages": deletions,
                    "unchanged_pages": args.pages + 1 - deletions - edits,
                }
                started = client.post(f"/crawl/{datasource['id']}/crawls").json()
                second, second_seconds = crawl(client, datasource["id"], started["id"])
                second_bytes, second_requests = site.bytes_sent, len(site.requests)
                not_modified = sum(1 for _, status in site.requests if status == 304)
        finally:
            gateway.stop()
            node.stop()

    got = {name: second[name] for name in COUNTS}
    print(f"a {args.pages + 1}-page site, {args.page_bytes} bytes of text a page; {changed} pages changed")
    print(
        f"  first crawl   {first['total_pages']:5d} pages  {first_requests:5d} requests  "
        f"{first_bytes / 1e6:8.2f} MB  {first_seconds:6.1f} s"
    )
    print(
        f"  recrawl       {second['total_pages']:5d} pages  {second_requests:5d} requests  "
        f"{second_bytes / 1e6:8.2f} MB  {second_seconds:6.1f} s  ({not_modified} answered 304)"
    )
    print(
        f"  crawl's own time (started → applied): first {_span(first):5.1f} s, recrawl {_span(second):5.1f} s"
    )
    print(f"  bytes  recrawl / first crawl   {second_bytes / first_bytes:6.3f}  (target < 0.10)")
    print(f"  time   recrawl / first crawl   {second_seconds / first_seconds:6.3f}")
    for name in COUNTS:
        mark = "ok" if got[name] == expected[name] else "WRONG"
        print(f"  {name:16s} {got[name]:5d}  expected {expected[name]:5d}  {mark}")
    if got != expected:
        raise SystemExit("the recrawl's counts are not exact")


if __name__ == "__main__":
    main()
