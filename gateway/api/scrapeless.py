"""Scrapeless batch scrape: ``/api/v1/crawler/scrape/batch``, as the scrapeless SDK speaks it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.api import platform_of
from gateway.api.models import scrapeless as models
from gateway.api.operations import SCRAPELESS, Operation
from gateway.api.page_documents import (
    STATUS,
    credits_used,
    documents_answer,
    ignores_invalid,
    scrape_options,
)
from gateway.api.validation import parse_body, parse_query
from gateway.api.webhooks import webhook_target
from gateway.batches.models import BATCH_EVENTS, PageStatus
from gateway.clock import timestamp
from gateway.http import api_key_of
from gateway.webhooks.models import Dialect

MAX_ANSWER_BYTES = 10 * 1024 * 1024


async def start_batch(request: Request) -> JSONResponse:
    platform = platform_of(request)
    body = await parse_body(request, models.ScrapelessBatchBody)
    browser = body.browserOptions
    options, proxy = scrape_options(body, country=browser.proxy_country if browser else None)
    # Scrapeless batches are Firecrawl's: the same events and bodies.
    webhook = await webhook_target(
        request, body.webhook, known_events=BATCH_EVENTS, dialect=Dialect.FIRECRAWL
    )
    batch, invalid = await platform.batches.create(
        api_key_of(request),
        "scrapeless",
        body.urls,
        options,
        proxy=proxy,
        ignore_invalid=ignores_invalid(body),
        webhook=webhook,
    )
    return JSONResponse({"success": True, "id": batch.id, "invalidURLs": [item.url for item in invalid]})


async def batch_status(request: Request) -> Response:
    """Finished pages in input order, at most 10 MiB an answer; ``next`` (a relative path) for more.

    The SDK does not follow ``next`` for batches; batches of ordinary pages fit in one answer.
    """
    platform = platform_of(request)
    batch = await platform.batches.get(api_key_of(request), request.path_params["batch_id"])
    skip = parse_query(request, models.ScrapelessStatusQuery).skip
    counts = await platform.batches.counts(batch.id)
    window = await platform.batches.window(
        batch.id, statuses=[PageStatus.COMPLETED, PageStatus.FAILED], offset=skip, max_bytes=MAX_ANSWER_BYTES
    )
    head = {
        "success": True,
        "status": STATUS[batch.status],
        "total": batch.total_urls,
        "completed": counts.done,
        "creditsUsed": credits_used(batch, counts),
        "expiresAt": timestamp(batch.expires_at),
        "error": batch.error,
    }
    following = f"{request.url.path}?skip={skip + len(window.indexes)}" if window.more else None
    return await documents_answer(request, batch, head, window, following)


OPERATIONS = [
    Operation(
        "POST",
        "/api/v1/crawler/scrape/batch",
        start_batch,
        SCRAPELESS,
        "Start a batch scrape",
        body=models.ScrapelessBatchBody,
        response=models.StartedScrapelessBatch,
    ),
    Operation(
        "GET",
        "/api/v1/crawler/scrape/batch/{batch_id}",
        batch_status,
        SCRAPELESS,
        "A batch scrape's status and its finished pages",
        query=models.ScrapelessStatusQuery,
        response=models.ScrapelessBatchStatus,
    ),
]
