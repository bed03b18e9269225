"""Pages rendered in a browser: what to wait for, screenshots, and a guard on every browser request.

A batch that asks for rendering runs its spider with ``BATCH_RENDERING``: its pages then go through
scrapy-playwright, in the system's Chromium (PLAYWRIGHT_LAUNCH_OPTIONS in settings.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

from scrapy.crawler import Crawler
from scrapy.exceptions import DownloadCancelledError
from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler
from scrapy_playwright.page import PageMethod

from node.egress import policy_from_settings
from spiders_project.actions import (
    ActionOutputs,
    ActionRunner,
    RenderTimeout,
    actions_seconds,
    take_screenshot,
)
from spiders_project.addresses import WEB_SCHEMES
from spiders_project.guard_proxy import GuardProxy, Upstream
from spiders_project.pages import PageOptions

DEFAULT_TIMEOUT_MS = 30_000
_IN_PAGE_SCHEMES = ("data", "blob", "about")
# The request meta that bounds a page's whole time in the browser, in seconds (rendering_meta).
RENDER_SECONDS = "render_seconds"
# Beyond the timeouts a page's steps have: scrapy-playwright's own waits between them.
_RENDER_MARGIN_SECONDS = 30.0


class GuardedPlaywrightHandler(ScrapyPlaywrightDownloadHandler):  # type: ignore[misc]
    """scrapy-playwright's handler, with the browser's traffic forced through ``GuardProxy``.

    The browser's own proxy is a guard for direct traffic; a context that asks for a pool's proxy
    gets a guard that forwards through it. Requests for other schemes than http(s) and in-page
    ones (``data:``, ``blob:``, ``about:``) are aborted before they leave the page.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._policy = policy_from_settings(crawler.settings)
        self._crawler_settings = crawler.settings
        self._guards: dict[Upstream | None, GuardProxy] = {}
        # The browser page of each request being rendered, by the request's id.
        self._pages: dict[int, Any] = {}
        self.abort_request = _off_the_web

    async def _launch(self) -> None:
        direct = await self._guard(None)
        self.config.launch_options["proxy"] = {"server": direct.url}
        await super()._launch()

    async def _create_browser_context(
        self, name: str, context_kwargs: dict[str, Any] | None, spider: Any = None
    ) -> Any:
        kwargs = dict(context_kwargs or {})
        if kwargs.get("proxy"):
            guard = await self._guard(Upstream.from_playwright(kwargs["proxy"]))
            kwargs["proxy"] = {"server": guard.url}
        return await super()._create_browser_context(name, kwargs, spider)

    async def _create_page(self, request: Any, spider: Any) -> Any:
        page = await super()._create_page(request=request, spider=spider)
        self._pages[id(request)] = page
        # A page's popups (window.open, a link's target) are closed as they open: nothing the
        # page starts outlives it, or escapes the bound on the browser's pages.
        page.on("popup", _close_popup)
        return page

    async def _download_request(self, request: Any, spider: Any = None) -> Any:
        budget = request.meta.get(RENDER_SECONDS)
        try:
            response = await asyncio.wait_for(super()._download_request(request, spider), budget)
        except TimeoutError:
            # What the page's own timeouts could not stop (a script that never settles): the
            # page is closed, which stops its scripts, and the request has timed out.
            page = self._pages.get(id(request))
            if page is not None and not page.is_closed():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(page.close(), 10)
            raise RenderTimeout(f"the page took longer than {budget:g} s in the browser") from None
        finally:
            self._pages.pop(id(request), None)
        limit = self._max_bytes(request)
        if limit and len(response.body) > limit:
            # A rendered page is capped like a downloaded one: its DOM, as the browser serialised it.
            raise DownloadCancelledError(f"the rendered page is over the max size of {limit} bytes")
        return response

    def _max_bytes(self, request: Any) -> int:
        return int(request.meta.get("download_maxsize", self._crawler_settings.getint("DOWNLOAD_MAXSIZE")))

    async def _guard(self, upstream: Upstream | None) -> GuardProxy:
        if upstream not in self._guards:
            self._guards[upstream] = await GuardProxy(self._policy, upstream).start()
        return self._guards[upstream]

    async def _close(self) -> None:
        await super()._close()
        for guard in self._guards.values():
            await guard.close()


async def _close_popup(popup: Any) -> None:
    with contextlib.suppress(Exception):
        await popup.close()


def _off_the_web(request: Any) -> bool:
    scheme = urlsplit(request.url).scheme
    return scheme not in _IN_PAGE_SCHEMES and scheme not in WEB_SCHEMES


def rendering_meta(options: PageOptions) -> dict[str, Any]:
    """Request meta that sends a page through the browser as the batch's options say: made anew
    for each request, as scrapy-playwright keeps each method's result on the method."""
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
    if options.actions:
        methods.append(PageMethod(ActionRunner(options.actions)))
    if options.screenshot:
        width, height = options.viewport or (None, None)
        shot = {
            "fullPage": options.screenshot == "full_page",
            "quality": options.screenshot_quality,
            "viewport": {"width": width, "height": height} if options.viewport else None,
        }
        methods.append(PageMethod(_page_screenshot, shot, timeout))
    # Every step's timeout (the load, the wait for a selector, the screenshot), the waits and the
    # actions asked for: the most a page may spend in the browser.
    steps_seconds = 3 * timeout / 1000 + (options.wait_ms or 0) / 1000 + actions_seconds(options.actions)
    return {
        "playwright": True,
        "playwright_page_goto_kwargs": {"wait_until": options.wait_until or "load", "timeout": timeout},
        "playwright_page_methods": methods,
        RENDER_SECONDS: steps_seconds + _RENDER_MARGIN_SECONDS,
    }


async def _page_screenshot(page: Any, shot: dict[str, Any], timeout_ms: float) -> bytes:
    """The screenshot format's: taken last, once the waits and actions are done."""
    return await take_screenshot(page, shot, timeout_ms)


def screenshot_of(meta: dict[str, Any]) -> bytes | None:
    for method in meta.get("playwright_page_methods") or ():
        if isinstance(method, PageMethod) and method.method is _page_screenshot:
            return method.result if isinstance(method.result, bytes) else None
    return None


def action_outputs_of(meta: dict[str, Any]) -> ActionOutputs | None:
    for method in meta.get("playwright_page_methods") or ():
        if isinstance(method, PageMethod) and isinstance(method.result, ActionOutputs):
            return method.result
    return None
