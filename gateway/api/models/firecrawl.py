"""Firecrawl v2 batch scrapes and crawls, and the scrape options and documents Scrapeless shares.

Bodies take keys beyond those listed: firecrawl-py sends its full option set, with nulls.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from gateway.api.models.common import Model

PageStatusName = Literal["scraping", "completed", "failed", "cancelled"]


class FormatObject(Model):
    type: str
    fullPage: bool | None = None


class Location(Model):
    country: str | None = Field(None, min_length=2, max_length=2)
    languages: list[str] | None = None


class ScrapeOptions(Model):
    formats: list[str | FormatObject] | None = Field(
        None, description="markdown, html, rawHtml, links, screenshot (or screenshot@fullPage)"
    )
    onlyMainContent: bool | None = None
    includeTags: list[str] | None = Field(None, max_length=100)
    excludeTags: list[str] | None = Field(None, max_length=100)
    headers: dict[str, str] | None = None
    waitFor: int | None = Field(None, ge=0, le=60000)
    timeout: int | None = Field(None, ge=1000, le=300000)
    mobile: bool | None = None
    proxy: Literal["basic", "auto", "stealth"] | None = None
    location: Location | None = None


class BatchScrapeBody(ScrapeOptions):
    urls: list[str] = Field(min_length=1, max_length=1000)
    ignoreInvalidURLs: bool | None = None


class StartedBatchScrape(Model):
    success: bool
    id: str
    url: str
    invalidURLs: list[str] | None


class StatusQuery(Model):
    skip: int = Field(0, ge=0, le=10**6)
    limit: int = Field(1000, ge=1, le=1000)


class Document(Model):
    """A page: the formats asked for, and its metadata."""

    markdown: str | None = None
    html: str | None = None
    rawHtml: str | None = None
    links: list[str] | None = None
    screenshot: str | None = None
    metadata: dict[str, Any]


class DocumentsPage(Model):
    """A batch's progress and a page of its documents, as Firecrawl and Scrapeless answer it."""

    success: bool
    status: PageStatusName
    total: int
    completed: int
    creditsUsed: int
    expiresAt: str | None
    data: list[Document]
    next: str | None = None


class BatchStatus(DocumentsPage):
    # The platform's own: how often a new spider process took over pages left.
    spiderRestarts: int


class PageError(Model):
    id: str
    url: str
    error: str
    code: str | None
    timestamp: str | None


class Errors(Model):
    errors: list[PageError]
    robotsBlocked: list[str]


class CancelledBatchScrape(Model):
    success: bool
    status: Literal["cancelled"]
    message: str


class CrawlBody(Model):
    url: str = Field(min_length=1)
    limit: int | None = Field(None, ge=1, le=5000)
    includePaths: list[str] | None = None
    excludePaths: list[str] | None = None
    maxDiscoveryDepth: int | None = Field(None, ge=0)
    sitemap: Literal["include", "skip", "only"] | None = None
    allowSubdomains: bool | None = None
    allowExternalLinks: bool | None = None
    ignoreRobotsTxt: bool | None = None
    crawlEntireDomain: bool | None = None
    ignoreQueryParameters: bool | None = None
    regexOnFullURL: bool | None = None
    scrapeOptions: ScrapeOptions | None = None


class StartedCrawl(Model):
    success: bool
    id: str
    url: str


class CancelledCrawl(Model):
    success: bool
    status: Literal["cancelled"]
