"""A generated website on loopback that tests edit between crawls, to check change detection.

Pages ``/p/0`` .. ``/p/<pages-1>`` form a binary tree under the home page ``/``: page n links its
children 2n+2 and 2n+3 (home links 0 and 1), and every page links home. Each page is
``<header><nav>`` links, ``<main><article>`` of deterministic text that changes with the page's
version, and a ``<footer>`` with the render time, which differs on every request. Also served:
- ``/sitemap.xml``: every live page, orphans included (``sitemap=False`` makes it a 404);
- ``/robots.txt``: a ``Disallow`` line per ``robots_disallow`` prefix; paths under those prefixes
  answer a plain page, and home links one of them, for a crawler that ignores robots.txt to find;
- on home, ``/p/1?utm_source=...`` and ``/p/0#top``: URL variants of pages home already links.
Pages send ``ETag`` and ``Last-Modified`` and answer ``304`` to conditional requests, unless
``validators=False``. ``edit``, ``add``, ``delete`` and ``orphan`` change the site while it serves.
``copy`` makes a page a copy of another, which its ``<link rel="canonical">`` names (with
``content=False``, a page of its own that names another canonical, as misconfigured sites do).
Every response is recorded in ``requests`` and ``bytes_sent``, every request's headers in ``headers``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

HOME: Final = -1
"""The number that stands for the home page in ``edit``, ``version`` and ``last_modified``."""

WELCOME = "Welcome to the test site."

_VOCABULARY = (
    "river stone garden window morning letter market harbor lantern meadow orchard bridge "
    "village winter summer autumn spring candle forest mountain valley island station library "
    "kitchen painter teacher doctor farmer sailor merchant traveler neighbor stranger friend "
    "quiet bright gentle sudden careful ancient narrow distant golden silver wooden crowded "
    "empty patient curious hidden simple steady walks carries finds builds watches remembers "
    "opens closes follows answers gathers repairs paints measures crosses visits "
    "slowly often rarely together again early later nearly always softly"
)
_WORDS = _VOCABULARY.split()


@dataclass
class _Page:
    version: int
    modified: datetime
    parent: int | None  # the page whose nav links this one: HOME, a number, or None for an orphan
    status: int = 200  # anything but 200 once deleted


class Website:
    """``with Website() as site: site.url`` serves the site until the block ends."""

    def __init__(
        self,
        pages: int = 30,
        *,
        validators: bool = True,
        robots_disallow: Sequence[str] = (),
        paragraph_bytes: int = 2000,
        sitemap: bool = True,
        sitemap_path: str = "/sitemap.xml",
    ) -> None:
        self.validators = validators
        # Elsewhere than /sitemap.xml, robots.txt names it (a Sitemap: line).
        self.sitemap_path = sitemap_path
        self.robots_disallow = tuple(robots_disallow)
        self.paragraph_bytes = paragraph_bytes
        self.sitemap = sitemap
        # Seconds every answer waits, so a crawl lasts long enough to be watched or cancelled.
        self.delay = 0.0
        self.bytes_sent = 0
        self.requests: list[tuple[str, int]] = []
        self.headers: list[dict[str, str]] = []
        # When each page request arrived (monotonic seconds), and the most answered at once.
        self.page_request_times: list[float] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        # A day old, so a crawler's own clock never precedes it.
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        self._pages: dict[int, _Page] = {HOME: _Page(1, start, None)}
        for n in range(pages):
            self._pages[n] = _Page(1, start, _parent_of(n))
        self._next = pages
        # Page number -> the page its canonical link names, and whether it shows that page's title
        # and article.
        self._copies: dict[int, tuple[int, bool]] = {}
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.site = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> Website:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- Mutations -------------------------------------------------------------------------------

    def edit(self, n: int) -> None:
        """Rewrite page ``n``'s article (``HOME`` for the home page)."""
        with self._lock:
            page = self._live(n)
            page.version += 1
            self._touch(page)

    def add(self) -> int:
        """Create the next page, linked from its parent (or from home if that is gone); its number."""
        with self._lock:
            n = self._next
            self._next += 1
            parent = _parent_of(n)
            if not self._reachable(parent):
                parent = HOME
            self._pages[n] = _Page(1, _now(), parent)
            self._touch(self._pages[parent])
            return n

    def orphan(self) -> int:
        """Create the next page, linked from no page, only listed in the sitemap; its number."""
        with self._lock:
            n = self._next
            self._next += 1
            self._pages[n] = _Page(1, _now(), None)
            return n

    def copy(self, n: int, *, of: int, content: bool = True) -> None:
        """Make page ``n`` name ``of`` its canonical page and, unless ``content`` is false, show
        ``of``'s title and article."""
        with self._lock:
            self._live(n)
            self._copies[n] = (of, content)

    def delete(self, n: int, *, status: int = 404) -> None:
        """Make page ``n`` answer ``status`` and drop its link; home links its children instead."""
        with self._lock:
            page = self._live(n)
            if n == HOME:
                raise ValueError("the home page cannot be deleted")
            page.status = status
            changed = set() if page.parent is None else {page.parent}
            for child in self._pages.values():
                if child.parent == n and child.status == 200:
                    child.parent = HOME
                    changed.add(HOME)
            for number in changed:
                self._touch(self._pages[number])

    # --- Inspection ------------------------------------------------------------------------------

    def live_pages(self) -> list[str]:
        """The paths of every page that answers 200, ``/`` first."""
        with self._lock:
            return [_path(n) for n in sorted(self._pages) if self._pages[n].status == 200]

    def version(self, n: int) -> int:
        with self._lock:
            return self._pages[n].version

    def last_modified(self, n: int) -> datetime:
        with self._lock:
            return self._pages[n].modified

    def reset_counts(self) -> None:
        """Forget the requests, headers and bytes recorded so far."""
        with self._lock:
            self.bytes_sent = 0
            self.requests.clear()
            self.headers.clear()

    # --- Rendering, called by the handler ---------------------------------------------------------

    def _render(self, n: int) -> tuple[int, bytes, datetime] | None:
        """Page ``n``'s status, HTML up to the footer, and modified time; None if it never existed."""
        with self._lock:
            page = self._pages.get(n)
            if page is None:
                return None
            if page.status != 200:
                return page.status, _small_page(page.status), page.modified
            links = [("/", "Home")] if n != HOME else []
            links += [(_path(child), f"Page {child}") for child in self._children(n)]
            if n == HOME:
                children = self._children(HOME)
                if 1 in children:
                    links.append(("/p/1?utm_source=newsletter&utm_medium=email", "Page 1 (newsletter)"))
                if 0 in children:
                    links.append(("/p/0#top", "Page 0 (top)"))
                links += [(prefix.rstrip("/") + "/1", "Private") for prefix in self.robots_disallow]
            canonical_of, same = self._copies.get(n, (n, True))
            shown = canonical_of if same else n
            title = "Home" if shown == HOME else f"Page {shown}"
            paragraphs = _paragraphs(f"{shown}:{self._pages[shown].version}", self.paragraph_bytes)
            if n == HOME:
                paragraphs.insert(0, WELCOME)
            nav = " ".join(f'<a href="{escape(href)}">{escape(text)}</a>' for href, text in links)
            text = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
            canonical = f'<link rel="canonical" href="{_path(canonical_of)}">' if n in self._copies else ""
            content = (
                f"<!DOCTYPE html><html><head><title>{title}</title>{canonical}</head><body>"
                f"<header><nav>{nav}</nav></header><main><article><h1>{title}</h1>{text}</article></main>"
            )
            return 200, content.encode(), page.modified

    def _sitemap(self) -> bytes:
        with self._lock:
            entries = "".join(
                f"<url><loc>{self.url}{_path(n)}</loc>"
                f"<lastmod>{page.modified.strftime('%Y-%m-%dT%H:%M:%SZ')}</lastmod></url>"
                for n, page in sorted(self._pages.items())
                if page.status == 200
            )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>\n'
        ).encode()

    def _robots(self) -> bytes:
        lines = ["User-agent: *", *(f"Disallow: {path}" for path in self.robots_disallow)]
        if self.sitemap_path != "/sitemap.xml":
            lines.append(f"Sitemap: {self.url}{self.sitemap_path}")
        return "".join(f"{line}\n" for line in lines).encode()

    def _record(self, path: str, status: int, headers: dict[str, str] | None) -> None:
        with self._lock:
            self.requests.append((path, status))
            if headers is not None:
                self.headers.append(headers)

    def _count(self, size: int) -> None:
        with self._lock:
            self.bytes_sent += size

    # --- Under the lock ----------------------------------------------------------------------------

    def _live(self, n: int) -> _Page:
        page = self._pages.get(n)
        if page is None or page.status != 200:
            raise KeyError(f"no live page {n}")
        return page

    def _children(self, n: int) -> list[int]:
        return sorted(c for c, page in self._pages.items() if page.parent == n and page.status == 200)

    def _reachable(self, n: int) -> bool:
        """Whether links lead from home to page ``n``; live pages only ever hang under live pages."""
        while n != HOME:
            page = self._pages[n]
            if page.status != 200 or page.parent is None:
                return False
            n = page.parent
        return True

    def _touch(self, page: _Page) -> None:
        # Strictly later than before, so a Last-Modified the crawler saw never hides a change.
        page.modified = max(_now(), page.modified + timedelta(seconds=1))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections must not hold a thread forever
    _request_headers: dict[str, str] | None = None

    def setup(self) -> None:
        super().setup()
        self.wfile = _CountingWriter(self.wfile, self.server.site)

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, *, head: bool) -> None:
        site = self.server.site
        path = urlsplit(self.path).path
        if path not in ("/robots.txt", site.sitemap_path):
            with site._lock:
                site.page_request_times.append(time.monotonic())
                site.in_flight += 1
                site.peak_in_flight = max(site.peak_in_flight, site.in_flight)
            try:
                self._answer_page(head=head)
            finally:
                with site._lock:
                    site.in_flight -= 1
            return
        self._answer_page(head=head)

    def _answer_page(self, *, head: bool) -> None:
        site = self.server.site
        if site.delay:
            time.sleep(site.delay)
        self._request_headers = dict(self.headers.items())
        path = urlsplit(self.path).path
        number = HOME if path == "/" else _page_number(path)
        if number is not None and (rendered := site._render(number)) is not None:
            status, content, modified = rendered
            if status != 200:
                self._send(status, "text/html; charset=utf-8", content, head=head)
                return
            extra: dict[str, str] = {}
            if site.validators:
                extra["ETag"] = f'"{hashlib.sha256(content).hexdigest()[:20]}"'
                extra["Last-Modified"] = format_datetime(modified, usegmt=True)
                if self._not_modified(extra["ETag"], modified):
                    self._send(304, None, b"", head=True, extra=extra)
                    return
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            body = content + f"<footer>Rendered at {stamp}</footer></body></html>".encode()
            self._send(200, "text/html; charset=utf-8", body, head=head, extra=extra)
        elif path == site.sitemap_path and site.sitemap:
            self._send(200, "application/xml", site._sitemap(), head=head)
        elif path == "/robots.txt":
            self._send(200, "text/plain; charset=utf-8", site._robots(), head=head)
        elif any(path.startswith(prefix) for prefix in site.robots_disallow):
            private = f"<!DOCTYPE html><html><body><h1>Private</h1><p>{escape(path)}</p></body></html>"
            self._send(200, "text/html; charset=utf-8", private.encode(), head=head)
        else:
            self._send(404, "text/html; charset=utf-8", _small_page(404), head=head)

    def _not_modified(self, etag: str, modified: datetime) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
            return "*" in tags or etag in tags
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_modified_since is None:
            return False
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return since >= modified

    def _send(
        self,
        status: int,
        content_type: str | None,
        body: bytes,
        *,
        head: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

    def send_response(self, code: int, message: str | None = None) -> None:
        # Errors sent before a request line was parsed have no path nor headers.
        self.server.site._record(getattr(self, "path", ""), code, self._request_headers)
        self._request_headers = None
        super().send_response(code, message)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _CountingWriter(io.BufferedIOBase):
    """The socket writer, adding every byte it writes to the site's ``bytes_sent``."""

    def __init__(self, raw: io.BufferedIOBase, site: Website) -> None:
        super().__init__()
        self._raw = raw
        self._site = site

    def write(self, data: ReadableBuffer, /) -> int:
        written = self._raw.write(data)
        self._site._count(written)
        return written

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        super().close()
        self._raw.close()

    def writable(self) -> bool:
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    site: Website


def _parent_of(n: int) -> int:
    return HOME if n < 2 else (n - 2) // 2


def _path(n: int) -> str:
    return "/" if n == HOME else f"/p/{n}"


def _page_number(path: str) -> int | None:
    """The ``n`` of ``/p/<n>``, written without sign or leading zeros; None for any other path."""
    digits = path.removeprefix("/p/")
    if digits == path or not digits.isdigit() or str(int(digits)) != digits:
        return None
    return int(digits)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _paragraphs(seed: str, size: int) -> list[str]:
    """A few paragraphs of sentences, about ``size`` bytes in all, the same for the same seed."""
    rng = random.Random(seed)
    count = max(1, min(8, round(size / 500)))
    paragraphs = []
    for _ in range(count):
        sentences: list[str] = []
        while sum(len(s) + 1 for s in sentences) < size / count:
            words = rng.choices(_WORDS, k=rng.randint(6, 14))
            sentences.append(" ".join(words).capitalize() + ".")
        paragraphs.append(" ".join(sentences))
    return paragraphs


def _small_page(status: int) -> bytes:
    return f"<!DOCTYPE html><html><body><h1>{status} {HTTPStatus(status).phrase}</h1></body></html>".encode()
