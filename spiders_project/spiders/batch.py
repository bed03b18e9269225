"""The batch spider: fetches a batch's URLs (its share of them) and yields one fetched page per URL."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
)
from scrapy.http import Response
from twisted.internet.error import DNSLookupError, TCPTimedOutError, TimeoutError
from twisted.python.failure import Failure

from spiders_project.addresses import AddressPolicy
from spiders_project.items import FetchedPage
from spiders_project.middlewares import BlockedRequest
from spiders_project.pages import PageOptions

MAX_PAGE_BYTES = 10 * 1024 * 1024


class BatchSpider(scrapy.Spider):
    """Arguments: ``inputs_url`` (where the gateway serves the batch's URLs and options), and
    ``part`` of ``parts`` when a big batch is shared among several processes.
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
        # Scraped items are logged at DEBUG, whole: a batch's log would hold every page twice.
        "LOG_LEVEL": "INFO",
        "DOWNLOADER_MIDDLEWARES": {"spiders_project.middlewares.AddressGuardMiddleware": 50},
    }

    def __init__(self, inputs_url: str, part: str = "0", parts: str = "1", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inputs_url = inputs_url
        self.part, self.parts = int(part), int(parts)
        self.page_options = PageOptions()
        self.address_policy: AddressPolicy | None = None

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(
            self.inputs_url,
            callback=self.parse_inputs,
            meta={"platform_internal": True},
            dont_filter=True,
        )

    def parse_inputs(self, response: Response) -> Iterator[scrapy.Request]:
        if response.status != 200:
            raise RuntimeError(f"the gateway refused this batch's inputs: HTTP {response.status}")
        inputs = json.loads(response.text)
        self.page_options = PageOptions.from_json(inputs["options"])
        self.address_policy = AddressPolicy.from_entries(**inputs["addresses"])
        meta: dict[str, Any] = {}
        if self.page_options.timeout_ms:
            meta["download_timeout"] = self.page_options.timeout_ms / 1000
        for index, url in inputs["pages"]:
            if index % self.parts != self.part:
                continue
            yield scrapy.Request(
                url,
                callback=self.parse_page,
                errback=self.page_failed,
                headers=self.page_options.headers,
                meta={**meta, "input_index": index, "source_url": url},
                dont_filter=True,
            )

    def parse_page(self, response: Response) -> Iterator[FetchedPage]:
        page = self._page(response.request)
        page.final_url = response.url
        page.status_code = response.status
        page.content_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
        page.body = response.body
        if response.status >= 400:
            page.error_code = f"HTTP_{response.status}"
            page.error = f"the server answered HTTP {response.status}"
        yield page

    def page_failed(self, failure: Failure) -> Iterator[FetchedPage]:
        page = self._page(failure.request)  # type: ignore[attr-defined]
        page.error_code, page.error = _failure_code(failure)
        yield page

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
    return "NETWORK_ERROR", message
