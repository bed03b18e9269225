"""Pages rendered in a browser: what to wait for, screenshots, and a guard on every browser request.

A batch that asks for rendering runs its spider with ``BATCH_RENDERING``: its pages then go through
scrapy-playwright, in the system's Chromium (PLAYWRIGHT_LAUNCH_OPTIONS in settings.py).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any
from urllib.parse import urlsplit

from scrapy.crawler import Crawler
from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler
from scrapy_playwright.page import PageMethod

from spiders_project.addresses import AddressPolicy, BlockedAddress, default_port
from spiders_project.pages import PageOptions

DEFAULT_TIMEOUT_MS = 30_000
_IN_PAGE_SCHEMES = ("data", "blob", "about")


class GuardedPlaywrightHandler(ScrapyPlaywrightDownloadHandler):  # type: ignore[misc]
    """scrapy-playwright's handler; every request the browser makes (scripts, frames, redirects,
    XHR) must reach an address the batch's policy allows, or it is aborted."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._crawler = crawler
        self._resolved: dict[tuple[str, int], list[str]] = {}
        self.abort_request = self._blocked

    async def _blocked(self, request: Any) -> bool:
        policy: AddressPolicy | None = getattr(self._crawler.spider, "address_policy", None)
        if policy is None:
            return False
        parts = urlsplit(request.url)
        if parts.scheme in _IN_PAGE_SCHEMES:
            return False
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return True
        port = parts.port or default_port(parts.scheme)
        try:
            policy.check(parts.hostname, port, await self._resolve(parts.hostname, port))
        except BlockedAddress:
            return True
        return False

    async def _resolve(self, host: str, port: int) -> list[str]:
        key = (host, port)
        if key not in self._resolved:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError):
                infos = []
            self._resolved[key] = [str(info[4][0]) for info in infos]
        return self._resolved[key]


def rendering_meta(options: PageOptions) -> dict[str, Any]:
    """Request meta that sends a page through the browser as the batch's options say."""
    timeout = options.timeout_ms or DEFAULT_TIMEOUT_MS
    methods = []
    if options.wait_for:
        methods.append(
            PageMethod(
                "wait_for_selector",
                options.wait_for,
                state="attached",
                timeout=options.wait_timeout_ms or timeout,
            )
        )
    if options.wait_ms:
        methods.append(PageMethod("wait_for_timeout", options.wait_ms))
    if options.screenshot:
        methods.append(PageMethod("screenshot", full_page=options.screenshot == "full_page", type="png"))
    return {
        "playwright": True,
        "playwright_page_goto_kwargs": {"wait_until": options.wait_until or "load", "timeout": timeout},
        "playwright_page_methods": methods,
    }


def screenshot_of(meta: dict[str, Any]) -> bytes | None:
    for method in meta.get("playwright_page_methods") or ():
        if (
            isinstance(method, PageMethod)
            and method.method == "screenshot"
            and isinstance(method.result, bytes)
        ):
            return method.result
    return None
