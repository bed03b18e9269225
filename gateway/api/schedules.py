"""Cron schedules: ``/api/v1/schedules``, beside the ScrapeThis-style jobs they start."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api import platform_of
from gateway.api.models import schedules as models
from gateway.api.models.common import Ok
from gateway.api.models.firecrawl import BatchScrapeBody
from gateway.api.operations import SCHEDULES, Operation
from gateway.api.page_documents import ignores_invalid, scrape_options
from gateway.api.validation import parse
from gateway.api.webhooks import webhook_target
from gateway.clock import timestamp
from gateway.errors import BadRequest
from gateway.http import api_key_of, json_object
from gateway.platform import Platform
from gateway.schedules.events import DEFAULT_EVENTS, KNOWN_EVENTS
from gateway.schedules.models import (
    BatchRequest,
    Schedule,
    ScheduleRun,
    ScheduleSpec,
)
from gateway.webhooks.models import WebhookTarget


async def create_schedule(request: Request) -> JSONResponse:
    platform = platform_of(request)
    key = api_key_of(request)
    schedule = await platform.schedules.create(key, await schedule_spec(request, await json_object(request)))
    return JSONResponse(await _schedule(platform, schedule), status_code=201)


async def list_schedules(request: Request) -> JSONResponse:
    platform = platform_of(request)
    found = await platform.schedules.search(api_key_of(request).tenant_id)
    return JSONResponse([await _schedule(platform, schedule) for schedule in found])


async def get_schedule(request: Request) -> JSONResponse:
    platform = platform_of(request)
    schedule = await platform.schedules.get(api_key_of(request), request.path_params["schedule_id"])
    return JSONResponse(await _schedule(platform, schedule))


async def update_schedule(request: Request) -> JSONResponse:
    platform = platform_of(request)
    spec = await schedule_spec(request, await json_object(request))
    schedule = await platform.schedules.update(api_key_of(request), request.path_params["schedule_id"], spec)
    return JSONResponse(await _schedule(platform, schedule))


async def delete_schedule(request: Request) -> JSONResponse:
    platform = platform_of(request)
    await platform.schedules.delete(api_key_of(request), request.path_params["schedule_id"])
    return JSONResponse({"ok": True, "message": "Schedule deleted"})


async def run_schedule(request: Request) -> JSONResponse:
    platform = platform_of(request)
    run = await platform.schedules.run_now(api_key_of(request), request.path_params["schedule_id"])
    return JSONResponse(schedule_run(run), status_code=201)


async def schedule_spec(request: Request, data: dict[str, Any]) -> ScheduleSpec:
    """A schedule (or the changes to one) from a request body; anything malformed is a 400."""
    body = parse(models.ScheduleBody, data)
    return ScheduleSpec(
        # Without events named, told of the runs that failed or were skipped.
        webhook=await webhook_target(
            request, body.webhook, known_events=KNOWN_EVENTS, default_events=DEFAULT_EVENTS
        ),
        remove_webhook="webhook" in data and data["webhook"] is None,
        name=body.name,
        cron=body.cron,
        timezone=body.timezone,
        spider_id=body.spider_id or None,
        spider_name=body.spider_name or None,
        project=body.project or None,
        arguments=body.arguments,
        batch=_batch_request(body.batch, data["batch"]) if body.batch is not None else None,
        datasource_id=body.datasource_id or None,
        enabled=body.enabled,
        overlap=body.overlap,
    )


def batch_request(given: Any) -> BatchRequest:
    """A schedule's batch target alone (as the command line reads it from a file)."""
    body = parse(models.ScheduleBody, {"batch": given})
    if body.batch is None:
        raise BadRequest("batch: a Firecrawl v2 batch scrape request, as a JSON object")
    return _batch_request(body.batch, given)


def _batch_request(batch: BatchScrapeBody, given: dict[str, Any]) -> BatchRequest:
    """A batch target, read as a Firecrawl v2 batch scrape request (its results are read there)."""
    if batch.webhook is not None:
        raise BadRequest(
            "batch.webhook: give the schedule a webhook instead, naming the batch_scrape.<event> "
            "events of its runs' batches"
        )
    options, proxy = scrape_options(batch)
    return BatchRequest(
        urls=batch.urls, options=options, proxy=proxy, ignore_invalid=ignores_invalid(batch), body=given
    )


async def _schedule(platform: Platform, schedule: Schedule) -> dict[str, Any]:
    runs = await platform.schedules.recent_runs(schedule.id)
    webhook = await platform.schedules.webhook(schedule)
    return {
        "id": schedule.id,
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "description": schedule.times.describe(),
        "enabled": schedule.enabled,
        "disabled_reason": schedule.disabled_reason,
        "overlap": schedule.overlap.value,
        "target": schedule.target.value,
        "spider_id": schedule.spider_id,
        "spider_name": schedule.spider_name,
        "project": schedule.project,
        "arguments": schedule.arguments,
        "batch": schedule.batch.body if schedule.batch else None,
        "datasource_id": schedule.datasource_id,
        "next_run_at": timestamp(schedule.next_run_at),
        "last_run_at": timestamp(schedule.last_run_at),
        "created_at": timestamp(schedule.created_at),
        "updated_at": timestamp(schedule.updated_at),
        "webhook": _shown_webhook(webhook),
        "last_runs": [schedule_run(run) for run in runs],
    }


def _shown_webhook(webhook: WebhookTarget | None) -> dict[str, Any] | None:
    # Header values often hold the receiver's credentials: shown by name only.
    if webhook is None:
        return None
    return {
        "url": webhook.url,
        "events": sorted(webhook.events or ()),
        "metadata": dict(webhook.metadata),
        "header_names": sorted(webhook.headers),
    }


def schedule_run(run: ScheduleRun) -> dict[str, Any]:
    return run.to_json()


OPERATIONS = [
    Operation(
        "POST",
        "/api/v1/schedules",
        create_schedule,
        SCHEDULES,
        "Create a schedule",
        body=models.ScheduleBody,
        response=models.Schedule,
        status=201,
    ),
    Operation(
        "GET",
        "/api/v1/schedules",
        list_schedules,
        SCHEDULES,
        "List the tenant's schedules",
        response=list[models.Schedule],
    ),
    Operation(
        "GET",
        "/api/v1/schedules/{schedule_id}",
        get_schedule,
        SCHEDULES,
        "Read a schedule",
        response=models.Schedule,
    ),
    Operation(
        "PATCH",
        "/api/v1/schedules/{schedule_id}",
        update_schedule,
        SCHEDULES,
        "Change a schedule",
        body=models.ScheduleBody,
        response=models.Schedule,
    ),
    Operation(
        "DELETE",
        "/api/v1/schedules/{schedule_id}",
        delete_schedule,
        SCHEDULES,
        "Delete a schedule",
        response=Ok,
    ),
    Operation(
        "POST",
        "/api/v1/schedules/{schedule_id}/run",
        run_schedule,
        SCHEDULES,
        "Run a schedule now",
        response=models.ScheduleRun,
        status=201,
    ),
]
