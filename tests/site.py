"""The website the tests crawl: the example quotes site on loopback, plus pages made for edge cases.

Besides the static quotes pages (any query string is ignored, so one page has many URLs):
- ``/_encoded/<codec>``: a Russian/Japanese page in that charset, no charset declared anywhere;
- ``/_type/pdf|json|text|png``: documents that are not HTML;
- ``/_status/<code>``: a page answering that HTTP status;
- ``/_redirect?to=URL``: a 302 to URL;
- ``/_refresh?to=URL&kb=N``: a page of N kB whose head refreshes to URL at once (a meta refresh);
- ``/_slow?seconds=N``: a page that answers after N seconds;
- ``/_large?mib=N``: an N MiB page;
- ``/_js``: text that only JavaScript writes; ``/_js_late?ms=N``: the same, N ms after load;
- ``/_tall``: a page 3,000 pixels tall; ``/_hang``: a page whose script never ends;
- ``/_form``: a search box that shows what was typed (on Enter or its button), a button that reveals
  hidden text, and a page 3,000 pixels tall: for browser actions;
- ``/_gallery``: images every way a page gives them (src, srcset, picture, inlined, repeated).
Every request's path and headers are recorded in ``requests`` and ``headers``.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SITE_ROOT = Path(__file__).resolve().parent.parent / "examples" / "quotes-site"

ENCODED_TEXT = {
    "windows-1251": "Съешь же ещё этих мягких французских булок, да выпей чаю. Широкая электрификация.",
    "shift_jis": "いろはにほへと ちりぬるを わかよたれそ つねならむ。日本語の文章をここに書きます。",
}
PDF_TEXT = "Quarterly report of the example company"
PDF_TITLE = "Quarterly report"
JS_TEXT = "Written by JavaScript in the browser."
LATE_TEXT = "Arrived after a while."
REVEALED_TEXT = "Shown once the button is pressed."
INLINE_TEXT = "A page with its logo inlined."
JSON_BODY = b'{"name": "spider", "legs": 8}'
PLAIN_TEXT = b"Just some plain text.\nOn two lines.\n"


class _Handler(SimpleHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        self.server.headers.append(dict(self.headers.items()))
        if self.server.delay:
            time.sleep(self.server.delay)
        parts = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        route = getattr(self, f"_route_{parts.path.strip('/').split('/')[0].lstrip('_')}", None)
        if parts.path.startswith("/_") and route is not None:
            route(parts.path, query)
            return
        self.path = parts.path  # the query string never changes a static page
        super().do_GET()

    def _route_encoded(self, path: str, query: dict[str, str]) -> None:
        codec = path.rsplit("/", 1)[-1]
        text = ENCODED_TEXT[codec]
        self._send(
            200, "text/html", f"<html><body><h1>{text[:10]}</h1><p>{text}</p></body></html>".encode(codec)
        )

    def _route_type(self, path: str, query: dict[str, str]) -> None:
        kind = path.rsplit("/", 1)[-1]
        bodies = {
            "pdf": ("application/pdf", _pdf(PDF_TEXT)),
            "json": ("application/json", JSON_BODY),
            "text": ("text/plain", PLAIN_TEXT),
            "png": ("image/png", _PNG),
        }
        self._send(200, *bodies[kind])

    def _route_status(self, path: str, query: dict[str, str]) -> None:
        code = int(path.rsplit("/", 1)[-1])
        self._send(code, "text/html", f"<html><body><h1>Status {code}</h1></body></html>".encode())

    def _route_redirect(self, path: str, query: dict[str, str]) -> None:
        self.send_response(302)
        self.send_header("Location", query["to"])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _route_refresh(self, path: str, query: dict[str, str]) -> None:
        head = f'<meta http-equiv="refresh" content="0; url={query["to"]}"><title>Moved</title>'
        filler = "<p>This page has moved.</p>" * (int(query.get("kb", "1")) * 1024 // 27 + 1)
        self._send(200, "text/html", f"<html><head>{head}</head><body>{filler}</body></html>".encode())

    def _route_slow(self, path: str, query: dict[str, str]) -> None:
        time.sleep(float(query.get("seconds", "5")))
        self._send(200, "text/html", b"<html><body><p>Finally.</p></body></html>")

    def _route_js(self, path: str, query: dict[str, str]) -> None:
        script = f"document.getElementById('app').innerHTML = '<p>{JS_TEXT}</p>';"
        self._send(200, "text/html", _page("JavaScript page", "<div id='app'></div>", script))

    def _route_js_late(self, path: str, query: dict[str, str]) -> None:
        script = (
            "setTimeout(function () { var p = document.createElement('p'); p.id = 'late';"
            f" p.textContent = '{LATE_TEXT}'; document.getElementById('app').appendChild(p); }},"
            f" {int(query.get('ms', '1500'))});"
        )
        self._send(200, "text/html", _page("Late page", "<div id='app'></div>", script))

    def _route_form(self, path: str, query: dict[str, str]) -> None:
        body = (
            "<input id='q'><button id='go'>Search</button><div id='out'></div>"
            "<button id='reveal'>More</button><div id='more'></div><div style='height: 3000px'></div>"
        )
        script = (
            "function show() { var p = document.createElement('p');"
            " p.textContent = 'You searched for: ' + document.getElementById('q').value;"
            " document.getElementById('out').replaceChildren(p); }"
            "document.getElementById('go').onclick = show;"
            "document.getElementById('q').onkeydown = function (e) { if (e.key === 'Enter') show(); };"
            "document.getElementById('reveal').onclick = function () {"
            f" document.getElementById('more').innerHTML = '<p>{REVEALED_TEXT}</p>'; }};"
        )
        self._send(200, "text/html", _page("Search form", body, script))

    def _route_gallery(self, path: str, query: dict[str, str]) -> None:
        inlined = "data:image/png;base64," + base64.b64encode(_PNG).decode()
        body = (
            "<img src='/img/cat.png' alt='cat'><img src='dog.jpg' srcset='dog-2x.jpg 2x, /img/dog-3x.jpg 3x'>"
            "<picture><source srcset='https://cdn.example/bird.webp'><img src='/img/bird.png'></picture>"
            f"<img src='{inlined}'><img src='/img/cat.png'><a href='/not-an-image'>link</a>"
        )
        self._send(200, "text/html", _page("Gallery", body, ""))

    def _route_hang(self, path: str, query: dict[str, str]) -> None:
        self._send(200, "text/html", _page("Hanging page", "<p>Never done</p>", "while (true) {}"))

    def _route_tall(self, path: str, query: dict[str, str]) -> None:
        self._send(200, "text/html", _page("Tall page", "<div style='height: 3000px'>Tall</div>", ""))

    def _route_large(self, path: str, query: dict[str, str]) -> None:
        size = int(float(query.get("mib", "11")) * 1024 * 1024)
        self._send(200, "text/html", b"<html><body>" + b"x" * size + b"</body></html>")

    def _route_visits(self, path: str, query: dict[str, str]) -> None:
        # A page that changes at every visit: which answers were fetched, and which were copies.
        visit = sum(1 for seen in self.server.requests if seen.startswith("/_visits"))
        self._send(200, "text/html", _page("Visits", f"<p>Visit number {visit}</p>", ""))

    def _route_article(self, path: str, query: dict[str, str]) -> None:
        head = (
            "<title>An article</title><meta property='og:site_name' content='Quotes Daily'>"
            "<meta property='article:published_time' content='2026-11-02T08:00:00Z'>"
            "<meta name='author' content='Ann'><meta name='author' content='Bob'>"
            "<meta name='keywords' content='quotes'><meta name='keywords' content='life'>"
            "<link rel='icon' href='/favicon.png'>"
        )
        self._send(200, "text/html", f"<html><head>{head}</head><body><p>Words.</p></body></html>".encode())

    def _route_inline(self, path: str, query: dict[str, str]) -> None:
        image = "data:image/png;base64," + base64.b64encode(_PNG).decode()
        self._send(
            200, "text/html", _page("Inline", f"<p>{INLINE_TEXT}</p><img src='{image}' alt='logo'>", "")
        )

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    delay: float = 0.0
    requests: list[str]
    headers: list[dict[str, str]]


class QuotesSite:
    """``with QuotesSite() as site: site.url`` serves the site until the block ends."""

    def __init__(self, delay: float = 0.0) -> None:
        self._server = _Server(("127.0.0.1", 0), partial(_Handler, directory=str(SITE_ROOT)))
        self._server.delay = delay
        self._server.requests = []
        self._server.headers = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def requests(self) -> list[str]:
        return self._server.requests

    @property
    def headers(self) -> list[dict[str, str]]:
        return self._server.headers

    def __enter__(self) -> QuotesSite:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _page(title: str, body: str, script: str) -> bytes:
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title><style>body {{ margin: 0 }}</style></head>"
        f"<body>{body}<script>{script}</script></body></html>"
    ).encode()


def _pdf(text: str) -> bytes:
    """A one-page PDF showing ``text``, titled ``PDF_TITLE``, with a correct cross-reference table."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Title (%s) >>" % PDF_TITLE.encode(),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"<< /Size %d /Root 1 0 R /Info 6 0 R >>" % (len(objects) + 1)
    out += b"trailer\n%s\nstartxref\n%d\n%%%%EOF\n" % (trailer, xref)
    return bytes(out)


# A 1x1 transparent PNG.
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
