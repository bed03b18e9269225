"""Website datasources and their recrawls: ``/crawl``, in open.cx's shapes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.api import platform_of
from gateway.api.models import opencx as models
from gateway.api.models.common import Success
from gateway.api.operations import OPENCX, Operation
from gateway.api.validation import parse_body, parse_query
from gateway.api.webhooks import webhook_target
from gateway.clock import timestamp
from gateway.datasources.service import (
    CRAWL_EVENTS,
    Crawl,
    Datasource,
    DatasourcePage,
    DatasourceService,
    DatasourceSettings,
    DatasourceStatus,
)
from gateway.http import api_key_of


async def create_datasource(request: Request) -> JSONResponse:
    platform = platform_of(request)
    body = await parse_body(request, models.NewDatasource)
    key = api_key_of(request)
    webhook = await webhook_target(request, body.webhook, known_events=CRAWL_EVENTS)
    datasource, _ = await platform.datasources.create(
        key, _settings(body, url=body.url), start_crawl=body.auto_start_crawl, webhook=webhook
    )
    return JSONResponse(await _datasource(platform.datasources, datasource), status_code=201)


async def list_datasources(request: Request) -> JSONResponse:
    platform = platform_of(request)
    key = api_key_of(request)
    query = parse_query(request, models.ListQuery)
    limit, offset = query.limit, query.offset
    found, total = await platform.datasources.search(key, offset=offset, limit=limit)
    data = [await _datasource(platform.datasources, datasource) for datasource in found]
    return JSONResponse({"data": data, "total": total, "limit": limit, "offset": offset})


async def get_datasource(request: Request) -> JSONResponse:
    platform = platform_of(request)
    key = api_key_of(request)
    datasource = await platform.datasources.get(key, request.path_params["datasource_id"])
    body = await _datasource(platform.datasources, datasource)
    stats = await platform.datasources.page_stats(datasource.id)
    body["page_stats"] = {
        "total": stats.total,
        "synced": stats.synced,
        "pending": 0,
        "error": stats.error,
        "excluded": 0,
    }
    active = await platform.datasources.active_crawl(key, datasource.id)
    body["active_crawl_job"] = (
        {
            name: value
            for name, value in _crawl(active).items()
            if name not in ("datasource_id", "completed_at", "error_message", "created_at", "updated_at")
        }
        if active
        else None
    )
    return JSONResponse(body)


async def update_datasource(request: Request) -> JSONResponse:
    platform = platform_of(request)
    key = api_key_of(request)
    settings = _settings(await parse_body(request, models.DatasourceChange), url=None)
    datasource = await platform.datasources.update(key, request.path_params["datasource_id"], settings)
    return JSONResponse(await _datasource(platform.datasources, datasource))


async def delete_datasource(request: Request) -> Response:
    platform = platform_of(request)
    await platform.datasources.delete(api_key_of(request), request.path_params["datasource_id"])
    return JSONResponse({"success": True})


async def start_crawl(request: Request) -> JSONResponse:
    platform = platform_of(request)
    crawl = await platform.datasources.start_crawl(api_key_of(request), request.path_params["datasource_id"])
    return JSONResponse(_crawl(crawl), status_code=201)


async def list_crawls(request: Request) -> JSONResponse:
    platform = platform_of(request)
    crawls = await platform.datasources.crawls(api_key_of(request), request.path_params["datasource_id"])
    return JSONResponse({"data": [_crawl(crawl) for crawl in crawls], "total": len(crawls)})


async def get_crawl(request: Request) -> JSONResponse:
    platform = platform_of(request)
    params = request.path_params
    crawl = await platform.datasources.crawl(api_key_of(request), params["datasource_id"], params["crawl_id"])
    return JSONResponse(_crawl(crawl))


async def cancel_crawl(request: Request) -> JSONResponse:
    platform = platform_of(request)
    params = request.path_params
    crawl = await platform.datasources.cancel_crawl(
        api_key_of(request), params["datasource_id"], params["crawl_id"]
    )
    return JSONResponse(_crawl(crawl))


async def list_pages(request: Request) -> JSONResponse:
    """The pages of the latest finished crawl, with their change; ``?change=updated`` filters them,
    ``?content=true`` adds each page's markdown."""
    platform = platform_of(request)
    query = parse_query(request, models.PagesQuery)
    with_content = (query.content or "").lower() in ("1", "true", "yes")
    limit, offset = query.limit, query.offset
    pages, total = await platform.datasources.pages(
        api_key_of(request),
        request.path_params["datasource_id"],
        change=query.change,
        offset=offset,
        limit=limit,
    )
    data = [_page(page, with_content) for page in pages]
    return JSONResponse({"data": data, "total": total, "limit": limit, "offset": offset})


