"""The batch spider: fetches the URLs it claims from a batch and yields one fetched page per URL."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import scrapy
from scrapy import signals
from scrapy.core.downloader.handlers.http11 import TunnelError
from scrapy.crawler import Crawler
from scrapy.exceptions import (
    CannotResolveHostError,
    DontCloseSpider,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
)
from scrapy.http import Response
from scrapy.settings import BaseSettings
from twisted.internet.error import DNSLookupError, TCPTimedOutError, TimeoutError
from twisted.python.failure import Failure

from spiders_project.addresses import AddressPolicy
from spiders_project.items import FetchedPage
from spiders_project.middlewares import BlockedRequest, Proxy
from spiders_project.pages import PageOptions

MAX_PAGE_BYTES = 10 * 1024 * 1024
# An idle spider asks again about every 5 s (Scrapy's idle signal), so this is about a minute.
MAX_FAILED_CLAIMS = 12


class BatchSpider(scrapy.Spider):
    """Argument: ``inputs_url``, where the gateway hands out the batch's URLs and options.

    URLs are claimed a chunk at a time, and the next chunk is asked for while the last is still
    being fetched. The processes that share a big batch thus share its URLs however fast each is.
    """

    name = "batch"
    custom_settings: dict[str, Any] | None = {  # noqa: RUF012 - Scrapy reads it from the class
        # The user named these URLs; robots.txt governs crawlers that discover pages.
        "ROBOTSTXT_OBEY": False,
        "HTTPERROR_ALLOW_ALL": True,
        "COOKIES_ENABLED": False,
        "CONCURRENT_REQUESTS": 64,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 32,
        "DOWNLOAD_MAXSIZE": MAX_PAGE_BYTES,
        "DOWNLOAD_WARNSIZE": 0,
        "RETRY_TIMES": 2,
        # Requests of a batch have no referrer; working one out for each costs time for nothing.
        "REFERER_ENABLED": False,
        # Scraped items are logged at DEBUG, whole: a batch's log would hold every page twice.
        "LOG_LEVEL": "INFO",
        "DOWNLOADER_MIDDLEWARES": {
            "spiders_project.middlewares.AddressGuardMiddleware": 50,
            # Before HttpProxyMiddleware (750), which turns a proxy's credentials into a header.
            "spiders_project.middlewares.ProxyRotationMiddleware": 700,
        },
    }

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        super().update_settings(settings)
        if not settings.getbool("BATCH_RENDERING"):
            return
        # The gateway sets BATCH_RENDERING for batches rendered in a browser: pages go through
        # scrapy-playwright, as many at once as BROWSER_PAGES (the claims too, one more).
        pages = settings.getint("BROWSER_PAGES", 4)
        handler = "spiders_project.rendering.GuardedPlaywrightHandler"
        settings.set("DOWNLOAD_HANDLERS", {"http": handler, "https": handler}, priority="spider")
        settings.set("CONCURRENT_REQUESTS", pages + 1, priority="spider")
        settings.set("CONCURRENT_REQUESTS_PER_DOMAIN", pages + 1, priority="spider")
        settings.set("PLAYWRIGHT_MAX_PAGES_PER_CONTEXT", pages, priority="spider")

    def __init__(self, inputs_url: str, chunk: str = "64", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # scrapyd names the job in the spider's arguments; the gateway gives back the pages of a
        # job that died to the others.
        self.job_id = kwargs.get("_job", "")
        self.inputs_url = inputs_url
        self.chunk = max(1, int(chunk))
        self.page_options = PageOptions()
        self.address_policy: AddressPolicy | None = None
        self.proxies: list[Proxy] = []
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
        self.page_options = PageOptions.from_json(inputs["options"])
        self.address_policy = AddressPolicy.from_entries(**inputs["addresses"])
        self._exhausted = len(inputs["pages"]) < self.chunk
        self.proxies = [Proxy.from_url(url) for url in inputs.get("proxies") or ()]
        meta: dict[str, Any] = {}
        if self.page_options.timeout_ms:
            meta["download_timeout"] = self.page_options.timeout_ms / 1000
        if self.page_options.rendered and self.settings.getbool("BATCH_RENDERING"):
            # Imported here: Playwright costs every other batch's start a third of a second.
            from spiders_project.rendering import rendering_meta

            meta |= rendering_meta(self.page_options)
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
        page = self._page(response.request)
        page.final_url = response.url
        page.status_code = response.status
        page.content_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
        page.body = response.body
        if "playwright" in response.flags:
            from spiders_project.rendering import screenshot_of

            page.screenshot = screenshot_of(response.meta)
        if response.status >= 400:
            page.error_code = f"HTTP_{response.status}"
            page.error = f"the server answered HTTP {response.status}"
        yield page
        yield from self._claim_more()

    def page_failed(self, failure: Failure) -> Iterator[FetchedPage | scrapy.Request]:
        page = self._page(failure.request)  # type: ignore[attr-defined]
        page.error_code, page.error = _failure_code(failure)
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

    def _page(self, request: Any) -> FetchedPage:
        started = request.meta.get("fetch_started", time.monotonic())
        return FetchedPage(
            input_index=request.meta["input_index"],
            source_url=request.meta["source_url"],
            final_url=request.url,
            duration_ms=int((time.monotonic() - started) * 1000),
            retry_count=int(request.meta.get("retry_times", 0)),
        )


def _failure_code(failure: Failure) -> tuple[str, str]:
    error = failure.value
    message = str(error) or type(error).__name__
    if isinstance(error, BlockedRequest):
        return "BLOCKED_ADDRESS", message
    if isinstance(error, CannotResolveHostError | DNSLookupError):
        return "DNS_ERROR", message
    if isinstance(error, DownloadConnectionRefusedError | ConnectionRefusedError):
        return "CONNECTION_REFUSED", message
    if isinstance(error, DownloadTimeoutError | TimeoutError | TCPTimedOutError):
        return "TIMEOUT", message
    if isinstance(error, DownloadCancelledError) or "max size" in message.lower():
        return "TOO_LARGE", f"the page is larger than {MAX_PAGE_BYTES // (1024 * 1024)} MiB"
    if isinstance(error, IgnoreRequest):
        return "IGNORED", message
    if _from_playwright(error, "TimeoutError"):
        waited_for = "wait_for_selector" in message
        return ("WAIT_FOR_SELECTOR_TIMEOUT" if waited_for else "TIMEOUT"), message.splitlines()[0]
    if _from_playwright(error, "Error"):
        code = "PROXY_ERROR" if "ERR_PROXY" in message or "ERR_TUNNEL" in message else "NETWORK_ERROR"
        return code, message.splitlines()[0]
    if isinstance(error, TunnelError):
        return "PROXY_ERROR", message
    return "NETWORK_ERROR", message


def _from_playwright(error: BaseException | None, name: str) -> bool:
    """Whether ``error`` is Playwright's ``name`` error (without importing Playwright)."""
    return any(
        cls.__module__.startswith("playwright.") and cls.__name__ == name for cls in type(error).__mro__
    )
