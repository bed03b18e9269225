"""The batch spider: fetches the URLs it claims from a batch and yields one fetched page per URL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, DontCloseSpider
from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro
from twisted.python.failure import Failure

from node.outcome import GATEWAY_UNREACHABLE, JOB_OVER
from spiders_project.contract import Inputs
from spiders_project.fetching import (
    PAGE_SPIDER_SETTINGS,
    PageSpider,
    failure_code,
    fetched_page,
    fill_from_response,
)
from spiders_project.gateway_inputs import InputsUnavailable, read_inputs, read_inputs_now
from spiders_project.items import FetchedPage

# How long a spider keeps asking a gateway that does not answer (the BATCH_CLAIM_PATIENCE setting,
# in seconds), and the longest pause between two tries.
CLAIM_PATIENCE_SECONDS = 90.0
CLAIM_BACKOFF_MAX_SECONDS = 5.0


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
        super().__init__(inputs_url, **kwargs)
        # scrapyd names the job in the spider's arguments; the gateway gives back the pages of a
        # job that died to the others.
        self.job_id = kwargs.get("_job", "")
        self.chunk = max(1, int(chunk))
        self._outstanding = 0
        self._claiming = False
        self._exhausted = False
        self._failing_since: float | None = None
        self._retry_at = 0.0
        self.claim_patience = CLAIM_PATIENCE_SECONDS

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> BatchSpider:
        spider: BatchSpider = super().from_crawler(crawler, *args, **kwargs)
        spider.claim_patience = crawler.settings.getfloat("BATCH_CLAIM_PATIENCE", CLAIM_PATIENCE_SECONDS)
        crawler.signals.connect(spider._idle, signal=signals.spider_idle)
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request]:
        self._claiming = True
        try:
            inputs = await read_inputs_now(self._claim_url())
        except InputsUnavailable as exc:
            self._claim_failed(exc)
            return
        for request in self._take(inputs):
            yield request

    def _take(self, inputs: Inputs) -> Iterator[scrapy.Request]:
        """The page requests of a granted claim."""
        self._claiming = False
        self._failing_since = None
        self.take_inputs(inputs)
        self._exhausted = len(inputs.pages) < self.chunk
        for index, url in inputs.pages:
            self._outstanding += 1
            yield scrapy.Request(
                url,
                callback=self.parse_page,
                errback=self.page_failed,
                headers=self.page_options.headers,
                meta=self.page_meta(input_index=index, source_url=url),
                dont_filter=True,
            )

    def parse_page(self, response: Response) -> Iterator[FetchedPage]:
        yield fill_from_response(self._page(response.request), response)
        self._claim_more()

    def page_failed(self, failure: Failure) -> Iterator[FetchedPage]:
        page = self._page(failure.request)  # type: ignore[attr-defined]
        page.error_code, page.error = failure_code(failure)
        yield page
        self._claim_more()

    def _claim_more(self) -> None:
        """Ask for the next chunk once half of the last one is done, so fetching never runs dry."""
        self._outstanding -= 1
        if not self._exhausted and self._outstanding <= self.chunk // 2:
            self._claim_in_background()

    def _claim_in_background(self) -> None:
        if self._claiming or time.monotonic() < self._retry_at or not self.crawler.crawling:
            return
        self._claiming = True
        claim = read_inputs(self._claim_url())
        claim.addCallbacks(self._crawl_claimed, lambda failure: self._claim_failed(failure.value))

    def _crawl_claimed(self, inputs: Inputs) -> None:
        for request in self._take(inputs):
            self.crawler.engine.crawl(request)

    def _claim_url(self) -> str:
        separator = "&" if "?" in self.inputs_url else "?"
        return f"{self.inputs_url}{separator}{urlencode({'claim': self.chunk, 'job': self.job_id})}"

    def _claim_failed(self, error: BaseException) -> None:
        # The gateway may be restarting: ask again later, backing off, and only give up (closing
        # as gateway_unreachable; the gateway gives the rest to another process) after
        # claim_patience seconds without an answer.
        self._claiming = False
        if isinstance(error, InputsUnavailable) and 400 <= error.status < 500:
            # The gateway answered: the batch is gone (expired, deleted), and nothing more will come.
            self.logger.warning("the batch's URLs are no longer handed out: %s", error)
            self._exhausted = True
            if error.status == 410 and self.crawler.crawling and self.crawler.engine.spider is not None:
                # This job is over for the gateway: whatever it fetched now would be thrown away.
                deferred_from_coro(self.crawler.engine.close_spider_async(reason=JOB_OVER))
            return
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        waited = now - self._failing_since
        self._retry_at = now + min(CLAIM_BACKOFF_MAX_SECONDS, 0.5 + waited / 2)
        self.logger.warning("could not claim more of the batch's URLs: %s", error)

    def _gave_up(self) -> bool:
        return self._failing_since is not None and (
            time.monotonic() - self._failing_since > self.claim_patience
        )

    def _idle(self) -> None:
        if self._exhausted:
            return
        if self._gave_up():
            raise CloseSpider(GATEWAY_UNREACHABLE)
        self._claim_in_background()
        raise DontCloseSpider

    @staticmethod
    def _page(request: Any) -> FetchedPage:
        return fetched_page(request, request.meta["input_index"], request.meta["source_url"])