def _settings(body: models.DatasourceFields, *, url: str | None) -> DatasourceSettings:
    """What was given; absent stays None, and the service picks the default for a new datasource
    or keeps the current value on a change."""
    given = body.model_fields_set
    if "crawl_interval_hours" in given:
        # null: recrawled by hand only.
        interval: float | None = body.crawl_interval_hours or 0.0
    else:
        # Absent: open.cx's weekly default for a new datasource, unchanged for an existing one.
        interval = 168.0 if url is not None else None
    return DatasourceSettings(
        url=url,
        display_name=body.display_name,
        page_limit=body.page_limit,
        include_paths=tuple(body.include_paths or ()) if "include_paths" in given else None,
        exclude_paths=tuple(body.exclude_paths or ()) if "exclude_paths" in given else None,
        crawl_interval_hours=interval,
        status=body.status,
    )


async def _datasource(service: DatasourceService, datasource: Datasource) -> dict[str, Any]:
    last = await service.last_crawl(datasource)
    return {
        "id": datasource.id,
        "url": datasource.url,
        "display_name": datasource.display_name,
        "status": datasource.status.value,
        "page_limit": datasource.page_limit,
        "exclude_paths": datasource.exclude_paths,
        "include_paths": datasource.include_paths,
        "crawl_interval_hours": datasource.crawl_interval_hours,
        "next_crawl_at": timestamp(datasource.next_crawl_at)
        if datasource.status == DatasourceStatus.ACTIVE
        else None,
        "last_crawl_started_at": timestamp(last.started_at or last.created_at) if last else None,
        "last_crawl_completed_at": timestamp(last.completed_at) if last else None,
        "error_message": last.error_message if last else None,
        "created_at": timestamp(datasource.created_at),
        "updated_at": timestamp(datasource.updated_at),
    }


def _crawl(crawl: Crawl) -> dict[str, Any]:
    return {
        "id": crawl.id,
        "datasource_id": crawl.datasource_id,
        "status": crawl.status.value,
        "started_at": timestamp(crawl.started_at),
        "completed_at": timestamp(crawl.completed_at),
        "total_pages": crawl.total_pages,
        "completed_pages": crawl.completed_pages,
        "new_pages": crawl.counts.new,
        "updated_pages": crawl.counts.updated,
        "removed_pages": crawl.counts.removed,
        "unchanged_pages": crawl.counts.unchanged,
        "error_message": crawl.error_message,
        "created_at": timestamp(crawl.created_at),
        "updated_at": timestamp(crawl.updated_at),
    }


def _page(page: DatasourcePage, with_content: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "url": page.url,
        "title": page.title,
        "change": page.change.value,
        "status_code": page.status_code,
        "content_hash": page.content_hash,
        "error_message": page.error_message,
        "first_seen_at": timestamp(page.first_seen_at),
        "changed_at": timestamp(page.changed_at),
        "crawled_at": timestamp(page.crawled_at),
    }
    if with_content:
        body["markdown"] = page.record.get("markdown", "")
    return body


OPERATIONS = [
    Operation(
        "POST",
        "/crawl",
        create_datasource,
        OPENCX,
        "Add a website datasource (and crawl it)",
        body=models.NewDatasource,
        response=models.Datasource,
        status=201,
    ),
    Operation(
        "GET",
        "/crawl",
        list_datasources,
        OPENCX,
        "List the tenant's datasources",
        query=models.ListQuery,
        response=models.DatasourceList,
    ),
    Operation(
        "GET",
        "/crawl/{datasource_id}",
        get_datasource,
        OPENCX,
        "Read a datasource",
        response=models.DatasourceDetail,
    ),
    Operation(
        "PATCH",
        "/crawl/{datasource_id}",
        update_datasource,
        OPENCX,
        "Change a datasource",
        body=models.DatasourceChange,
        response=models.Datasource,
    ),
    Operation(
        "DELETE", "/crawl/{datasource_id}", delete_datasource, OPENCX, "Remove a datasource", response=Success
    ),
    Operation(
        "POST",
        "/crawl/{datasource_id}/crawls",
        start_crawl,
        OPENCX,
        "Start a recrawl now",
        response=models.Crawl,
        status=201,
    ),
    Operation(
        "GET",
        "/crawl/{datasource_id}/crawls",
        list_crawls,
        OPENCX,
        "List a datasource's crawls",
        response=models.CrawlList,
    ),
    Operation(
        "GET",
        "/crawl/{datasource_id}/crawls/{crawl_id}",
        get_crawl,
        OPENCX,
        "Read a crawl",
        response=models.Crawl,
    ),
    Operation(
        "DELETE",
        "/crawl/{datasource_id}/crawls/{crawl_id}",
        cancel_crawl,
        OPENCX,
        "Cancel a crawl",
        response=models.Crawl,
    ),
    Operation(
        "GET",
        "/crawl/{datasource_id}/pages",
        list_pages,
        OPENCX,
        "The pages of the latest crawl, with what changed",
        query=models.PagesQuery,
        response=models.PageList,
    ),
]
