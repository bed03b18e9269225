"""Geonode batch scraping: ``/v1/batch``, as Geonode documents it."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api import platform_of
from gateway.api.models import geonode as models
from gateway.api.operations import GEONODE, Operation
from gateway.api.page_documents import screenshot_url
from gateway.api.validation import parse_body, parse_query
from gateway.api.webhooks import webhook_target
from gateway.batches.models import Batch, BatchPage, BatchStatus, PageCounts
from gateway.batches.proxies import ProxyChoice
from gateway.clock import timestamp
from gateway.http import api_key_of
from gateway.webhooks.models import CANCELLED
from spiders_project.pages import PageOptions

FORMATS = ("markdown", "html", "screenshot")
_STATUS = {
    BatchStatus.QUEUED: "queued",
    BatchStatus.RUNNING: "processing",
    BatchStatus.COMPLETED: "completed",
    BatchStatus.FAILED: "failed",
    BatchStatus.CANCELLED: "cancelled",
}


# A Geonode batch's webhook events: batch.started, batch.completed, batch.failed, batch.cancelled.
GEONODE_EVENTS = frozenset({"started", "completed", "failed", CANCELLED})


async def start_batch(request: Request) -> JSONResponse:
    platform = platform_of(request)
    body = await parse_body(request, models.StartBatchBody)
    options, proxy = _options(body)
    webhook = await webhook_target(request, body.webhook, known_events=GEONODE_EVENTS)
    batch, invalid = await platform.batches.create(
        api_key_of(request),
        "geonode",
        body.urls,
        options,
        proxy=proxy,
        ignore_invalid=body.ignore_invalid_urls,
        webhook=webhook,
        webhook_type="batch",
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
    query = parse_query(request, models.BatchPageQuery)
    page, page_size = query.page, query.page_size
    counts = await platform.batches.counts(batch.id)
    window = await platform.batches.window(batch.id, offset=(page - 1) * page_size, limit=page_size)
    pages = await platform.batches.pages(window)
    return JSONResponse(
        _summary(batch, counts)
        | {
            "batch_config": _config(batch),
            "total_urls": batch.total_urls,
            "invalid_urls": [entry["url"] for entry in batch.invalid_urls],
            "page": page,
            "page_size": page_size,
            "results": [
                _result(item, screenshot_url(str(request.base_url), batch.id, item)) for item in pages
            ],
        }
    )


async def list_batches(request: Request) -> JSONResponse:
    platform = platform_of(request)
    query = parse_query(request, models.BatchListQuery)
    page, page_size = query.page, query.page_size
    by_name = {name: state for state, name in _STATUS.items()}
    found, total = await platform.batches.search(
        api_key_of(request),
        offset=(page - 1) * page_size,
        limit=page_size,
        status=by_name[query.status] if query.status else None,
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


def _options(body: models.StartBatchBody) -> tuple[PageOptions, ProxyChoice | None]:
    screenshot = "full_page" if "screenshot" in body.formats else None
    wait = body.wait_config or models.WaitConfig()
    options = PageOptions(
        # Links come with every page in Geonode's results.
        formats=frozenset(body.formats) | {"links"},
        headers=dict(body.headers or {}),
        render=body.render_js,
        screenshot=screenshot,
        wait_until=wait.wait_until,
        wait_for=wait.wait_for,
        wait_timeout_ms=wait.wait_timeout or None,
    )
    proxy = body.proxy
    if proxy is None:
        return options, None
    return options, ProxyChoice(type=None if proxy.type == "mix" else proxy.type, country=proxy.country)


def _summary(batch: Batch, counts: PageCounts) -> dict[str, Any]:
    return {
        "job_id": batch.id,
        "status": _STATUS[batch.status],
        "completed_urls": counts.completed,
        "failed_urls": counts.failed,
        "cancelled_urls": counts.cancelled,
        "pending_urls": counts.pending,
        "spider_restarts": batch.restarts,
        "created_at": timestamp(batch.created_at),
        "completed_at": timestamp(batch.completed_at),
    }


def _config(batch: Batch) -> dict[str, Any]:
    options = batch.options
    wait = {
        "wait_until": options.wait_until,
        "wait_for": options.wait_for,
        "wait_timeout": options.wait_timeout_ms,
    }
    return {
        "render_js": options.render,
        "formats": sorted(options.formats & set(FORMATS)),
        "proxy": {"pool": options.proxy_pool} if options.proxy_pool else None,
        "headers": options.headers or None,
        "wait_config": wait if any(wait.values()) else None,
    }


def _result(page: BatchPage, screenshot: str) -> dict[str, Any]:
    done = page.finished_at is not None and page.status.value != "cancelled"
    record = page.record
    data = {"markdown": record.get("markdown"), "html": record.get("html"), "links": record.get("links")}
    if record.get("screenshot"):
        data["screenshot"] = screenshot
    return {
        "input_index": page.input_index,
        "url": page.url,
        "status": page.status.value,
        "error_code": page.error_code,
        "error_message": page.error_message,
        "data": data if done else None,
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


OPERATIONS = [
    Operation(
        "POST",
        "/v1/batch",
        start_batch,
        GEONODE,
        "Start a batch scrape",
        body=models.StartBatchBody,
        response=models.StartedBatch,
        status=202,
    ),
    # Before /v1/batch/{job_id}, which would take "jobs" for an id.
    Operation(
        "GET",
        "/v1/batch/jobs",
        list_batches,
        GEONODE,
        "List the tenant's batches",
        query=models.BatchListQuery,
        response=models.BatchList,
    ),
    Operation(
        "GET",
        "/v1/batch/{job_id}",
        batch_status,
        GEONODE,
        "A batch's status and a page of its results",
        query=models.BatchPageQuery,
        response=models.BatchStatusAnswer,
        # "jobs" is the list of batches.
        path_schemas={"job_id": {"type": "string", "not": {"const": "jobs"}}},
    ),
    Operation(
        "DELETE",
        "/v1/batch/{job_id}",
        cancel_batch,
        GEONODE,
        "Cancel a batch",
        response=models.CancelledBatch,
        status=202,
    ),
]
