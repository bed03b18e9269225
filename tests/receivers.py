"""Webhook receivers the tests serve on loopback, each path its own behaviour:

- ``/ok/<name>``: records the request and answers 204;
- ``/flaky/<name>``: answers 500 to its first three requests, then records and answers 200;
- ``/error/<name>``: always 500; ``/hang/<name>``: never answers (until the server stops);
- ``/redirect/<name>``: 302 to ``/ok/<name>-redirected``, which must never be asked for.

Every request is kept (``received``) with its path, headers and exact body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.harness import free_port

FAILURES_BEFORE_SUCCESS = 3


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found

    def signed_with(self, secret: str, header: str = "X-Webhook-Signature") -> bool:
        """The documented check: sha256=HMAC-SHA256(secret, exact body), compared in constant time."""
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers.get(header.lower(), ""))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    received: list[Received]
    asked: Counter[str]
    lock: threading.Lock
    stopping: threading.Event


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        kind = self.path.split("/")[1]
        with self.server.lock:
            self.server.asked[self.path] += 1
            asked = self.server.asked[self.path]
            self.server.received.append(
                Received(self.path, {name.lower(): value for name, value in self.headers.items()}, body)
            )
        if kind == "hang":
            self.server.stopping.wait(120)
            return
        if kind == "error" or (kind == "flaky" and asked <= FAILURES_BEFORE_SUCCESS):
            self._answer(500)
        elif kind == "redirect":
            self._answer(302, {"Location": f"/ok{self.path.removeprefix('/redirect')}-redirected"})
        else:
            self._answer(200 if kind == "flaky" else 204)

    def _answer(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Receivers:
    """``with Receivers() as receivers: receivers.url("ok", "batch")``; ``port`` may be chosen
    ahead (a receiver that starts only later)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def url(self, kind: str, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{kind}/{name}"

    def received(self, kind: str, name: str) -> list[Received]:
        assert self._server is not None
        with self._server.lock:
            return [entry for entry in self._server.received if entry.path == f"/{kind}/{name}"]

    def all_received(self) -> list[Received]:
        assert self._server is not None
        with self._server.lock:
            return list(self._server.received)

    def __enter__(self) -> Receivers:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.received, server.asked = [], Counter()
        server.lock, server.stopping = threading.Lock(), threading.Event()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
