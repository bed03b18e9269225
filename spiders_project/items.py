"""What the built-in spiders yield, and what pipelines make of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FetchedPage:
    """The raw facts of fetching one page of a batch or a site crawl, successful or not."""

    input_index: int
    source_url: str
    final_url: str
    status_code: int | None = None
    content_type: str = ""
    body: bytes = b""
    duration_ms: int = 0
    retry_count: int = 0
    error_code: str | None = None
    error: str | None = None
    screenshot: bytes | None = None
    # What the page's browser actions gave (ActionOutputs.to_record), when it had some.
    actions: dict[str, Any] | None = None
    # Site crawls: the response's validators, the page's links, and whether it answered 304 (then
    # its hash is the previous crawl's).
    etag: str | None = None
    last_modified: str | None = None
    links: list[str] | None = None
    not_modified: bool = False
    content_hash: str | None = None
    # Site crawls: the pages waiting to be fetched when this one was recorded (under the limit),
    # and whether the crawl found the page only in a sitemap, linked from none of its pages.
    frontier: int | None = None
    hidden: bool = False

    @property
    def failed(self) -> bool:
        return self.error_code is not None


@dataclass
class PageRecord:
    """A fetched page on its way to becoming the record a batch returns."""

    page: FetchedPage
    text: str | None = None
    is_html: bool = False
    markdown: str = ""
    html: str | None = None
    links: list[str] | None = None
    images: list[str] | None = None
    # A PDF's page count and title, when the page is one.
    pdf_pages: int | None = None
    pdf_title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
