"""Scrapeless batch scrapes: Firecrawl's scrape options and documents, in Scrapeless' envelope."""

from __future__ import annotations

from pydantic import Field

from gateway.api.models.common import Model
from gateway.api.models.firecrawl import BatchScrapeBody, DocumentsPage


class BrowserOptions(Model):
    proxy_country: str | None = Field(None, min_length=2, max_length=2)


class ScrapelessBatchBody(BatchScrapeBody):
    browserOptions: BrowserOptions | None = None


class StartedScrapelessBatch(Model):
    success: bool
    id: str
    invalidURLs: list[str]


class ScrapelessStatusQuery(Model):
    skip: int = Field(0, ge=0, le=10**6)


class ScrapelessBatchStatus(DocumentsPage):
    error: str | None
