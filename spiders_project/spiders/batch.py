"""The batch spider: fetches the URLs it claims from a batch and yields one fetched page per URL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response
from twisted.python.failure import Failure

from spiders_project.fetching import (
    PAGE_SPIDER_SETTINGS,
    PageSpider,
    failure_code,
    fetched_page,
    fill_from_response,
)
from spiders_project.items import FetchedPage

# An idle spider asks again about every 5 s (Scrapy's idle signal), so this is about a minute.
MAX_FAILED_CLAIMS = 12


class BatchSpider(PageSpider):
    """Argument: ``inputs_url``, where the gateway hands out the batch's URLs and options.

    URLs are claimed a chunk at a time, and the next chunk is asked for while the last is still
    being fetched. The processes that share a big batch thus share its URLs however fast each is.
    """

    name = "batch"
    custom_settings: dict[str, Any] | None = {  # noqa: RUF012 - Scrapy reads it from the class
        **PAGE_SPIDER_SETTINGS,
        # The user named these URLs; robots.txt governs crawlers that discover pages.
        "ROBOTSTXT_OBEY": False,
        "CONCURRENT_REQUESTS": 64,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 32,
        # Requests of a batch have no referrer; working one out for each costs time for nothing.
        "REFERER_ENABLED": False,
    }

    def __init__(self, inputs_url: str, chunk: str = "64", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # scrapyd names the job in the spider's arguments; the gateway gives back the pages of a
        # job that died to the others.
        self.job_id = kwargs.get("_job", "")
        self.inputs_url = inputs_url
        self.chunk = max(1, int(chunk))
        self._outstanding = 0
        self._claiming = False
        self._exhausted = False
        self._failed_claims = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> BatchSpider:
        spider: BatchSpider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._idle, signal=signals.spider_idle)
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield self._claim()

    def parse_inputs(self, response: Response) -> Iterator[scrapy.Request]:
        self._claiming = False
        if response.status != 200:
            self._failed_claims += 1
            self.logger.warning("the gateway answered HTTP %s for more of the batch", response.status)
            return
        self._failed_claims = 0
        inputs = json.loads(response.text)
        meta = self.take_inputs(inputs)
        self._exhausted = len(inputs["pages"]) < self.chunk
        for index, url in inputs["pages"]:
            self._outstanding += 1
            yield scrapy.Request(
                url,
                callback=self.parse_page,
                errback=self.page_failed,
                headers=self.page_options.headers,
                meta={**meta, "input_index": index, "source_url": url},
                dont_filter=True,
            )

    def parse_page(self, response: Response) -> Iterator[FetchedPage | scrapy.Request]:
        yield fill_from_response(self._page(response.request), response)
        yield from self._claim_more()

    def page_failed(self, failure: Failure) -> Iterator[FetchedPage | scrapy.Request]:
        page = self._page(failure.request)  # type: ignore[attr-defined]
        page.error_code, page.error = failure_code(failure)
        yield page
        yield from self._claim_more()

    def _claim_more(self) -> Iterator[scrapy.Request]:
        """Ask for the next chunk once half of the last one is done, so fetching never runs dry."""
        self._outstanding -= 1
        if not self._exhausted and not self._claiming and self._outstanding <= self.chunk // 2:
            yield self._claim()

    def _claim(self) -> scrapy.Request:
        self._claiming = True
        separator = "&" if "?" in self.inputs_url else "?"
        return scrapy.Request(
            f"{self.inputs_url}{separator}{urlencode({'claim': self.chunk, 'job': self.job_id})}",
            callback=self.parse_inputs,
            errback=self._claim_failed,
            # A retried claim could take a second chunk while the first was granted: the idle
            # spider asks again instead (see _idle).
            meta={"platform_internal": True, "dont_retry": True},
            priority=100,
            dont_filter=True,
        )

    def _claim_failed(self, failure: Failure) -> None:
        # The next page that ends asks again; with none left, the idle spider does (the gateway may
        # be restarting), and after a minute of failures it ends and the gateway reports the rest.
        self._claiming = False
        self._failed_claims += 1
        self.logger.warning("could not claim more of the batch's URLs: %s", failure.value)

    def _idle(self) -> None:
        if self._exhausted or self._claiming or self._failed_claims > MAX_FAILED_CLAIMS:
            return
        self.crawler.engine.crawl(self._claim())
        raise DontCloseSpider

    @staticmethod
    def _page(request: Any) -> FetchedPage:
        return fetched_page(request, request.meta["input_index"], request.meta["source_url"])
