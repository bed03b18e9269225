"""A forward proxy on loopback that applies the address policy per connection.

Two kinds of traffic leave a spider process only through one of these guards:
- **The browser's.** Chromium is started with a guard as its proxy for every request it makes
  (``<-loopback>`` included, so loopback is no exception): navigations, each redirect hop,
  subresources, frames, workers, form posts, ``fetch``/XHR/beacons, EventSource, and WebSockets
  (which Chromium tunnels with CONNECT). No request type can be missed, because the guard does not
  look at requests: it looks at connections.
- **Scrapy's requests through a pool's proxy** (``node.egress.ProxyPinningMiddleware``). A proxy
  given a host name resolves it itself, in its own network and later than any check here; through
  the guard, the proxy is given the checked address instead.

For each connection the guard resolves the host, keeps the addresses the policy allows for that
host and port, and connects to one of those, so the address checked is the address connected to.
A refused connection is closed without an answer. With an upstream proxy (a pool's), the guard
sends it the checked address (``CONNECT address:port``, or the absolute URL with the address and
the request's own ``Host``), and the upstream's credentials never reach the client. TLS is the
client's, end to end, so the server name it sends and checks is the host's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from spiders_project.addresses import AddressPolicy, BlockedAddress, default_port, resolve

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
CONNECT_TIMEOUT = 15.0
_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-authorization", b"proxy-connection", b"te", b"trailer", b"upgrade"}
)


@dataclass(frozen=True)
class Upstream:
    """A pool's proxy the guard forwards through (plain HTTP proxy, optional Basic credentials)."""

    host: str
    port: int
    authorization: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_playwright(cls, settings: dict[str, str]) -> Upstream:
        parts = urlsplit(settings["server"])
        authorization = None
        if settings.get("username"):
            pair = f"{settings['username']}:{settings.get('password', '')}".encode()
            authorization = b"Basic " + base64.b64encode(pair)
        return cls(parts.hostname or "", parts.port or default_port(parts.scheme), authorization)


class _Refused(Exception):
    pass


class GuardProxy:
    """One guard: direct to the web, or through one upstream proxy."""

    def __init__(self, policy: AddressPolicy, upstream: Upstream | None = None) -> None:
        self.policy = policy
        self.upstream = upstream
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> GuardProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, lines = _parse_head(head)
            if method == b"CONNECT":
                host, port = _authority(target.decode("latin-1"))
                addresses = await self._allowed(host, port)
                upstream_reader, upstream_writer, _ = await self._open_first(
                    addresses, port, host, tunnel=True
                )
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                parts = urlsplit(target.decode("latin-1"))
                if parts.scheme != "http" or not parts.hostname:
                    raise _Refused(f"not an absolute http URL: {target[:200]!r}")
                port = parts.port or 80
                addresses = await self._allowed(parts.hostname, port)
                upstream_reader, upstream_writer, address = await self._open_first(
                    addresses, port, parts.hostname, tunnel=False
                )
                path = parts.path or "/"
                if parts.query:
                    path += "?" + parts.query
                request_target = _with_address(parts, address, port) if self.upstream else path
                upstream_writer.write(
                    _forward_head(method, request_target.encode("latin-1"), lines, self.upstream)
                )
                await _one_exchange(reader, writer, upstream_reader, upstream_writer, lines)
                return
            await _splice(reader, writer, upstream_reader, upstream_writer)
        except (_Refused, BlockedAddress) as exc:
            log.warning("guard proxy: refused %s", exc)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError):
            pass
        finally:
            for stream in (writer, upstream_writer):
                if stream is not None:
                    stream.close()

    async def _allowed(self, host: str, port: int) -> list[str]:
        """``host``'s addresses the policy allows on ``port``, in the order to try them; refuses if
        there is none. Through a proxy, IPv4 first: a proxy may have no IPv6 route."""
        addresses = await asyncio.to_thread(resolve, host, port)
        if not addresses:
            raise _Refused(f"{host} does not resolve")
        allowed = [address for address in addresses if self.policy.allows(host, port, address)]
        if not allowed:
            self.policy.check(host, port, addresses)  # raises, saying why
            raise _Refused(f"{host}:{port}")
        if self.upstream is not None:
            allowed.sort(key=lambda address: ":" in address)
        return allowed

    async def _open_first(
        self, addresses: list[str], port: int, host: str, *, tunnel: bool
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
        """A connection to the first of ``addresses`` that answers, and that address. Plain HTTP
        through a proxy connects to the proxy alone, so it takes the first address."""
        if self.upstream is not None and not tunnel:
            addresses = addresses[:1]
        failure: Exception = OSError(f"no address of {host} answered")
        for address in addresses:
            try:
                reader, writer = await self._open(address, port, host, tunnel=tunnel)
            except (OSError, TimeoutError) as exc:
                failure = exc
                continue
            return reader, writer, address
        raise failure

    async def _open(
        self, address: str, port: int, host: str, *, tunnel: bool
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream is None:
            return await asyncio.wait_for(asyncio.open_connection(address, port), CONNECT_TIMEOUT)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.upstream.host, self.upstream.port), CONNECT_TIMEOUT
        )
        if tunnel:
            authority = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
            head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n".encode()
            if self.upstream.authorization:
                head += b"Proxy-Authorization: " + self.upstream.authorization + b"\r\n"
            writer.write(head + b"\r\n")
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
            if answer.split(b" ", 2)[1:2] != [b"200"]:
                writer.close()
                raise OSError(f"the proxy refused the tunnel to {host}:{port}")
        return reader, writer


