"""ScrapeThis-style jobs and spiders: ``/api/v1/spiders`` and ``/api/v1/jobs``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from gateway.api import platform_of
from gateway.api.models import scrapethis as models
from gateway.api.models.common import Ok
from gateway.api.operations import SCRAPETHIS, Operation
from gateway.api.validation import parse_body, parse_query
from gateway.api.webhooks import webhook_target
from gateway.catalog.spiders import Spider
from gateway.clock import timestamp
from gateway.errors import NotFound
from gateway.http import api_key_of
from gateway.jobs.events import JOB_EVENTS
from gateway.jobs.models import Job
from gateway.nodes.scrapyd import iterate_body


async def list_spiders(request: Request) -> JSONResponse:
    platform = platform_of(request)
    query = parse_query(request, models.SpiderListQuery)
    spiders = await platform.catalog.search(query.name, query.limit)
    return JSONResponse([_spider(spider) for spider in spiders])


async def start_job(request: Request) -> JSONResponse:
    platform = platform_of(request)
    key = api_key_of(request)
    body = await parse_body(request, models.StartJobBody)
    spider = await platform.catalog.lookup(body.spider_id, body.spider_name, body.project)
    webhook = await webhook_target(request, body.webhook, known_events=JOB_EVENTS)
    job = await platform.jobs.start(key, spider, body.arguments or {}, webhook=webhook)
    return JSONResponse({"jobId": job.public_id, "status": job.status.value})


async def list_jobs(request: Request) -> JSONResponse:
    platform = platform_of(request)
    key = api_key_of(request)
    query = parse_query(request, models.JobListQuery)
    jobs = await platform.jobs.search(
        key, status=query.status, spider_id=query.spider_id, schedule_id=query.schedule_id, limit=query.limit
    )
    spiders = await _spiders_of(request, jobs)
    return JSONResponse([_job(job, spiders.get(job.spider_id), with_repo_path=True) for job in jobs])


async def get_job(request: Request) -> JSONResponse:
    platform = platform_of(request)
    job = await platform.jobs.get(api_key_of(request), request.path_params["job_id"])
    return JSONResponse(_job(job, None, with_repo_path=False))


async def cancel_job(request: Request) -> JSONResponse:
    platform = platform_of(request)
    await platform.jobs.cancel(api_key_of(request), request.path_params["job_id"])
    return JSONResponse({"ok": True, "message": "Job cancelled"})


async def job_items(request: Request) -> Response:
    """The job's items as JSON lines, ``limit`` from ``offset``; headers give the total and the next page."""
    platform = platform_of(request)
    query = parse_query(request, models.ItemsQuery)
    offset, limit = query.offset, query.limit
    page = await platform.jobs.item_page(api_key_of(request), request.path_params["job_id"], offset, limit)
    headers = {"X-Total-Count": str(page.total)}
    following = offset + len(page.items)
    if following < page.total:
        next_url = request.url.include_query_params(offset=following, limit=limit)
        headers["Link"] = f'<{next_url}>; rel="next"'
        headers["X-Next-Offset"] = str(following)
    body = "".join(f"{item}\n" for item in page.items)
    return Response(body, media_type="application/x-ndjson", headers=headers)


async def job_log(request: Request) -> StreamingResponse:
    platform = platform_of(request)
    response = await platform.jobs.open_log(api_key_of(request), request.path_params["job_id"])
    return StreamingResponse(iterate_body(response), media_type="text/plain; charset=utf-8")


async def _spiders_of(request: Request, jobs: list[Job]) -> dict[str, Spider]:
    platform = platform_of(request)
    spiders: dict[str, Spider] = {}
    for spider_id in {job.spider_id for job in jobs}:
        try:
            spiders[spider_id] = await platform.catalog.get(spider_id)
        except NotFound:
            continue
    return spiders


def _spider(spider: Spider) -> dict[str, Any]:
    return {
        "id": spider.id,
        "name": spider.name,
        "project": spider.project,
        "version": spider.version,
        "repo_path": spider.repo_path,
        "description": None,
        "settings": {},
        "created_at": timestamp(spider.created_at),
        "updated_at": timestamp(spider.updated_at),
    }


def _job(job: Job, spider: Spider | None, *, with_repo_path: bool) -> dict[str, Any]:
    nested: dict[str, Any] = {"id": job.spider_id, "name": job.spider_name}
    if with_repo_path:
        nested["repo_path"] = spider.repo_path if spider else None
    return {
        "id": job.public_id,
        "spider_id": job.spider_id,
        "status": job.status.value,
        "items_scraped": job.items_scraped,
        "user_id": job.tenant_id,
        "created_at": timestamp(job.created_at),
        "started_at": timestamp(job.started_at),
        "finished_at": timestamp(job.finished_at),
        "project": job.project,
        "arguments": job.public_arguments,
        "error": job.error,
        "schedule_id": job.schedule_id,
        "spider": nested,
    }


OPERATIONS = [
    Operation(
        "GET",
        "/api/v1/spiders",
        list_spiders,
        SCRAPETHIS,
        "List deployed spiders",
        query=models.SpiderListQuery,
        response=list[models.Spider],
    ),
    Operation(
        "GET",
        "/api/v1/jobs",
        list_jobs,
        SCRAPETHIS,
        "List the tenant's jobs, newest first",
        query=models.JobListQuery,
        response=list[models.Job],
    ),
    Operation(
        "POST",
        "/api/v1/jobs",
        start_job,
        SCRAPETHIS,
        "Start a job of a spider",
        body=models.StartJobBody,
        response=models.StartedJob,
    ),
    Operation("GET", "/api/v1/jobs/{job_id}", get_job, SCRAPETHIS, "Read a job", response=models.Job),
    Operation("DELETE", "/api/v1/jobs/{job_id}", cancel_job, SCRAPETHIS, "Cancel a job", response=Ok),
    Operation(
        "GET",
        "/api/v1/jobs/{job_id}/items",
        job_items,
        SCRAPETHIS,
        "A job's items as JSON lines (X-Total-Count, Link: next)",
        query=models.ItemsQuery,
        response_media="application/x-ndjson",
    ),
    Operation(
        "GET",
        "/api/v1/jobs/{job_id}/log",
        job_log,
        SCRAPETHIS,
        "A job's log, from its node",
        response_media="text/plain",
    ),
]
