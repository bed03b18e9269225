"""Downloader middlewares of the page spiders: timing, and proxy rotation with failover.

The address policy is not here: ``node.egress`` guards every spider process of a node.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.redirect import MetaRefreshMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse, Response

from spiders_project.actions import ActionFailed, RenderTimeout

# Scrapy looks for a meta refresh in the first 4,096 characters of a page; in the encodings web
# pages use, no character takes more than 4 bytes.
_META_REFRESH_BYTES = 4 * 4096


class HeadMetaRefreshMiddleware(MetaRefreshMiddleware):
    """Scrapy's meta-refresh redirects, looked for in the head of the page only.

    Scrapy's own reads ``response.text[0:4096]``: it decodes every HTML page whole on the reactor
    thread and keeps the text on the response while the page waits for the pipelines, which
    decode it again where they convert it (about 16 MiB a spider process, and a second decode of
    every page). This one hands Scrapy's logic a response made of the page's first 16 kB, which
    works out its encoding from those bytes and the headers: the page itself is never decoded here.
    """

    def process_response(  # type: ignore[override]
        self, request: Request, response: Response
    ) -> Request | Response:
        if not isinstance(response, HtmlResponse) or len(response.body) <= _META_REFRESH_BYTES:
            return super().process_response(request, response)
        # Not response.replace(): it reads response.encoding, which may decode the whole page.
        head = HtmlResponse(
            url=response.url,
            status=response.status,
            headers=response.headers,
            body=response.body[:_META_REFRESH_BYTES],
            request=response.request,
        )
        answer = super().process_response(request, head)
        return response if answer is head else answer


class PageTimingMiddleware:
    """Stamps when the first attempt of a request started, for the page's duration."""

    def process_request(self, request: Request) -> None:
        request.meta.setdefault("fetch_started", time.monotonic())


@dataclass(frozen=True)
class Proxy:
    """One proxy of the batch's pool. Its credentials go into request headers, never into logs."""

    url: str
    server: str
    username: str | None
    password: str | None = field(repr=False)

    @classmethod
    def from_url(cls, url: str) -> Proxy:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        server = f"{parts.scheme}://{parts.hostname}{port}"
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(url=url, server=server, username=username, password=password)

    def __repr__(self) -> str:
        return f"Proxy({self.server})"


class ProxyRotationMiddleware:
    """Sends each request through the next proxy of the batch's pool (none: directly); a request
    that fails at the network level is tried once through each other proxy."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._next = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyRotationMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        proxies: list[Proxy] = getattr(self.crawler.spider, "proxies", [])
        if not proxies:
            return
        if "proxy_index" not in request.meta:
            request.meta["proxy_index"] = self._next % len(proxies)
            request.meta["proxies_tried"] = 1
            self._next += 1
        _route(request, proxies[request.meta["proxy_index"]], request.meta["proxy_index"])

    def process_exception(self, request: Request, exception: BaseException) -> Request | None:
        proxies: list[Proxy] = getattr(self.crawler.spider, "proxies", [])
        tried = int(request.meta.get("proxies_tried", 0))
        if not proxies or "proxy_index" not in request.meta or tried >= len(proxies):
            return None
        if isinstance(exception, IgnoreRequest | ActionFailed | RenderTimeout):
            # A page's own failure: its actions and scripts would fail (and repeat what they did) again.
            return None
        retry = request.replace(dont_filter=True)
        retry.meta["proxy_index"] = (request.meta["proxy_index"] + 1) % len(proxies)
        retry.meta["proxies_tried"] = tried + 1
        retry.meta.pop("proxy", None)
        retry.headers.pop(b"Proxy-Authorization", None)
        return retry


def _route(request: Request, proxy: Proxy, index: int) -> None:
    if request.meta.get("playwright"):
        # The browser takes its proxy per context: one context per proxy.
        request.meta["playwright_context"] = f"proxy-{index}"
        settings: dict[str, str] = {"server": proxy.server}
        if proxy.username:
            settings |= {"username": proxy.username, "password": proxy.password or ""}
        request.meta["playwright_context_kwargs"] = {"proxy": settings}
    else:
        request.meta["proxy"] = proxy.url
