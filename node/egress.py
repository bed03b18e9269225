"""The egress guard every spider process of a node runs under, whatever project its spider is from.

``node.runner`` installs it in every crawl:
- ``GuardedResolver`` is the process's Twisted name resolver. Every connection Scrapy's downloader
  makes starts with it, and it hands Twisted only the addresses the address policy allows for that
  host and port, so the address checked is the address connected to (no second lookup, no DNS
  rebinding window). A host with no allowed address cannot be connected to at all.
- ``EgressGuard`` (a Scrapy add-on, loaded after the project's) removes the download handlers that
  do not go through the network (``file:``, ``data:``, ``s3:``, ``ftp:``), keeps http(s) on
  Twisted's handlers (which connect through that resolver), turns off the telnet console and remote
  control, sets a memory limit, and adds two downloader middlewares. ``EgressMiddleware`` refuses
  any URL but http(s) with a host and checks each request (each redirect hop too) before it is
  sent, for a clear ``BLOCKED_ADDRESS`` error. ``ProxyPinningMiddleware`` lets a request go through
  a proxy only if it is a pool's, and then through a local ``GuardProxy`` that gives the proxy the
  checked address: a proxy given a name would resolve it itself, in its own network.

The policy comes from the ``EGRESS_POLICY`` setting (the gateway passes it with every job: the
operator's allowlist, the platform's own services, the proxies of the pools); without it only the
public internet may be reached.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from scrapy import Request, signals
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.settings import BaseSettings
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.misc import load_object
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IHostnameResolver, IHostResolution
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from spiders_project.addresses import (
    AddressPolicy,
    BlockedAddress,
    UnresolvedHost,
    normal_host,
    resolve,
    url_endpoint,
)
from spiders_project.guard_proxy import GuardProxy, Upstream

log = logging.getLogger(__name__)

POLICY_SETTING = "EGRESS_POLICY"
RESOLVER = "node.egress.GuardedResolver"
ADDON = "node.egress.EgressGuard"
MIDDLEWARE = "node.egress.EgressMiddleware"
PROXY_MIDDLEWARE = "node.egress.ProxyPinningMiddleware"
MEMORY_LIMIT_MB = 2048
# Schemes whose handlers read files or reach the network outside the guarded resolver.
_OFF_NETWORK_SCHEMES = ("file", "data", "s3", "ftp")
# http(s) is downloaded by Twisted's HTTP/1.1 handler, which connects through the reactor's name
# resolver (httpx's or aiohttp's resolve names themselves), or by the platform's browser handler,
# whose browser goes out only through a guard proxy. A scrapy-playwright handler gets the latter.
_TWISTED_HANDLER = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
_GUARDED_BROWSER_HANDLER = "spiders_project.rendering.GuardedPlaywrightHandler"
_PLAYWRIGHT_HANDLER = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
# The loopback ports of this process's guard proxies (ProxyPinningMiddleware's).
_GUARD_PORTS: set[int] = set()


class BlockedRequest(IgnoreRequest):
    """The request's URL, or the address its host resolves to, is one the policy refuses."""


class HostNotFound(BlockedRequest):
    """The request's host does not resolve."""


def policy_from_settings(settings: BaseSettings) -> AddressPolicy:
    text = settings.get(POLICY_SETTING)
    if not text:
        return AddressPolicy()
    entries = json.loads(text) if isinstance(text, str) else dict(text)
    return AddressPolicy.from_entries(
        entries.get("allowed", ()), entries.get("denied", ()), entries.get("proxies", ())
    )


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        pass


