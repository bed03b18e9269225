"""Geonode batch scraping: ``/v1/batch``, as Geonode documents it."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api import platform_of
from gateway.api.page_documents import request_headers
from gateway.batches import Batch, BatchPage, BatchStatus, PageCounts
from gateway.errors import BadRequest
from gateway.http import api_key_of, json_object, query_int, timestamp
from spiders_project.pages import PageOptions

FORMATS = ("markdown", "html")
_STATUS = {
    BatchStatus.QUEUED: "queued",
    BatchStatus.RUNNING: "processing",
    BatchStatus.COMPLETED: "completed",
    BatchStatus.FAILED: "failed",
    BatchStatus.CANCELLED: "cancelled",
}


async def start_batch(request: Request) -> JSONResponse:
    platform = platform_of(request)
    body = await json_object(request)
    urls = body.get("urls")
    if not isinstance(urls, list):
        raise BadRequest("urls must be a list of 1 to 1000 URLs")
    ignore_invalid = body.get("ignore_invalid_urls", True)
    if not isinstance(ignore_invalid, bool):
        raise BadRequest("ignore_invalid_urls must be true or false")
    batch, invalid = await platform.batches.create(
        api_key_of(request), "geonode", urls, _options(body), ignore_invalid=ignore_invalid
    )
    return JSONResponse(
        {
            "job_id": batch.id,
            "status": "queued",
            "status_url": _status_url(batch),
            "accepted_urls": batch.total_urls,
            "invalid_urls": [item.url for item in invalid],
        },
        status_code=202,
    )


async def batch_status(request: Request) -> JSONResponse:
    platform = platform_of(request)
    batch = await platform.batches.get(api_key_of(request), request.path_params["job_id"])
    page = query_int(request, "page", default=1, minimum=1, maximum=10**6)
    page_size = query_int(request, "page_size", default=10, minimum=1, maximum=50)
    counts = await platform.batches.counts(batch.id)
    pages, _ = await platform.batches.pages(batch.id, offset=(page - 1) * page_size, limit=page_size)
    return JSONResponse(
        _summary(batch, counts)
        | {
            "batch_config": _config(batch),
            "total_urls": batch.total_urls,
            "invalid_urls": [entry["url"] for entry in batch.invalid_urls],
            "page": page,
            "page_size": page_size,
            "results": [_result(item) for item in pages],
        }
    )


async def list_batches(request: Request) -> JSONResponse:
    platform = platform_of(request)
    page = query_int(request, "page", default=1, minimum=1, maximum=10**6)
    page_size = query_int(request, "page_size", default=10, minimum=1, maximum=100)
    status = request.query_params.get("status") or None
    by_name = {name: state for state, name in _STATUS.items()}
    if status is not None and status not in by_name:
        raise BadRequest(f"status must be one of {', '.join(by_name)}")
    found, total = await platform.batches.search(
        api_key_of(request),
        offset=(page - 1) * page_size,
        limit=page_size,
        status=by_name[status] if status else None,
    )
    jobs = []
    for batch in found:
        counts = await platform.batches.counts(batch.id)
        jobs.append(_summary(batch, counts) | {"accepted_urls": batch.total_urls, "config": _config(batch)})
    return JSONResponse(
        {"jobs": jobs, "page": page, "page_size": page_size, "page_count": max(1, -(-total // page_size))}
    )


async def cancel_batch(request: Request) -> JSONResponse:
    platform = platform_of(request)
    batch, in_flight = await platform.batches.cancel(api_key_of(request), request.path_params["job_id"])
    return JSONResponse(
        {
            "job_id": batch.id,
            "status": "cancelled",
            "status_url": _status_url(batch),
            "in_flight_urls": in_flight,
        },
        status_code=202,
    )


def _options(body: dict[str, Any]) -> PageOptions:
    formats = body.get("formats", ["markdown"])
    if not isinstance(formats, list) or not formats or not all(name in FORMATS for name in formats):
        raise BadRequest(f"formats must be a non-empty list of {' and '.join(FORMATS)}")
    if body.get("render_js") not in (None, False):
        raise BadRequest("render_js is not supported yet")
    if body.get("proxy") is not None:
        raise BadRequest("proxy is not supported yet")
    if body.get("wait_config") is not None:
        raise BadRequest("wait_config needs render_js, which is not supported yet")
    # Links come with every page in Geonode's results.
    return PageOptions(formats=frozenset(formats) | {"links"}, headers=request_headers(body.get("headers")))


def _summary(batch: Batch, counts: PageCounts) -> dict[str, Any]:
    return {
        "job_id": batch.id,
        "status": _STATUS[batch.status],
        "completed_urls": counts.completed,
        "failed_urls": counts.failed,
        "cancelled_urls": counts.cancelled,
        "pending_urls": counts.pending,
        "created_at": timestamp(batch.created_at),
        "completed_at": timestamp(batch.completed_at),
    }


def _config(batch: Batch) -> dict[str, Any]:
    return {
        "render_js": False,
        "formats": sorted(batch.options.formats & set(FORMATS)),
        "proxy": None,
        "headers": batch.options.headers or None,
        "wait_config": None,
    }


def _result(page: BatchPage) -> dict[str, Any]:
    done = page.finished_at is not None and page.status.value != "cancelled"
    record = page.record
    return {
        "input_index": page.input_index,
        "url": page.url,
        "status": page.status.value,
        "error_code": page.error_code,
        "error_message": page.error_message,
        "data": {"markdown": record.get("markdown"), "html": record.get("html"), "links": record.get("links")}
        if done
        else None,
        "metadata": {
            "http_status": page.status_code,
            "duration_ms": page.duration_ms,
            "retry_count": page.retry_count,
        }
        if done
        else None,
    }


def _status_url(batch: Batch) -> str:
    return f"/v1/batch/{batch.id}"
