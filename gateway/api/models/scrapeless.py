"""Scrapeless batch scrapes: Firecrawl's scrape options and documents, in Scrapeless' envelope."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from gateway.api.models.common import Model
from gateway.api.models.fields import Body, CountryCode, Query
from gateway.api.models.firecrawl import BatchScrapeBody, DocumentsPage


class BrowserOptions(Body):
    # Only the proxy's country is honoured; other browser options are refused, not ignored.
    model_config = ConfigDict(extra="forbid")

    proxy_country: CountryCode | None = None


class ScrapelessBatchBody(BatchScrapeBody):
    browserOptions: BrowserOptions | None = None


class StartedScrapelessBatch(Model):
    success: bool
    id: str
    invalidURLs: list[str]


class ScrapelessStatusQuery(Query):
    skip: int = Field(0, ge=0, le=10**6)


class ScrapelessBatchStatus(DocumentsPage):
    error: str | None