def _parse_head(head: bytes) -> tuple[bytes, bytes, list[bytes]]:
    if len(head) > MAX_HEAD_BYTES:
        raise ValueError("request head too large")
    first, *lines = head[:-4].split(b"\r\n")
    method, target, _ = first.split(b" ", 2)
    return method.upper(), target, lines


def _authority(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise _Refused(f"not a host:port: {text[:200]!r}")
    return host.strip("[]"), int(port)


def _with_address(parts: SplitResult, address: str, port: int) -> str:
    """The absolute URL with the checked address in place of the name (sent to an upstream proxy)."""
    netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    return parts._replace(netloc=netloc, fragment="").geturl()


def _forward_head(method: bytes, target: bytes, lines: list[bytes], upstream: Upstream | None) -> bytes:
    """The request head as it goes on: one request per connection, the proxy's own headers dropped."""
    kept = [line for line in lines if line.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP]
    if upstream is not None and upstream.authorization:
        kept.append(b"Proxy-Authorization: " + upstream.authorization)
    kept.append(b"Connection: close")
    return b"\r\n".join([method + b" " + target + b" HTTP/1.1", *kept]) + b"\r\n\r\n"


def _header(lines: list[bytes], name: bytes) -> bytes | None:
    for line in lines:
        field, _, value = line.partition(b":")
        if field.strip().lower() == name:
            return value.strip()
    return None


async def _one_exchange(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
    request_lines: list[bytes],
) -> None:
    """One plain HTTP request and its response, and nothing more on this connection.

    Only the request's declared body goes upstream, and the response tells the browser to close:
    a later request on a kept-alive connection (to another host, maybe) never rides on this one's
    check, nor reaches an upstream proxy unchecked.
    """
    if _header(request_lines, b"transfer-encoding") is not None:
        raise _Refused("a request body of unknown length")
    length = int(_header(request_lines, b"content-length") or b"0")
    if not 0 <= length <= MAX_BODY_BYTES:
        raise _Refused(f"a request body of {length} bytes")
    if length:
        upstream_writer.write(await client_reader.readexactly(length))
    head = await asyncio.wait_for(upstream_reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT * 4)
    status, *lines = head[:-4].split(b"\r\n")
    kept = [line for line in lines if line.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP]
    client_writer.write(b"\r\n".join([status, *kept, b"Connection: close"]) + b"\r\n\r\n")

    async def relay() -> None:
        while data := await upstream_reader.read(65536):
            client_writer.write(data)
            await client_writer.drain()

    async def browser_done() -> None:
        # Whatever else the browser sends on this connection is dropped; its end closes the exchange.
        while await client_reader.read(65536):
            pass

    tasks = [asyncio.ensure_future(relay()), asyncio.ensure_future(browser_done())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _splice(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        finally:
            with contextlib.suppress(OSError):
                if sink.can_write_eof():
                    sink.write_eof()

    # The exchange is over when the far side is done; the browser may hold its end open for reuse.
    sending = asyncio.ensure_future(pipe(client_reader, upstream_writer))
    try:
        await pipe(upstream_reader, client_writer)
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sending
