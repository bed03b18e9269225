"""Scrapeless batch scrape: ``/api/v1/crawler/scrape/batch``, as the scrapeless SDK speaks it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api import platform_of
from gateway.api.page_documents import STATUS, batch_urls, document, scrape_options
from gateway.batches import PageStatus
from gateway.http import api_key_of, json_object, timestamp


async def start_batch(request: Request) -> JSONResponse:
    platform = platform_of(request)
    body = await json_object(request)
    urls, ignore_invalid = batch_urls(body)
    batch, invalid = await platform.batches.create(
        api_key_of(request),
        "scrapeless",
        urls,
        scrape_options(body),
        ignore_invalid=ignore_invalid,
    )
    return JSONResponse({"success": True, "id": batch.id, "invalidURLs": [item.url for item in invalid]})


async def batch_status(request: Request) -> JSONResponse:
    """The whole batch in one answer: the SDK does not follow ``next`` for batches."""
    platform = platform_of(request)
    batch = await platform.batches.get(api_key_of(request), request.path_params["batch_id"])
    counts = await platform.batches.counts(batch.id)
    pages = await platform.batches.pages(batch.id, statuses=[PageStatus.COMPLETED, PageStatus.FAILED])
    return JSONResponse(
        {
            "success": True,
            "status": STATUS[batch.status],
            "total": batch.total_urls,
            "completed": counts.done,
            "creditsUsed": batch.credits_used if batch.completed_at else counts.completed + counts.failed,
            "expiresAt": timestamp(batch.expires_at),
            "error": batch.error,
            "data": [document(page) for page in pages],
        }
    )
