"""Downloader middleware of the batch spider: every request and redirect must reach an allowed address."""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from spiders_project.addresses import AddressPolicy, BlockedAddress, default_port


class BlockedRequest(IgnoreRequest):
    """The request's host is, or resolves to, an address the batch may not reach."""


class AddressGuardMiddleware:
    """Checks each request against the spider's ``address_policy`` after resolving its host.

    Redirects come back through the downloader middlewares, so each hop is checked. It also stamps
    when the first attempt of a request started, for the page's duration.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._resolved: dict[tuple[str, int], list[str]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AddressGuardMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        request.meta.setdefault("fetch_started", time.monotonic())
        policy: AddressPolicy | None = getattr(self.crawler.spider, "address_policy", None)
        if policy is None or request.meta.get("platform_internal"):
            return
        parts = urlsplit(request.url)
        host = parts.hostname or ""
        port = parts.port or default_port(parts.scheme)
        addresses = await self._resolve(host, port)
        try:
            policy.check(host, port, addresses)
        except BlockedAddress as exc:
            raise BlockedRequest(str(exc)) from None

    async def _resolve(self, host: str, port: int) -> list[str]:
        key = (host, port)
        if key not in self._resolved:
            self._resolved[key] = await maybe_deferred_to_future(deferToThread(_addresses, host, port))
        return self._resolved[key]


def _addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to; none when it does not resolve (the fetch then fails)."""
    try:
        infos: list[Any] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]
