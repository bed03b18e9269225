"""The servers of the security tests: a site the attacker controls, and canaries the policy forbids.

The attacker's site is the only address the operator allowlists. It serves pages the test writes,
answers ``/redirect?to=URL&code=N`` with that redirect and ``/slow?seconds=N`` after a while. A
canary listens on a loopback port the policy does not allow and counts every connection it gets:
any connection at all is a breach.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, urlsplit

CANARY_BODY = "CANARY-c4n4ry-b0dy-d0-n0t-l34k"


class _Listener:
    """A socket on a free loopback port, served by a thread from ``with`` until its end."""

    def __init__(self, host: str, kind: socket.SocketKind) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, kind)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._socket.close()

    def _serve(self) -> None:
        raise NotImplementedError


class Canary(_Listener):
    """A TCP server that answers any request with ``CANARY_BODY`` and counts its connections."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host, socket.SOCK_STREAM)
        self._socket.listen(64)
        self.connections = 0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    @staticmethod
    def _answer(connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            try:
                connection.recv(65536)
                body = f"<html><body><h1>{CANARY_BODY}</h1></body></html>".encode()
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\nConnection: close\r\n\r\n"
                    + body
                )
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        self.server.requests.append(self.path)
        parts = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        if parts.path == "/slow":
            time.sleep(float(query.get("seconds", "1")))
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(
                b'<html><body><div class="quote"><span class="text">slow</span></div></body></html>'
            )
            return
        if parts.path == "/redirect":
            self.send_response(int(query.get("code", "302")))
            self.send_header("Location", query["to"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        page = self.server.pages.get(parts.path)
        if page is None:
            self.send_error(404)
            return
        status, content_type, body = page
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[str]
    pages: dict[str, tuple[int, str, bytes]]


class AttackerSite:
    """The tenant's own site: pages the test writes, and redirects anywhere."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.requests = []
        self._server.pages = {}
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def requests(self) -> list[str]:
        return self._server.requests

    def page(self, path: str, html: str, status: int = 200, content_type: str = "text/html") -> str:
        return self.serve(path, html.encode(), content_type, status)

    def serve(self, path: str, body: bytes, content_type: str, status: int = 200) -> str:
        self._server.pages[path] = (status, content_type, body)
        return f"http://127.0.0.1:{self.port}{path}"

    def forget(self, path: str) -> None:
        self._server.pages.pop(path, None)

    def redirect(self, to: str, code: int = 302) -> str:
        from urllib.parse import quote

        return f"{self.url}redirect?code={code}&to={quote(to, safe='')}"

    def __enter__(self) -> AttackerSite:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


class UdpCanary(_Listener):
    """A UDP socket on loopback that counts the datagrams it gets (STUN, TURN, QUIC...)."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1", socket.SOCK_DGRAM)
        self.datagrams = 0

    def _serve(self) -> None:
        while True:
            try:
                self._socket.recv(65536)
            except OSError:
                return
            self.datagrams += 1
