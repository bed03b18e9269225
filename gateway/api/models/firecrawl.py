"""Firecrawl v2 batch scrapes and crawls, and the scrape options and documents Scrapeless shares.

Bodies take keys beyond those listed: firecrawl-py sends its full option set, with nulls.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, model_validator

from gateway.api.models.actions import Actions, Viewport
from gateway.api.models.common import Model
from gateway.api.models.fields import (
    Body,
    CountryCode,
    CssSelectors,
    NotSupportedWhenFalse,
    NotSupportedWhenTrue,
    NotSupportedYet,
    PathPatterns,
    Query,
    RequestHeaders,
)
from gateway.api.models.webhooks import Webhook
from spiders_project.actions import MAX_TOTAL_WAIT_MS, total_wait_ms
from spiders_project.site_scope import MAX_LISTING_LIMIT

# What a key without a credit limit reports left: the SDKs read remainingCredits as an integer
# (Java's int included), so not null.
UNLIMITED_CREDITS = 2**31 - 1

PageStatusName = Literal["scraping", "completed", "failed", "cancelled"]
FORMATS = ("markdown", "html", "rawHtml", "links", "images", "screenshot", "changeTracking")
# What change tracking can give without a model: a unified diff of the markdown.
CHANGE_TRACKING_MODES = ("git-diff",)
_FORMAT_ALIASES = {"raw_html": "rawHtml", "rawhtml": "rawHtml", "change_tracking": "changeTracking"}
# Formats other services offer that need a model; refused rather than ignored.
_LATER_FORMATS = {"json", "summary", "branding"}
MAX_WAIT_MS = 60_000
MAX_CRAWL_DELAY = 60.0
# The site spider's own concurrency: a crawl may ask for less, not more.
MAX_CRAWL_CONCURRENCY = 16
FormatName = Literal[
    "markdown", "html", "rawHtml", "links", "images", "screenshot", "screenshot@fullPage", "changeTracking"
]


class FormatObject(Body):
    type: str
    # screenshot's: the whole page, a JPEG of this quality (else a PNG), at this viewport size.
    fullPage: bool | None = None
    quality: int | None = Field(None, ge=1, le=100)
    viewport: Viewport | None = None
    # changeTracking's: how changes are shown, and which history the page is compared with.
    modes: list[str] | None = None
    tag: Annotated[str, StringConstraints(max_length=200)] | None = None


def _formats(value: Any) -> Any:
    """Each format as ``{type, fullPage}`` by its canonical name; what cannot be honoured is refused."""
    if not isinstance(value, list):
        return value
    if not value:
        raise ValueError("must name at least one format")
    entries = []
    for entry in value:
        fields = dict(entry) if isinstance(entry, dict) else {"type": entry}
        name = fields.get("type")
        if not isinstance(name, str):
            raise ValueError(f"holds {entry!r}, which is not a format")
        if name == "screenshot@fullPage":
            name, fields["fullPage"] = "screenshot", True
        name = _FORMAT_ALIASES.get(name.lower(), name)
        if name in _LATER_FORMATS:
            raise ValueError(f"holds {name!r}: that format is not supported yet")
        if name not in FORMATS:
            raise ValueError(f"holds the unknown format {name!r}: use {', '.join(FORMATS)}")
        if name == "changeTracking":
            _check_change_tracking(fields)
        entries.append({**fields, "type": name})
    if any(entry["type"] == "changeTracking" for entry in entries) and not any(
        entry["type"] == "markdown" for entry in entries
    ):
        raise ValueError("holds 'changeTracking', which compares markdown: ask for 'markdown' too")
    return entries


def _check_change_tracking(fields: dict[str, Any]) -> None:
    modes = fields.get("modes") or []
    if not isinstance(modes, list):
        return  # the model says it must be a list
    for mode in modes:
        if mode not in CHANGE_TRACKING_MODES:
            raise ValueError(f"holds the changeTracking mode {mode!r}: only 'git-diff' is supported")
    for option in ("schema", "prompt"):
        if fields.get(option) is not None:
            raise ValueError(f"holds changeTracking's {option}, which needs a model: not supported")


Formats = Annotated[
    list[FormatObject],
    BeforeValidator(_formats, json_schema_input_type=list[FormatName | FormatObject]),
    Field(
        description="markdown, html, rawHtml, links, images, screenshot (or screenshot@fullPage),"
        " changeTracking"
    ),
]


class Location(Body):
    country: CountryCode | None = None
    languages: list[str] | None = None


class ScrapeOptions(Body):
    formats: Formats | None = None
    onlyMainContent: bool | None = None
    includeTags: CssSelectors | None = None
    excludeTags: CssSelectors | None = None
    headers: RequestHeaders | None = None
    waitFor: int | None = Field(None, ge=0, le=MAX_WAIT_MS, description="Milliseconds; renders the page")
    timeout: int | None = Field(None, ge=1000, le=300000)
    mobile: NotSupportedWhenTrue = None
    proxy: Literal["basic", "auto", "stealth"] | None = None
    location: Location | None = None
    # The markdown never carries an inlined image's data (its alt text stays): only true is honoured.
    removeBase64Images: NotSupportedWhenFalse = None
    # Certificates are not checked (Scrapy's way, and Firecrawl's default): only true is honoured.
    skipTlsVerification: NotSupportedWhenFalse = None
    # Accepted as Firecrawl's default sends it; ads are not blocked (README).
    blockAds: bool | None = None
    fastMode: NotSupportedWhenTrue = None
    parsers: NotSupportedYet = None
    actions: Actions | None = None
    webhook: NotSupportedYet = None
    jsonOptions: NotSupportedYet = None
    changeTrackingOptions: NotSupportedYet = None

    @model_validator(mode="after")
    def _waits_bounded(self) -> ScrapeOptions:
        waits = (self.waitFor or 0) + total_wait_ms(
            tuple(action.model_dump() for action in self.actions or ())
        )
        if waits > MAX_TOTAL_WAIT_MS:
            raise ValueError(
                f"waitFor and the wait actions add up to {waits} ms: at most {MAX_TOTAL_WAIT_MS} ms"
            )
        return self


# Firecrawl's default maxAge: a copy up to two days old serves a scrape (0 always fetches).
DEFAULT_MAX_AGE_MS = 2 * 24 * 3600 * 1000


class ScrapeBody(ScrapeOptions):
    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = Field(
        description="The page to scrape"
    )
    maxAge: int | None = Field(
        None, ge=0, description="Milliseconds: serve the tenant's copy of the same scrape if younger"
    )
    storeInCache: bool | None = None
    minAge: NotSupportedYet = None
    zeroDataRetention: NotSupportedWhenTrue = None


class MapBody(Body):
    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = Field(
        description="The site to map"
    )
    search: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        None, description="Words the links are ordered by"
    )
    sitemap: Literal["include", "skip", "only"] | None = None
    includeSubdomains: bool | None = None
    ignoreQueryParameters: bool | None = None
    limit: int | None = Field(None, ge=1, le=MAX_LISTING_LIMIT)
    timeout: int | None = Field(None, ge=1000, le=300000, description="Milliseconds")
    location: Location | None = None
    headers: RequestHeaders | None = None
    ignoreCache: bool | None = None


class MappedLink(Model):
    url: str
    title: str | None = None
    description: str | None = None


class SiteMap(Model):
    success: bool
    links: list[MappedLink]


class BatchScrapeBody(ScrapeOptions):
    # Entries that are not URLs are listed back as invalid (or refused, with ignoreInvalidURLs false).
    urls: list[Any] = Field(json_schema_extra={"items": {"type": "string"}, "minItems": 1, "maxItems": 1000})
    ignoreInvalidURLs: bool | None = None
    webhook: Webhook | None = None


class StartedBatchScrape(Model):
    success: bool
    id: str
    url: str
    invalidURLs: list[str] | None


class StatusQuery(Query):
    skip: int = Field(0, ge=0, le=10**6)
    limit: int = Field(1000, ge=1, le=1000)


class Document(Model):
    """A page: the formats asked for, and its metadata."""

    markdown: str | None = None
    html: str | None = None
    rawHtml: str | None = None
    links: list[str] | None = None
    images: list[str] | None = None
    screenshot: str | None = None
    actions: dict[str, Any] | None = None
    changeTracking: dict[str, Any] | None = None
    metadata: dict[str, Any]


class ScrapeAnswer(Model):
    success: bool
    data: Document


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


def _results_are_kept(value: bool | None) -> bool | None:
    if value:
        raise ValueError("is not supported: results are kept until they expire")
    return value


class CrawlBody(Body):
    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = Field(
        description="Where the crawl starts"
    )
    limit: int | None = Field(None, ge=1, le=5000)
    includePaths: PathPatterns | None = None
    excludePaths: PathPatterns | None = None
    maxDiscoveryDepth: int | None = Field(None, ge=0)
    sitemap: Literal["include", "skip", "only"] | None = None
    allowSubdomains: bool | None = None
    allowExternalLinks: bool | None = None
    ignoreRobotsTxt: bool | None = None
    crawlEntireDomain: bool | None = None
    ignoreQueryParameters: bool | None = None
    regexOnFullURL: bool | None = None
    delay: float | None = Field(None, ge=0, le=MAX_CRAWL_DELAY, description="Seconds between two requests")
    maxConcurrency: int | None = Field(
        None, ge=1, le=MAX_CRAWL_CONCURRENCY, description="Requests in flight at most"
    )
    scrapeOptions: ScrapeOptions | None = None
    prompt: NotSupportedYet = None
    webhook: Webhook | None = None
    robotsUserAgent: NotSupportedYet = None
    zeroDataRetention: Annotated[bool | None, AfterValidator(_results_are_kept)] = None


class StartedCrawl(Model):
    success: bool
    id: str
    url: str


class CancelledCrawl(Model):
    success: bool
    status: Literal["cancelled"]


class CreditUsageData(Model):
    remainingCredits: int = Field(description=f"{UNLIMITED_CREDITS} for a key without a limit")
    planCredits: int | None = Field(description="The key's limit; null when it has none")
    billingPeriodStart: str | None
    billingPeriodEnd: str | None


class CreditUsage(Model):
    success: bool
    data: CreditUsageData


class QueueStatus(Model):
    success: bool
    jobsInQueue: int
    activeJobsInQueue: int
    waitingJobsInQueue: int
    maxConcurrency: int
    mostRecentSuccess: str | None


class ConcurrencyCheck(Model):
    success: bool
    concurrency: int
    maxConcurrency: int


class OngoingCrawl(Model):
    id: str
    teamId: str
    url: str
    created_at: str | None
    options: dict[str, Any]


class OngoingCrawls(Model):
    success: bool
    crawls: list[OngoingCrawl]
