"""What the platform's page spiders (``batch``, ``site``) share: settings, inputs, and failure codes."""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urlencode

import scrapy
from scrapy.core.downloader.handlers.http11 import TunnelError
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
)
from scrapy.http import Response
from scrapy.settings import BaseSettings
from twisted.internet.error import DNSLookupError, TCPTimedOutError, TimeoutError
from twisted.python.failure import Failure

from node.egress import BlockedRequest, HostNotFound
from node.secret_arguments import INPUTS_TOKEN, INPUTS_TOKEN_VARIABLE
from spiders_project.actions import ACTION_FAILED, ActionFailed, RenderTimeout
from spiders_project.contract import Inputs
from spiders_project.items import FetchedPage
from spiders_project.middlewares import Proxy
from spiders_project.pages import PageOptions

MAX_PAGE_BYTES = 10 * 1024 * 1024

PAGE_SPIDER_SETTINGS: dict[str, Any] = {
    "HTTPERROR_ALLOW_ALL": True,
    "COOKIES_ENABLED": False,
    "DOWNLOAD_MAXSIZE": MAX_PAGE_BYTES,
    "DOWNLOAD_WARNSIZE": 0,
    "RETRY_TIMES": 2,
    # Pages fetched and waiting for conversion, at most 2 MB of them (Scrapy's default: 5 MB): the
    # conversion is what a process waits for, so more waiting pages would only hold memory.
    "SCRAPER_SLOT_MAX_ACTIVE_SIZE": 2_000_000,
    # Scraped items are logged at DEBUG, whole: a job's log would hold every page twice.
    "LOG_LEVEL": "INFO",
    "DOWNLOADER_MIDDLEWARES": {
        "spiders_project.middlewares.PageTimingMiddleware": 50,
        # Scrapy's meta refresh without decoding every page whole first (at Scrapy's own place).
        "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
        "spiders_project.middlewares.HeadMetaRefreshMiddleware": 580,
        # Before HttpProxyMiddleware (750), which turns a proxy's credentials into a header.
        "spiders_project.middlewares.ProxyRotationMiddleware": 700,
    },
}


class PageSpider(scrapy.Spider):
    """A spider whose work, options, address policy and proxies come from the gateway's inputs."""

    def __init__(self, inputs_url: str, **kwargs: Any) -> None:
        # The batch's token reaches the process in its environment (node.launcher), or as an
        # argument on a node that is not the platform's own. Taken out of the environment: the
        # browser this process may start inherits it, and runs pages' scripts.
        token = os.environ.pop(INPUTS_TOKEN_VARIABLE, "") or kwargs.pop(INPUTS_TOKEN, "")
        super().__init__(**kwargs)
        separator = "&" if "?" in inputs_url else "?"
        self.inputs_url = f"{inputs_url}{separator}{urlencode({'token': token})}" if token else inputs_url
        self.page_options = PageOptions()
        self.proxies: list[Proxy] = []

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        super().update_settings(settings)
        if not settings.getbool("BATCH_RENDERING"):
            return
        # The gateway sets BATCH_RENDERING for work rendered in a browser: pages go through
        # scrapy-playwright, as many at once as BROWSER_PAGES (the gateway's own calls too, one more).
        pages = settings.getint("BROWSER_PAGES", 4)
        handler = "spiders_project.rendering.GuardedPlaywrightHandler"
        settings.set("DOWNLOAD_HANDLERS", {"http": handler, "https": handler}, priority="spider")
        settings.set("CONCURRENT_REQUESTS", pages + 1, priority="spider")
        settings.set("CONCURRENT_REQUESTS_PER_DOMAIN", pages + 1, priority="spider")
        settings.set("PLAYWRIGHT_MAX_PAGES_PER_CONTEXT", pages, priority="spider")

    def take_inputs(self, inputs: Inputs) -> None:
        """Adopt the options and proxies of the gateway's inputs."""
        self.page_options = PageOptions.from_json(inputs.options)
        self.proxies = [Proxy.from_url(url) for url in inputs.proxies]

    def page_meta(self, **extra: Any) -> dict[str, Any]:
        """The meta of one page request: its timeout, and its own rendering methods (the browser
        keeps each page's screenshot and actions' outputs on them), with ``extra``."""
        meta: dict[str, Any] = {}
        if self.page_options.timeout_ms:
            meta["download_timeout"] = self.page_options.timeout_ms / 1000
        if self.page_options.rendered and self.settings.getbool("BATCH_RENDERING"):
            # Imported here: Playwright costs every other spider's start a third of a second.
            from spiders_project.rendering import rendering_meta

            meta |= rendering_meta(self.page_options)
        return meta | extra


def fetched_page(request: Any, input_index: int, source_url: str) -> FetchedPage:
    """The fetch facts every page starts from: what was asked, how long it took, how often retried."""
    started = request.meta.get("fetch_started", time.monotonic())
    return FetchedPage(
        input_index=input_index,
        source_url=source_url,
        final_url=request.url,
        duration_ms=int((time.monotonic() - started) * 1000),
        retry_count=int(request.meta.get("retry_times", 0)),
    )


def fill_from_response(page: FetchedPage, response: Response) -> FetchedPage:
    page.final_url = response.url
    page.status_code = response.status
    page.content_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
    page.body = response.body
    if "playwright" in response.flags:
        from spiders_project.rendering import action_outputs_of, screenshot_of

        page.screenshot = screenshot_of(response.meta)
        outputs = action_outputs_of(response.meta)
        page.actions = outputs.to_record() if outputs else None
    if response.status >= 400:
        page.error_code = f"HTTP_{response.status}"
        page.error = f"the server answered HTTP {response.status}"
    return page


def failure_code(failure: Failure) -> tuple[str, str]:
    """The record's error code and message for a request that got no response."""
    error = failure.value
    message = str(error) or type(error).__name__
    if isinstance(error, CannotResolveHostError | DNSLookupError | HostNotFound):
        return "DNS_ERROR", message
    if isinstance(error, ActionFailed):
        return ACTION_FAILED, message
    if isinstance(error, BlockedRequest):
        return "BLOCKED_ADDRESS", message
    if isinstance(error, DownloadConnectionRefusedError | ConnectionRefusedError):
        return "CONNECTION_REFUSED", message
    if isinstance(error, DownloadTimeoutError | TimeoutError | TCPTimedOutError | RenderTimeout):
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
