"""Firecrawl v2 batch scrape: ``/v2/batch/scrape``, as the firecrawl-py SDK speaks it."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api import platform_of
from gateway.api.page_documents import STATUS, batch_urls, document, scrape_options, screenshot_url
from gateway.batches import Batch, PageStatus
from gateway.http import api_key_of, json_object, query_int, timestamp

# The SDK reads the whole status page into memory; Firecrawl caps one at 10 MiB.
MAX_PAGE_BYTES = 10 * 1024 * 1024


async def start_batch(request: Request) -> JSONResponse:
    platform = platform_of(request)
    body = await json_object(request)
    urls, ignore_invalid = batch_urls(body)
    options, proxy = scrape_options(body)
    idempotency_key = request.headers.get("x-idempotency-key") or None
    batch, invalid = await platform.batches.create(
        api_key_of(request),
        "firecrawl",
        urls,
        options,
        proxy=proxy,
        ignore_invalid=ignore_invalid,
        idempotency_key=idempotency_key,
    )
    return JSONResponse(
        {
            "success": True,
            "id": batch.id,
            "url": _status_url(request, batch),
            "invalidURLs": [item.url for item in invalid] if ignore_invalid else None,
        }
    )


async def batch_status(request: Request) -> JSONResponse:
    platform = platform_of(request)
    batch = await platform.batches.get(api_key_of(request), request.path_params["batch_id"])
    skip = query_int(request, "skip", default=0, minimum=0, maximum=10**6)
    limit = query_int(request, "limit", default=1000, minimum=1, maximum=1000)
    counts = await platform.batches.counts(batch.id)
    # In the order pages finished: a page finishing later never shifts the pages before it.
    pages, more = await platform.batches.pages(
        batch.id,
        statuses=[PageStatus.COMPLETED],
        offset=skip,
        limit=limit,
        max_bytes=MAX_PAGE_BYTES,
        by_completion=True,
    )
    body: dict[str, Any] = {
        "success": True,
        "status": STATUS[batch.status],
        "total": batch.total_urls,
        "completed": counts.done,
        "creditsUsed": batch.credits_used if batch.completed_at else counts.fetched,
        "expiresAt": timestamp(batch.expires_at),
        "data": [document(page, screenshot_url(str(request.base_url), batch.id, page)) for page in pages],
    }
    if more:
        # Left out on the last page: a `next` that leads back here would keep the SDK paging forever.
        body["next"] = str(request.url.include_query_params(skip=skip + len(pages)))
    return JSONResponse(body)


async def batch_errors(request: Request) -> JSONResponse:
    platform = platform_of(request)
    batch = await platform.batches.get(api_key_of(request), request.path_params["batch_id"])
    failed, _ = await platform.batches.pages(batch.id, statuses=[PageStatus.FAILED, PageStatus.CANCELLED])
    errors = [
        {
            "id": f"{batch.id}-{page.input_index}",
            "url": page.url,
            "error": page.error_message or page.error_code or "failed",
            "code": page.error_code,
            "timestamp": timestamp(page.finished_at),
        }
        for page in failed
    ]
    return JSONResponse({"errors": errors, "robotsBlocked": []})


async def cancel_batch(request: Request) -> JSONResponse:
    platform = platform_of(request)
    await platform.batches.cancel(api_key_of(request), request.path_params["batch_id"])
    return JSONResponse({"success": True, "status": "cancelled", "message": "Batch scrape job cancelled."})


def _status_url(request: Request, batch: Batch) -> str:
    return str(request.url.replace(path=f"/v2/batch/scrape/{batch.id}", query=""))
