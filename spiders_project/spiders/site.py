"""The site spider: crawls a website from a start URL within a crawl's scope, one record per page.

The frontier is the spider's own: it dedupes pages by canonical URL, follows redirects itself (so a
page reached twice is recorded once), keeps at most ``page_limit`` pages and only as many requests
in flight as Scrapy can run, which keeps the limit exact. A page whose ``<link rel="canonical">``
names a page the crawl has recorded (or a page recorded names it), under the same title, is a
duplicate and is not recorded: the title keeps a site whose every page names its home canonical
(a common mistake) from losing all its pages. Each record says how many pages wait in the
frontier, and whether the page was found only in a sitemap (hidden). A recrawl gets the validators
of the previous crawl's pages: it asks conditionally, and a 304 page reuses its known links and hash.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, IgnoreRequest
from scrapy.http import Response
from scrapy.utils._compression import _DecompressionMaxSizeExceeded
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap
from twisted.python.failure import Failure

from spiders_project.contract import ROBOTS_BLOCKED, Inputs
from spiders_project.conversion import absolute_url, page_outline
from spiders_project.fetching import (
    MAX_PAGE_BYTES,
    PAGE_SPIDER_SETTINGS,
    PageSpider,
    failure_code,
    fetched_page,
    fill_from_response,
)
from spiders_project.gateway_inputs import InputsUnavailable, read_inputs_now
from spiders_project.items import FetchedPage
from spiders_project.site_scope import CrawlScope, ScopeRules, canonical_url

MAX_REDIRECTS = 5
# Page requests a crawl may make for each page its limit allows: the rest went to redirects and to
# copies of pages recorded, which take no place under the limit.
MAX_REQUESTS_PER_PAGE = 3
MAX_SITEMAPS = 50
_SITEMAP_LINE = re.compile(rb"^\s*sitemap\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
_HTML_TYPES = (b"text/html", b"application/xhtml+xml")


class SiteSpider(PageSpider):
    """Argument: ``inputs_url``, where the gateway hands out the crawl's scope, options and the
    pages a previous crawl found."""

    name = "site"
    custom_settings: dict[str, Any] | None = {  # noqa: RUF012 - Scrapy reads it from the class
        **PAGE_SPIDER_SETTINGS,
        # The gateway turns it off for a crawl that ignores robots.txt (a -s setting wins over this).
        "ROBOTSTXT_OBEY": True,
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
        # Redirects are followed by the spider: the page they lead to may be known already.
        "REDIRECT_ENABLED": False,
    }

    def __init__(self, inputs_url: str, **kwargs: Any) -> None:
        super().__init__(inputs_url, **kwargs)
        self.scope = CrawlScope(url="")
        self.rules: ScopeRules | None = None
        self._known: dict[str, dict[str, Any]] = {}
        self._frontier: deque[tuple[str, int]] = deque()
        self._seen: set[str] = set()
        # The names of the pages recorded (their URL and the canonical URL each declares), with
        # their titles.
        self._kept: dict[str, str | None] = {}
        # Pages first found in a sitemap, and pages some crawled page links to.
        self._from_sitemap: set[str] = set()
        self._linked: set[str] = set()
        self._recorded = 0
        # Records of pages robots.txt forbids: they take no place under the page limit.
        self._blocked = 0
        self._in_flight = 0
        # Page requests sent, redirects followed included (a map fetches a bounded number).
        self._requested = 0
        self._sitemaps: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> SiteSpider:
        spider: SiteSpider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._idle, signal=signals.spider_idle)
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request | FetchedPage]:
        try:
            inputs = await read_inputs_now(self.inputs_url)
        except InputsUnavailable as exc:
            self.logger.error("could not read the crawl's inputs: %s", exc)
            return
        for request in self._begin(inputs):
            yield request

    def _begin(self, inputs: Inputs) -> Iterator[scrapy.Request | FetchedPage]:
        self.take_inputs(inputs)
        if inputs.crawl is None:
            raise ValueError("the site spider needs a crawl's inputs")
        self.scope = CrawlScope.from_json(inputs.crawl)
        self.rules = ScopeRules(self.scope)
        self._known = inputs.known or {}
        start = canonical_url(self.scope.url, self.scope)
        self._seen.add(start)
        if self.scope.listing and self.scope.sitemap == "only":
            # A map of the sitemaps alone fetches no page: the start is listed as it is.
            yield self._record(FetchedPage(input_index=-1, source_url=start, final_url=start))
        else:
            self._frontier.append((start, 0))
        if self.scope.sitemap != "skip":
            yield from self._sitemap_request(absolute_url(start, "/sitemap.xml") or start)
            # robots.txt may name further sitemaps (Sitemap: lines).
            yield scrapy.Request(
                absolute_url(start, "/robots.txt") or start,
                callback=self.parse_robots,
                errback=lambda _: None,
                dont_filter=True,
            )
        yield from self._pump()

    def parse_page(self, response: Response) -> Iterator[FetchedPage | scrapy.Request]:
        self._in_flight -= 1
        request, depth = response.request, response.meta["depth_from_start"]
        if 300 <= response.status < 400 and response.status != 304 and "Location" in response.headers:
            yield from self._redirect(response, depth)
            yield from self._pump()
            return
        url = canonical_url(response.url, self.scope)
        page = fill_from_response(self._page(request, url), response)
        known = self._known.get(url) or {}
        links: list[str] = []
        names: set[str] = {url}
        # No title for what is not HTML: never the same as an HTML page's, even an untitled one's.
        title: str | None = None
        if response.status == 304:
            # Unchanged since the last crawl: what that crawl learnt of the page still holds.
            page.not_modified, page.error_code, page.error = True, None, None
            page.content_hash = known.get("content_hash")
            links = list(known.get("links") or ())
        elif response.status < 300 and _is_html(response):
            outline = page_outline(response.text, response.url)
            links, title = outline.links, outline.title
            if outline.canonical is not None:
                names.add(canonical_url(outline.canonical, self.scope))
        page.etag = _header(response, b"ETag") or (known.get("etag") if page.not_modified else None)
        page.last_modified = _header(response, b"Last-Modified") or (
            known.get("last_modified") if page.not_modified else None
        )
        page.links = links
        if any(name in self._kept and self._kept[name] == title for name in names):
            # A copy's links are its original's: it is neither recorded nor followed.
            self.logger.info("%s duplicates a page recorded already (its canonical URL)", url)
            yield from self._pump()
            return
        listed: list[FetchedPage] = []
        if self.scope.sitemap != "only" and (self.scope.max_depth is None or depth < self.scope.max_depth):
            for link in links:
                listed += self._admit(link, depth + 1)
        for name in names:
            self._kept.setdefault(name, title)
        yield self._record(page)
        yield from listed
        yield from self._pump()

    def page_failed(self, failure: Failure) -> Iterator[FetchedPage | scrapy.Request]:
        self._in_flight -= 1
        request = failure.request  # type: ignore[attr-defined]
        if isinstance(failure.value, IgnoreRequest) and "robots.txt" in str(failure.value):
            self.logger.info("robots.txt forbids %s", request.url)
            if self.scope.list_robots_blocked:
                page = self._page(request, request.meta["page_url"])
                page.error_code, page.error = ROBOTS_BLOCKED, "robots.txt forbids crawling this page"
                self._blocked += 1
                yield self._record(page)
        else:
            page = self._page(request, request.meta["page_url"])
            page.error_code, page.error = failure_code(failure)
            yield self._record(page)
        yield from self._pump()

    def parse_robots(self, response: Response) -> Iterator[scrapy.Request]:
        if response.status != 200:
            return
        for match in _SITEMAP_LINE.finditer(response.body[:MAX_PAGE_BYTES]):
            location = absolute_url(response.url, match.group(1).decode("latin-1"))
            # The site's own sitemaps only: robots.txt cannot send the crawl elsewhere.
            if location and urlsplit(location).hostname == urlsplit(response.url).hostname:
                yield from self._sitemap_request(location)
        yield from self._pump()

    def parse_sitemap(self, response: Response) -> Iterator[FetchedPage | scrapy.Request]:
        body = response.body
        if response.status != 200 or not body:
            return
        if body[:2] == b"\x1f\x8b":
            try:
                # Capped as Scrapy caps its own decompression: a gzip bomb stops at the page limit.
                body = gunzip(body, max_size=MAX_PAGE_BYTES)
            except (OSError, EOFError, _DecompressionMaxSizeExceeded):
                self.logger.info(
                    "%s: not a gzip file, or larger than %d bytes unpacked", response.url, MAX_PAGE_BYTES
                )
                return
        try:
            sitemap = Sitemap(body)
        except Exception:
            self.logger.info("%s is not a sitemap", response.url)
            return
        for entry in sitemap:
            location = entry.get("loc")
            if not location:
                continue
            if sitemap.type == "sitemapindex":
                yield from self._sitemap_request(location)
            else:
                yield from self._admit(location, 0, linked=False)
        yield from self._pump()

    def _redirect(self, response: Response, depth: int) -> Iterator[FetchedPage | scrapy.Request]:
        """Follow a redirect as a request of the spider's own: the page it leads to may be known."""
        redirects = int(response.meta.get("redirects", 0)) + 1
        target = absolute_url(response.url, _header(response, b"Location") or "")
        if target is None or redirects > MAX_REDIRECTS:
            page = fill_from_response(self._page(response.request, response.meta["page_url"]), response)
            page.error_code, page.error = "TOO_MANY_REDIRECTS", f"gave up after {MAX_REDIRECTS} redirects"
            yield self._record(page)
            return
        canonical = canonical_url(target, self.scope)
        if self.rules is not None and depth == 0 and response.meta.get("start"):
            # The start page moved (http → https, to www.): the crawl's site moves with it.
            self.rules.rebase(canonical)
        elif self.rules is not None and not self.rules.follows(canonical):
            return
        if canonical in self._seen and canonical != response.meta["page_url"]:
            return
        self._seen.add(canonical)
        yield self._page_request(
            canonical, depth, redirects=redirects, start=bool(response.meta.get("start"))
        )

    def _admit(self, url: str, depth: int, *, linked: bool = True) -> list[FetchedPage]:
        """Put a page in the frontier, if it is new and in scope. A map lists it instead (its record,
        returned) once the pages to fetch for links are all chosen, or when it fetches none."""
        canonical = canonical_url(url, self.scope)
        if linked:
            self._linked.add(canonical)
        if canonical in self._seen or self.rules is None or not self.rules.follows(canonical):
            return []
        self._seen.add(canonical)
        if not linked:
            self._from_sitemap.add(canonical)
        if not self.scope.listing:
            self._frontier.append((canonical, depth))
            return []
        fetching = self._requested + len(self._frontier)
        if self.scope.sitemap != "only" and fetching < self.scope.fetch_limit:
            self._frontier.append((canonical, depth))
            return []
        if self._pages_recorded + self._in_flight + len(self._frontier) >= self.scope.page_limit:
            return []
        return [self._record(FetchedPage(input_index=-1, source_url=canonical, final_url=canonical))]

    def _pump(self) -> Iterator[scrapy.Request]:
        """Send pages from the frontier while the page limit and Scrapy's concurrency allow."""
        window = 2 * self.settings.getint("CONCURRENT_REQUESTS", 16)
        while self._frontier and self._in_flight < window:
            if self._pages_recorded + self._in_flight >= self.scope.page_limit or self._requested >= (
                MAX_REQUESTS_PER_PAGE * self.scope.page_limit
            ):
                # The limit is reached, or so many requests went to pages never recorded (copies,
                # redirects) that a site of copies cannot keep the crawl going.
                self._frontier.clear()
                return
            url, depth = self._frontier.popleft()
            yield self._page_request(url, depth, start=not self._recorded and not self._in_flight)

    def _page_request(
        self, url: str, depth: int, *, redirects: int = 0, start: bool = False
    ) -> scrapy.Request:
        self._in_flight += 1
        self._requested += 1
        headers = dict(self.page_options.headers)
        known = self._known.get(url) or {}
        if known.get("etag"):
            headers["If-None-Match"] = known["etag"]
        if known.get("last_modified"):
            headers["If-Modified-Since"] = known["last_modified"]
        return scrapy.Request(
            url,
            callback=self.parse_page,
            errback=self.page_failed,
            headers=headers,
            meta=self.page_meta(
                page_url=url,
                depth_from_start=depth,
                redirects=redirects,
                start=start,
                dont_redirect=True,
            ),
            dont_filter=True,
        )

    def _sitemap_request(self, url: str) -> Iterator[scrapy.Request]:
        """A request of the sitemap, unless it was asked for already or the crawl has read enough."""
        if url in self._sitemaps or len(self._sitemaps) >= MAX_SITEMAPS:
            return
        self._sitemaps.add(url)
        yield scrapy.Request(url, callback=self.parse_sitemap, errback=lambda _: None, dont_filter=True)

    @property
    def _pages_recorded(self) -> int:
        """Records that count under the page limit."""
        return self._recorded - self._blocked

    def _record(self, page: FetchedPage) -> FetchedPage:
        page.input_index = self._recorded
        self._recorded += 1
        waiting = len(self._frontier) + self._in_flight
        page.frontier = max(0, min(waiting, self.scope.page_limit - self._pages_recorded))
        page.hidden = page.source_url in self._from_sitemap and page.source_url not in self._linked
        return page

    def _page(self, request: Any, url: str) -> FetchedPage:
        return fetched_page(request, -1, url)

    def _idle(self) -> None:
        if not self._frontier or self._pages_recorded >= self.scope.page_limit:
            return
        for request in self._pump():
            self.crawler.engine.crawl(request)
        raise DontCloseSpider


def _is_html(response: Response) -> bool:
    content_type = (response.headers.get("Content-Type") or b"").lower()
    return not content_type or any(kind in content_type for kind in _HTML_TYPES)


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None