@implementer(IHostnameResolver)
class GuardedResolver:
    """Resolves in a thread (like Twisted's own), then lets through only the allowed addresses."""

    def __init__(self, reactor: Any, policy: AddressPolicy) -> None:
        self.reactor = reactor
        self.policy = policy

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> GuardedResolver:
        return cls(reactor, policy_from_settings(crawler.settings))

    def install_on_reactor(self) -> None:
        self.reactor.installNameResolver(self)

    def resolveHostName(  # Twisted names it, and its arguments
        self,
        resolutionReceiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        lookup = deferToThread(resolve, hostName, portNumber)

        def deliver(addresses: list[str]) -> None:
            for address in addresses:
                if self._allows(hostName, portNumber, address):
                    kind = IPv6Address if ":" in address else IPv4Address
                    resolutionReceiver.addressResolved(kind("TCP", address, portNumber))
                else:
                    log.warning("egress guard: refused %s:%s at %s", hostName, portNumber, address)
            resolutionReceiver.resolutionComplete()

        def failed(_: Any) -> None:
            resolutionReceiver.resolutionComplete()

        lookup.addCallbacks(deliver, failed)
        return resolution

    def _allows(self, host: str, port: int, address: str) -> bool:
        """An allowed target, or one of this process's guard proxies (the pools' proxies are
        reached only through those)."""
        own_guard = host == address == "127.0.0.1" and port in _GUARD_PORTS
        return own_guard or self.policy.allows(host, port, address)


class EgressGuard:
    """The add-on ``node.runner`` gives every crawl (see the module's docstring)."""

    def update_settings(self, settings: BaseSettings) -> None:
        handlers = settings["DOWNLOAD_HANDLERS"]
        for scheme in _OFF_NETWORK_SCHEMES:
            handlers.set(scheme, None, priority="cmdline")
        configured = settings.getwithbase("DOWNLOAD_HANDLERS")
        for scheme in ("http", "https"):
            path = configured.get(scheme)
            guarded = _guarded_handler(path) if path else None
            if guarded != path:
                log.warning("egress guard: %s downloads with %s instead of %s", scheme, guarded, path)
            handlers.set(scheme, guarded, priority="cmdline")
        # Twisted's handlers and resolver, whatever the project says.
        settings.set("TWISTED_REACTOR_ENABLED", True, priority="cmdline")
        middlewares = settings["DOWNLOADER_MIDDLEWARES"]
        middlewares.set(MIDDLEWARE, 50, priority="cmdline")
        # After HttpProxyMiddleware (750), which turns a proxy's credentials into a header: whatever
        # set a request's proxy, it must be a pool's, and it gets the checked address.
        middlewares.set(PROXY_MIDDLEWARE, 760, priority="cmdline")
        # No console to drive the process from inside the machine: telnet, nor remote control.
        settings.set("TELNETCONSOLE_ENABLED", False, priority="cmdline")
        settings.set("REMOTE_CONTROL_ENABLED", False, priority="cmdline")
        # A crawl that outgrows its share of the node's memory closes (memusage_exceeded).
        settings.set("MEMUSAGE_ENABLED", True, priority="addon")
        settings.set("MEMUSAGE_LIMIT_MB", MEMORY_LIMIT_MB, priority="addon")


class EgressMiddleware:
    """Checks every request and redirect hop against the policy before it is sent."""

    def __init__(self, crawler: Crawler) -> None:
        self.policy = policy_from_settings(crawler.settings)
        self._resolved: dict[tuple[str, int], list[str]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> EgressMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        try:
            host, port = url_endpoint(request.url)
            self.policy.check(host, port, await self._resolve(host, port))
        except UnresolvedHost as exc:
            raise HostNotFound(str(exc)) from None
        except BlockedAddress as exc:
            raise BlockedRequest(str(exc)) from None

    async def _resolve(self, host: str, port: int) -> list[str]:
        key = (host, port)
        if key not in self._resolved:
            self._resolved[key] = await maybe_deferred_to_future(deferToThread(resolve, host, port))
        return self._resolved[key]


class ProxyPinningMiddleware:
    """Sends a request that names a proxy through a local ``GuardProxy`` chained to that proxy.

    The proxy must be one of the pools' (an egg's spider may take ``meta['proxy']`` from an
    argument). The guard resolves and checks the request's host and hands the proxy the checked
    address with the proxy's credentials, which leave the request. A retry of a request already
    sent through a guard keeps its guard."""

    def __init__(self, crawler: Crawler) -> None:
        self.policy = policy_from_settings(crawler.settings)
        self._guards: dict[Upstream, GuardProxy] = {}
        self._starting = asyncio.Lock()
        crawler.signals.connect(self._close, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyPinningMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        proxy = request.meta.get("proxy")
        if not proxy:
            return
        try:
            host, port = url_endpoint(proxy if "://" in proxy else f"http://{proxy}")
        except BlockedAddress as exc:
            raise BlockedRequest(f"the request's proxy: {exc}") from None
        host = normal_host(host)
        if host == "127.0.0.1" and port in _GUARD_PORTS:
            return
        if (host, port) not in self.policy.proxy_endpoints:
            raise BlockedRequest("the request's proxy is not one of the platform's proxy pools")
        authorization = request.headers.get(b"Proxy-Authorization")
        request.headers.pop(b"Proxy-Authorization", None)
        guard = await self._guard(Upstream(host, port, authorization or None))
        request.meta["proxy"] = guard.url

    async def _guard(self, upstream: Upstream) -> GuardProxy:
        async with self._starting:
            if upstream not in self._guards:
                guard = await GuardProxy(self.policy, upstream).start()
                _GUARD_PORTS.add(guard.port)
                self._guards[upstream] = guard
            return self._guards[upstream]

    async def _close(self) -> None:
        for guard in self._guards.values():
            _GUARD_PORTS.discard(guard.port)
            await guard.close()


def _guarded_handler(path: str) -> str:
    """The handler a project's http(s) handler is replaced by (itself if it is safe)."""
    handler = load_object(path)
    lineage = {f"{cls.__module__}.{cls.__qualname__}" for cls in handler.__mro__}
    if (
        handler is HTTP11DownloadHandler
        or f"{handler.__module__}.{handler.__qualname__}" == _GUARDED_BROWSER_HANDLER
    ):
        return path
    return _GUARDED_BROWSER_HANDLER if _PLAYWRIGHT_HANDLER in lineage else _TWISTED_HANDLER


def crawl_arguments(project_addons: dict[str, Any]) -> list[str]:
    """The ``-s`` options ``node.runner`` adds last to every crawl, so that nothing overrides them."""
    # Loaded last (the highest priority number), so that the guard has the last word.
    last = max((priority for priority in project_addons.values() if isinstance(priority, int)), default=0)
    addons = {**project_addons, ADDON: last + 1}
    return [
        # At command-line priority it wins over a project's deprecated DNS_RESOLVER too.
        *("-s", f"TWISTED_DNS_RESOLVER={RESOLVER}"),
        *("-s", f"ADDONS={json.dumps(addons)}"),
    ]
