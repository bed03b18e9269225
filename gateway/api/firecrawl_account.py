"""Firecrawl v2's account calls: credits, the queue, concurrency, and the crawls under way.

A Firecrawl team is a tenant here: its queue is its spider processes (a batch's included), its
concurrency their share of the nodes (``max_jobs_per_tenant``), its credits the calling key's.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api import platform_of
from gateway.api.firecrawl import crawl_options
from gateway.api.models import firecrawl as models
from gateway.api.operations import FIRECRAWL, Operation
from gateway.clock import timestamp
from gateway.http import api_key_of


async def credit_usage(request: Request) -> JSONResponse:
    key = api_key_of(request)
    left = key.credits_left
    data = {
        "remainingCredits": models.UNLIMITED_CREDITS if left is None else left,
        "planCredits": key.credits_limit,
        # Credits are a key's until an operator changes them: no billing periods.
        "billingPeriodStart": None,
        "billingPeriodEnd": None,
    }
    return JSONResponse({"success": True, "data": data})


async def queue_status(request: Request) -> JSONResponse:
    platform = platform_of(request)
    queue = await platform.jobs.queue(api_key_of(request).tenant_id)
    return JSONResponse(
        {
            "success": True,
            "jobsInQueue": queue.running + queue.waiting,
            "activeJobsInQueue": queue.running,
            "waitingJobsInQueue": queue.waiting,
            "maxConcurrency": platform.settings.max_jobs_per_tenant,
            "mostRecentSuccess": timestamp(queue.last_finished_at),
        }
    )


async def concurrency_check(request: Request) -> JSONResponse:
    platform = platform_of(request)
    queue = await platform.jobs.queue(api_key_of(request).tenant_id)
    return JSONResponse(
        {
            "success": True,
            "concurrency": queue.running,
            "maxConcurrency": platform.settings.max_jobs_per_tenant,
        }
    )


async def ongoing_crawls(request: Request) -> JSONResponse:
    platform = platform_of(request)
    key = api_key_of(request)
    crawls = [
        {
            "id": batch.id,
            "teamId": batch.tenant_id,
            "url": batch.crawl.url,
            "created_at": timestamp(batch.created_at),
            "options": crawl_options(batch.crawl),
        }
        for batch in await platform.batches.ongoing_crawls(key, "firecrawl")
        if batch.crawl is not None
    ]
    return JSONResponse({"success": True, "crawls": crawls})


async def active_crawls(request: Request) -> JSONResponse:
    """The same list, under the name firecrawl-py asks for."""
    return await ongoing_crawls(request)


# Before the firecrawl module's routes: /v2/crawl/{batch_id} would take "ongoing" for an id.
OPERATIONS = [
    Operation(
        "GET",
        "/v2/team/credit-usage",
        credit_usage,
        FIRECRAWL,
        "The calling key's credits",
        response=models.CreditUsage,
    ),
    Operation(
        "GET",
        "/v2/team/queue-status",
        queue_status,
        FIRECRAWL,
        "The tenant's spider processes running and waiting",
        response=models.QueueStatus,
    ),
    Operation(
        "GET",
        "/v2/concurrency-check",
        concurrency_check,
        FIRECRAWL,
        "The tenant's spider processes running, and how many it may run at once",
        response=models.ConcurrencyCheck,
    ),
    Operation(
        "GET",
        "/v2/crawl/ongoing",
        ongoing_crawls,
        FIRECRAWL,
        "The tenant's crawls queued or running",
        response=models.OngoingCrawls,
    ),
    Operation(
        "GET",
        "/v2/crawl/active",
        active_crawls,
        FIRECRAWL,
        "The tenant's crawls queued or running (the name firecrawl-py calls)",
        response=models.OngoingCrawls,
    ),
]
