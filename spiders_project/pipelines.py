"""Pipelines that turn a fetched page into a batch's page record, one step each.

Enabled in settings.py in this order: content (markdown, clean HTML, links), metadata, change hash,
record. Other items pass through untouched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from typing import Any

from scrapy.crawler import Crawler
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.misc import load_object
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from spiders_project.contract import ACTIONS, SCREENSHOT, PageFacts, RecordStatus
from spiders_project.conversion import DEFAULT_CONVERTER, HtmlConverter, convert_html
from spiders_project.decoding import decode_body
from spiders_project.documents import pdf_text
from spiders_project.items import FetchedPage, PageRecord
from spiders_project.metadata import head_metadata
from spiders_project.pages import ContentOptions, PageOptions

log = logging.getLogger(__name__)

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_JSON_TYPES = ("application/json", "text/json")


def _page_options(crawler: Crawler) -> PageOptions:
    return getattr(crawler.spider, "page_options", None) or PageOptions()


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


class PageContentPipeline:
    """Decodes the body and converts it to markdown (plus clean HTML and links when asked).

    The work runs in a small pool of its own (``PAGE_CONVERSION_THREADS``): html-to-markdown and lxml
    release the GIL, so the reactor keeps fetching, and a pool no larger than the cores avoids
    starving the reactor thread.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        threads = crawler.settings.getint("PAGE_CONVERSION_THREADS", 1)
        self.pool = ThreadPool(minthreads=threads, maxthreads=threads, name="page-conversion")
        # HTML → markdown, clean HTML and links; another converter can be compared by this setting.
        self.convert: HtmlConverter = load_object(crawler.settings.get("PAGE_CONVERTER", DEFAULT_CONVERTER))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageContentPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        self.pool.start()

    def close_spider(self) -> None:
        self.pool.stop()

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, FetchedPage):
            return item
        # Imported here: importing the reactor at module load would install the wrong one.
        from twisted.internet import reactor

        options = _page_options(self.crawler)
        try:
            return await maybe_deferred_to_future(
                deferToThreadPool(reactor, self.pool, _content, item, options, self.convert)
            )
        except Exception as exc:
            # A page that breaks the converter is still a page: its record says so.
            log.exception("page %s could not be converted", item.final_url)
            item.error_code, item.error = "CONVERSION_ERROR", f"the page could not be converted: {exc}"
            return PageRecord(page=item)


def _content(page: FetchedPage, options: PageOptions, convert: HtmlConverter) -> PageRecord:
    record = PageRecord(page=page)
    if not page.body:
        return record
    media_type = _media_type(page.content_type)
    if media_type == "application/pdf" or page.body.startswith(b"%PDF-"):
        pdf = pdf_text(page.body)
        record.markdown, record.pdf_pages, record.pdf_title = pdf.markdown, pdf.pages, pdf.title
        return record
    if media_type.startswith("image/") or media_type in ("application/octet-stream",):
        record.markdown = f"![]({page.final_url})\n" if media_type.startswith("image/") else ""
        return record
    record.text, _ = decode_body(page.body, page.content_type or None)
    if media_type in _HTML_TYPES or (not media_type and "<html" in record.text[:2048].lower()):
        record.is_html = True
        if options.listing:
            return record  # its head's metadata is all a map needs
        content = convert(record.text, page.final_url, options.content)
        record.markdown, record.html, record.links = content.markdown, content.html, content.links
        record.images = content.images
    elif media_type in _JSON_TYPES or media_type.endswith("+json"):
        record.markdown = f"```json\n{_pretty_json(record.text)}\n```\n"
    elif media_type.endswith("xml"):
        record.markdown = f"```xml\n{record.text.strip()}\n```\n"
    else:
        record.markdown = record.text
    return record


def _pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text.strip()


