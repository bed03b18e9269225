"""Geonode batch scraping: ``/v1/batch``, as Geonode documents it."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api import platform_of
from gateway.api.fields import flag
from gateway.api.models import geonode as models
from gateway.api.operations import GEONODE, Operation
from gateway.api.page_documents import css_selectors, request_headers, screenshot_url
from gateway.batches.proxies import ProxyChoice
from gateway.batches.service import Batch, BatchPage, BatchStatus, PageCounts
from gateway.clock import timestamp
from gateway.errors import BadRequest
from gateway.http import api_key_of, json_object, query_int
from spiders_project.pages import WAIT_UNTIL, PageOptions

FORMATS = ("markdown", "html", "screenshot")
PROXY_TYPES = ("datacenter", "residential", "mix")
MAX_SELECTOR_LENGTH = 4096
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
    ignore_invalid = flag(body, "ignore_invalid_urls", True)
    options, proxy = _options(body)
    batch, invalid = await platform.batches.create(
        api_key_of(request), "geonode", urls, options, proxy=proxy, ignore_invalid=ignore_invalid
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
            "results": [
                _result(item, screenshot_url(str(request.base_url), batch.id, item)) for item in pages
            ],
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


def _options(body: dict[str, Any]) -> tuple[PageOptions, ProxyChoice | None]:
    formats = body.get("formats", ["markdown"])
    if not isinstance(formats, list) or not formats or not all(name in FORMATS for name in formats):
        raise BadRequest(f"formats must be a non-empty list of {', '.join(FORMATS)}")
    render = flag(body, "render_js", False)
    screenshot = "full_page" if "screenshot" in formats else None
    wait = _wait_config(body.get("wait_config"))
    if wait and not (render or screenshot):
        raise BadRequest("wait_config needs render_js: true")
    options = PageOptions(
        # Links come with every page in Geonode's results.
        formats=frozenset(formats) | {"links"},
        headers=request_headers(body.get("headers")),
        render=render,
        screenshot=screenshot,
        **wait,
    )
    return options, _proxy(body.get("proxy"))


def _wait_config(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - {"wait_until", "wait_for", "wait_timeout"}:
        raise BadRequest("wait_config takes wait_until, wait_for and wait_timeout")
    until, selector, timeout = value.get("wait_until"), value.get("wait_for"), value.get("wait_timeout")
    if until is not None and until not in WAIT_UNTIL:
        raise BadRequest(f"wait_config.wait_until must be one of {', '.join(WAIT_UNTIL)}")
    if selector is not None:
        if not isinstance(selector, str) or not selector.strip() or len(selector) > MAX_SELECTOR_LENGTH:
            raise BadRequest(
                f"wait_config.wait_for must be a CSS selector of up to {MAX_SELECTOR_LENGTH} characters"
            )
        css_selectors([selector], "wait_config.wait_for")
    if timeout is not None and (
        not isinstance(timeout, int) or isinstance(timeout, bool) or not 0 <= timeout <= 30000
    ):
        raise BadRequest("wait_config.wait_timeout must be 0 to 30000 milliseconds")
    return {"wait_until": until, "wait_for": selector, "wait_timeout_ms": timeout or None}


def _proxy(value: Any) -> ProxyChoice | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"country", "type"}:
        raise BadRequest("proxy takes country and type")
    country, kind = value.get("country"), value.get("type", "residential")
    if country is not None and (not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country)):
        raise BadRequest("proxy.country must be a two-letter code such as US")
    if kind not in PROXY_TYPES:
        raise BadRequest(f"proxy.type must be one of {', '.join(PROXY_TYPES)}")
    return ProxyChoice(type=None if kind == "mix" else kind, country=country)


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
