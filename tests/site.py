"""The website the tests crawl: the example quotes site, served on loopback, optionally slowly."""

from __future__ import annotations

import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SITE_ROOT = Path(__file__).resolve().parent.parent / "examples" / "quotes-site"


class _Handler(SimpleHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        if self.server.delay:
            time.sleep(self.server.delay)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    delay: float = 0.0
    requests: list[str]


class QuotesSite:
    """``with QuotesSite() as site: site.url`` serves examples/quotes-site until the block ends."""

    def __init__(self, delay: float = 0.0) -> None:
        self._server = _Server(("127.0.0.1", 0), partial(_Handler, directory=str(SITE_ROOT)))
        self._server.delay = delay
        self._server.requests = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    @property
    def requests(self) -> list[str]:
        return self._server.requests

    def __enter__(self) -> QuotesSite:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
