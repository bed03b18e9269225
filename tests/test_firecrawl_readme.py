"""Firecrawl's own examples (firecrawl-py's README and its change-tracking guide), unchanged but for
``api_url`` and the site they point at, run against the platform."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from firecrawl import Firecrawl
from firecrawl.types import ScrapeOptions
from firecrawl.v2.types import PaginationConfig

from tests.harness import Gateway
from tests.site import QuotesSite


@pytest.fixture
def firecrawl(gateway: Gateway) -> Iterator[Firecrawl]:
    return Firecrawl(api_key=gateway.create_key("readme reader"), api_url=gateway.url)


def test_scrape_and_crawl(firecrawl: Firecrawl, site: QuotesSite) -> None:
    # Scrape a website (v2):
    data = firecrawl.scrape(site.url, formats=["markdown", "html"])
    # Crawl a website (v2 waiter):
    crawl_status = firecrawl.crawl(
        site.url, limit=100, scrape_options=ScrapeOptions(formats=["markdown", "html"]), poll_interval=1
    )

    assert data.markdown is not None
    assert "Mark Twain" in data.markdown
    assert data.html is not None
    assert "<" in data.html
    assert crawl_status.status == "completed"
    # The site's four quote pages; its tag links answer 404 and are reported as errors.
    pages = {doc.metadata.source_url for doc in crawl_status.data if doc.metadata}
    assert pages == {site.url, *(f"{site.url}page/{n}/" for n in (2, 3, 4))}
    assert all(doc.markdown and doc.html for doc in crawl_status.data)
    errors = firecrawl.get_crawl_errors(crawl_status.id).errors
    assert errors
    assert all(error.code == "HTTP_404" and "/tag/" in error.url for error in errors)
    assert crawl_status.completed == len(pages) + len(errors)


def test_asynchronous_crawling_status_pages_and_cancelling(firecrawl: Firecrawl, site: QuotesSite) -> None:
    crawl_job = firecrawl.start_crawl(site.url, limit=100, scrape_options=ScrapeOptions(formats=["markdown"]))
    crawl_status = firecrawl.get_crawl_status(crawl_job.id)
    assert crawl_status.status in ("scraping", "completed")

    # Crawl: fetch one page at a time
    status = firecrawl.get_crawl_status(crawl_job.id, pagination_config=PaginationConfig(auto_paginate=False))
    if status.next:
        page2 = firecrawl.get_crawl_status_page(status.next)
        assert page2.data is not None

    # Batch scrape: fetch one page at a time
    batch_job = firecrawl.start_batch_scrape([site.url])
    batch = firecrawl.get_batch_scrape_status(
        batch_job.id, pagination_config=PaginationConfig(auto_paginate=False)
    )
    assert batch.status in ("scraping", "completed")

    cancel_crawl = firecrawl.cancel_crawl(crawl_job.id)
    # True and cancelled, or False had it completed already.
    ended = firecrawl.get_crawl_status(crawl_job.id).status
    assert (cancel_crawl, ended) in ((True, "cancelled"), (False, "completed"))


def test_map_and_batch_scrape(firecrawl: Firecrawl, site: QuotesSite) -> None:
    # Map a website (v2):
    map_result = firecrawl.map(site.url)
    job = firecrawl.batch_scrape([site.url, f"{site.url}page/2/"], formats=["markdown"], poll_interval=1)

    assert f"{site.url}page/2/" in {link.url for link in map_result.links}
    assert job.status == "completed"
    assert len(job.data) == 2


def test_change_tracking(firecrawl: Firecrawl, site: QuotesSite) -> None:
    first = firecrawl.scrape(
        site.url, formats=["markdown", {"type": "changeTracking", "modes": ["git-diff"]}]
    )
    result = firecrawl.scrape(
        site.url, formats=["markdown", {"type": "changeTracking", "modes": ["git-diff"]}]
    )

    assert first.change_tracking is not None
    assert result.change_tracking is not None
    assert result.change_tracking["changeStatus"] == "same"
    assert result.change_tracking["previousScrapeAt"] is not None
