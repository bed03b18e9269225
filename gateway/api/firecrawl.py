"""Firecrawl v2 batch scrape (``/v2/batch/scrape``) and crawl (``/v2/crawl``), as firecrawl-py speaks them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.api import platform_of
from gateway.api.models import firecrawl as models
from gateway.api.operations import FIRECRAWL, Operation
from gateway.api.page_documents import (
    STATUS,
    credits_used,
    documents_answer,
    ignores_invalid,
    scrape_options,
)
from gateway.api.validation import parse_body, parse_query
from gateway.api.webhooks import webhook_target
from gateway.batches.models import BATCH_EVENTS, Batch, BatchKind, PageCounts, PageStatus
from gateway.clock import timestamp
from gateway.http import api_key_of
from gateway.webhooks.models import Dialect
from spiders_project.contract import ROBOTS_BLOCKED
from spiders_project.site_scope import MAX_PAGE_LIMIT, CrawlScope

# The SDK reads the whole status page into memory; Firecrawl caps one at 10 MiB.
MAX_PAGE_BYTES = 10 * 1024 * 1024


async def start_batch(request: Request) -> JSONResponse:
    platform = platform_of(request)
    body = await parse_body(request, models.BatchScrapeBody)
    ignore_invalid = ignores_invalid(body)
    options, proxy = scrape_options(body)
    webhook = await webhook_target(
        request, body.webhook, known_events=BATCH_EVENTS, dialect=Dialect.FIRECRAWL
    )
    idempotency_key = request.headers.get("x-idempotency-key") or None
    batch, invalid = await platform.batches.create(
        api_key_of(request),
        "firecrawl",
        body.urls,
        options,
        proxy=proxy,
        ignore_invalid=ignore_invalid,
        idempotency_key=idempotency_key,
        webhook=webhook,
    )
    return JSONResponse(
        {
            "success": True,
            "id": batch.id,
            "url": _status_url(request, batch),
            "invalidURLs": [item.url for item in invalid] if ignore_invalid else None,
        }
    )


async def batch_status(request: Request) -> Response:
    return await _status(request, BatchKind.URLS)


async def _status(request: Request, kind: BatchKind) -> Response:
    platform = platform_of(request)
    batch = await platform.batches.get(api_key_of(request), request.path_params["batch_id"], kind)
    query = parse_query(request, models.StatusQuery)
    skip = query.skip
    counts = await platform.batches.counts(batch.id)
    # In the order pages finished: a page finishing later never shifts the pages before it.
    window = await platform.batches.window(
        batch.id,
        statuses=[PageStatus.COMPLETED],
        offset=skip,
        limit=query.limit,
        max_bytes=MAX_PAGE_BYTES,
        by_completion=True,
    )
    head: dict[str, Any] = {
        "success": True,
        "status": STATUS[batch.status],
        "total": batch.total_urls if kind == BatchKind.URLS else _crawl_total(batch, counts),
        "completed": counts.done,
        "creditsUsed": credits_used(batch, counts),
        "expiresAt": timestamp(batch.expires_at),
        # The platform's own: how often a new spider process took over pages left (a crash, a lost node).
        "spiderRestarts": batch.restarts,
    }
    # Left out on the last page: a `next` that leads back here would keep the SDK paging forever.
    following = (
        str(request.url.include_query_params(skip=skip + len(window.indexes))) if window.more else None
    )
    return await documents_answer(request, batch, head, window, following)


def _crawl_total(batch: Batch, counts: PageCounts) -> int:
    """What a crawl found so far: its pages recorded, and while it runs, those its spider has
    waiting (``total_urls``, as the spider's last record said)."""
    recorded = counts.done + counts.pending
    return recorded if batch.ended else max(recorded, batch.total_urls)


async def batch_errors(request: Request) -> JSONResponse:
    return await _errors(request, BatchKind.URLS)


async def _errors(request: Request, kind: BatchKind) -> JSONResponse:
    platform = platform_of(request)
    batch = await platform.batches.get(api_key_of(request), request.path_params["batch_id"], kind)
    window = await platform.batches.window(batch.id, statuses=[PageStatus.FAILED, PageStatus.CANCELLED])
    failed = await platform.batches.pages(window)
    errors = [
        {
            "id": f"{batch.id}-{page.input_index}",
            "url": page.url,
            "error": page.error_message or page.error_code or "failed",
            "code": page.error_code,
            "timestamp": timestamp(page.finished_at),
        }
        for page in failed
        if page.error_code != ROBOTS_BLOCKED
    ]
    blocked = [page.url for page in failed if page.error_code == ROBOTS_BLOCKED]
    return JSONResponse({"errors": errors, "robotsBlocked": blocked})


async def cancel_batch(request: Request) -> JSONResponse:
    platform = platform_of(request)
    await platform.batches.cancel(api_key_of(request), request.path_params["batch_id"])
    return JSONResponse({"success": True, "status": "cancelled", "message": "Batch scrape job cancelled."})


async def start_crawl(request: Request) -> JSONResponse:
    platform = platform_of(request)
    body = await parse_body(request, models.CrawlBody)
    scope = crawl_scope(body)
    options, proxy = scrape_options(body.scrapeOptions or models.ScrapeOptions())
    webhook = await webhook_target(
        request, body.webhook, known_events=BATCH_EVENTS, dialect=Dialect.FIRECRAWL
    )
    batch = await platform.batches.create_crawl(
        api_key_of(request),
        "firecrawl",
        scope,
        options,
        proxy=proxy,
        idempotency_key=request.headers.get("x-idempotency-key") or None,
        webhook=webhook,
    )
    url = str(request.url.replace(path=f"/v2/crawl/{batch.id}", query=""))
    return JSONResponse({"success": True, "id": batch.id, "url": url})


async def crawl_status(request: Request) -> Response:
    return await _status(request, BatchKind.CRAWL)


async def crawl_errors(request: Request) -> JSONResponse:
    return await _errors(request, BatchKind.CRAWL)


async def cancel_crawl(request: Request) -> JSONResponse:
    platform = platform_of(request)
    await platform.batches.cancel(api_key_of(request), request.path_params["batch_id"], BatchKind.CRAWL)
    return JSONResponse({"success": True, "status": "cancelled"})


def crawl_scope(body: models.CrawlBody) -> CrawlScope:
    """The crawl's scope from Firecrawl's options."""
    return CrawlScope(
        url=body.url.strip(),
        page_limit=body.limit or MAX_PAGE_LIMIT,
        include_paths=tuple(body.includePaths or ()),
        exclude_paths=tuple(body.excludePaths or ()),
        max_depth=body.maxDiscoveryDepth,
        allow_subdomains=body.allowSubdomains is True,
        allow_external_links=body.allowExternalLinks is True,
        entire_site=body.crawlEntireDomain is True,
        sitemap=body.sitemap or "include",
        ignore_query=body.ignoreQueryParameters is True,
        obey_robots=body.ignoreRobotsTxt is not True,
        regex_on_full_url=body.regexOnFullURL is True,
        delay_seconds=body.delay or None,
        max_concurrency=body.maxConcurrency,
        list_robots_blocked=True,
    )


def crawl_options(scope: CrawlScope) -> dict[str, Any]:
    """A crawl's scope in Firecrawl's names, as its request would have given it."""
    return {
        "limit": scope.page_limit,
        "includePaths": list(scope.include_paths),
        "excludePaths": list(scope.exclude_paths),
        "maxDiscoveryDepth": scope.max_depth,
        "allowSubdomains": scope.allow_subdomains,
        "allowExternalLinks": scope.allow_external_links,
        "crawlEntireDomain": scope.entire_site,
        "sitemap": scope.sitemap,
        "ignoreQueryParameters": scope.ignore_query,
        "ignoreRobotsTxt": not scope.obey_robots,
        "regexOnFullURL": scope.regex_on_full_url,
        "delay": scope.delay_seconds,
        "maxConcurrency": scope.max_concurrency,
    }


def _status_url(request: Request, batch: Batch) -> str:
    return str(request.url.replace(path=f"/v2/batch/scrape/{batch.id}", query=""))


IDEMPOTENCY = ("x-idempotency-key",)
OPERATIONS = [
    Operation(
        "POST",
        "/v2/batch/scrape",
        start_batch,
        FIRECRAWL,
        "Start a batch scrape",
        body=models.BatchScrapeBody,
        response=models.StartedBatchScrape,
        headers=IDEMPOTENCY,
    ),
    Operation(
        "GET",
        "/v2/batch/scrape/{batch_id}",
        batch_status,
        FIRECRAWL,
        "A batch scrape's status and its finished pages (follow next)",
        query=models.StatusQuery,
        response=models.BatchStatus,
    ),
    Operation(
        "DELETE",
        "/v2/batch/scrape/{batch_id}",
        cancel_batch,
        FIRECRAWL,
        "Cancel a batch scrape",
        response=models.CancelledBatchScrape,
    ),
    Operation(
        "GET",
        "/v2/batch/scrape/{batch_id}/errors",
        batch_errors,
        FIRECRAWL,
        "A batch scrape's failed pages",
        response=models.Errors,
    ),
    Operation(
        "POST",
        "/v2/crawl",
        start_crawl,
        FIRECRAWL,
        "Start a crawl of a site",
        body=models.CrawlBody,
        response=models.StartedCrawl,
        headers=IDEMPOTENCY,
    ),
    Operation(
        "GET",
        "/v2/crawl/{batch_id}",
        crawl_status,
        FIRECRAWL,
        "A crawl's status and its pages so far",
        query=models.StatusQuery,
        response=models.BatchStatus,
    ),
    Operation(
        "DELETE",
        "/v2/crawl/{batch_id}",
        cancel_crawl,
        FIRECRAWL,
        "Cancel a crawl",
        response=models.CancelledCrawl,
    ),
    Operation(
        "GET",
        "/v2/crawl/{batch_id}/errors",
        crawl_errors,
        FIRECRAWL,
        "A crawl's failed pages",
        response=models.Errors,
    ),
]