class PageMetadataPipeline:
    """The record's metadata: the page head's (HTML only) and the fetch's own facts."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageMetadataPipeline:
        return cls()

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageRecord):
            return item
        page = item.page
        metadata: dict[str, Any] = {"ogLocaleAlternate": []}
        if item.is_html and item.text is not None:
            try:
                metadata = head_metadata(item.text, page.final_url)
            except Exception:
                log.exception("no metadata for page %s", page.final_url)
        if item.pdf_pages is not None:
            metadata["numPages"] = item.pdf_pages
            if item.pdf_title:
                metadata["title"] = item.pdf_title
        metadata |= {
            "sourceURL": page.source_url,
            "url": page.final_url,
            "statusCode": page.status_code,
            "contentType": page.content_type or None,
            "error": page.error,
        }
        item.metadata = metadata
        return item


class PageChangePipeline:
    """The hash a recrawl compares: of the page's main content, whitespace folded, so markup and
    boilerplate around it (a footer's clock, a sidebar) never make a page "updated"."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageChangePipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageRecord):
            return item
        page, options = item.page, _page_options(self.crawler)
        if page.not_modified or page.failed:
            return item
        if _tracks_changes(self.crawler):
            page.content_hash = content_hash(item.markdown)
        elif options.track_changes:
            page.content_hash = content_hash(_main_content(item, options))
        return item


def _main_content(item: PageRecord, options: PageOptions) -> str:
    """The page's main content as markdown: its markdown if that is what was asked for."""
    if options.only_main_content or not item.is_html or item.text is None:
        return item.markdown
    return convert_html(item.text, item.page.final_url, ContentOptions(only_main_content=True)).markdown


def content_hash(markdown: str) -> str:
    return hashlib.sha256(_WHITESPACE.sub(" ", markdown).strip().encode()).hexdigest()


_WHITESPACE = re.compile(r"\s+")


def _tracks_changes(crawler: Crawler) -> bool:
    scope = getattr(crawler.spider, "scope", None)
    return bool(getattr(scope, "track_changes", False))


# What one record may carry (markdown, html, rawHtml, links, screenshot): the gateway reads a feed
# line of up to gateway.jobs.feeds.MAX_LINE_BYTES.
MAX_RECORD_BYTES = 40 * 1024 * 1024


def _content_bytes(record: dict[str, Any]) -> int:
    size = sum(len(record.get(name) or "") for name in ("markdown", "html", "rawHtml", "screenshot"))
    if record.get(ACTIONS):
        size += len(json.dumps(record[ACTIONS], ensure_ascii=False))
    return size + sum(len(link) + 3 for link in [*(record.get("links") or ()), *(record.get("images") or ())])


class PageRecordPipeline:
    """The page record as it leaves the spider: only the formats the batch asked for."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageRecordPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageRecord):
            return item
        options = _page_options(self.crawler)
        page, formats = item.page, options.formats
        tracks_changes = _tracks_changes(self.crawler)
        record = PageFacts(
            input_index=page.input_index,
            url=page.source_url,
            status=RecordStatus.FAILED if page.failed else RecordStatus.COMPLETED,
            status_code=page.status_code,
            error_code=page.error_code,
            error=page.error,
            duration_ms=page.duration_ms,
            retry_count=page.retry_count,
            content_hash=page.content_hash if tracks_changes or options.track_changes else None,
        ).to_record()
        if "markdown" in formats:
            record["markdown"] = item.markdown
        if "html" in formats:
            record["html"] = item.html if item.html is not None else ""
        if "rawHtml" in formats:
            record["rawHtml"] = item.text if item.text is not None else ""
        if "links" in formats:
            record["links"] = item.links if item.links is not None else []
        if "images" in formats:
            record["images"] = item.images if item.images is not None else []
        if "screenshot" in formats and page.screenshot:
            # The gateway keeps the PNG and gives the record a URL for it instead.
            record[SCREENSHOT] = base64.b64encode(page.screenshot).decode("ascii")
        if page.actions is not None:
            # Their screenshots in base64, as the page's own: the gateway keeps them apart.
            record[ACTIONS] = page.actions
        record["metadata"] = item.metadata
        if page.frontier is not None:
            record["frontier"] = page.frontier
        if page.hidden:
            record["hidden"] = True
        if _content_bytes(record) > MAX_RECORD_BYTES:
            # The feed carries one record a line; one this big becomes the page's error instead.
            for name in ("markdown", "html", "rawHtml", "links", "images", "screenshot", ACTIONS):
                record.pop(name, None)
            record |= {
                "status": RecordStatus.FAILED.value,
                "error_code": "TOO_LARGE",
                "error": f"the page's record is larger than {MAX_RECORD_BYTES // (1024 * 1024)} MiB",
            }
        if tracks_changes:
            # What the next crawl of the site asks and compares with (with content_hash above).
            record |= {
                "etag": page.etag,
                "last_modified": page.last_modified,
                "not_modified": page.not_modified,
                "page_links": page.links or [],
            }
        return record
