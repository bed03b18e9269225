"""A small forward HTTP proxy on loopback for the tests: plain requests and CONNECT tunnels,
Basic proxy authentication, and a record of what went through it."""

from __future__ import annotations

import base64
import http.client
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if not self._authorised():
            return
        target = urlsplit(self.path)
        self.server.seen.append(self.path)
        upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
        headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
        path = target.path + (f"?{target.query}" if target.query else "")
        try:
            upstream.request("GET", path or "/", headers=headers)
            answer = upstream.getresponse()
            body = answer.read()
        except OSError:
            self.send_error(502)
            return
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:
        if not self._authorised():
            return
        host, _, port = self.path.rpartition(":")
        self.server.seen.append(f"CONNECT {self.path}")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=30)
        except OSError:
            self.send_error(502)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        sockets = [self.connection, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 30)
            if not readable:
                break
            for source in readable:
                data = source.recv(65536)
                if not data:
                    upstream.close()
                    return
                (upstream if source is self.connection else self.connection).sendall(data)

    def _authorised(self) -> bool:
        expected = "Basic " + base64.b64encode(self.server.credentials.encode()).decode()
        if self.headers.get("Proxy-Authorization") == expected:
            return True
        self.server.refused += 1
        self.send_response(407)
        self.send_header("Proxy-Authenticate", 'Basic realm="tests"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def log_message(self, format: str, *args: Any) -> None:
        pass


_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    credentials: str
    seen: list[str]
    refused: int


class ForwardProxy:
    """``with ForwardProxy("user", "password") as proxy: proxy.url`` (credentials included)."""

    def __init__(self, username: str, password: str) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.credentials = f"{username}:{password}"
        self._server.seen = []
        self._server.refused = 0
        self.username, self.password = username, password
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.username}:{self.password}@127.0.0.1:{self._server.server_address[1]}"

    @property
    def seen(self) -> list[str]:
        """Requests that went through (absolute URLs, or CONNECT host:port)."""
        return self._server.seen

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on: a proxy there is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
