"""The gateway application: every route of every API dialect, in one list."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from gateway.api import (
    firecrawl,
    geonode,
    health,
    internal,
    opencx,
    schedules,
    scrapeless,
    scrapethis,
    scrapyd_compat,
    screenshots,
)
from gateway.errors import GatewayError
from gateway.http import (
    ApiKeyMiddleware,
    CleanPathMiddleware,
    on_gateway_error,
    on_http_exception,
    on_unexpected_error,
)
from gateway.platform import Platform

PUBLIC_PATHS = ("/healthz",)


def create_app(platform: Platform) -> Starlette:
    routes = [
        Route("/healthz", health.healthz, methods=["GET"]),
        # Jobs and spiders (ScrapeThis)
        Route("/api/v1/spiders", scrapethis.list_spiders, methods=["GET"]),
        Route("/api/v1/jobs", scrapethis.list_jobs, methods=["GET"]),
        Route("/api/v1/jobs", scrapethis.start_job, methods=["POST"]),
        Route("/api/v1/jobs/{job_id}", scrapethis.get_job, methods=["GET"]),
        Route("/api/v1/jobs/{job_id}", scrapethis.cancel_job, methods=["DELETE"]),
        Route("/api/v1/jobs/{job_id}/items", scrapethis.job_items, methods=["GET"]),
        Route("/api/v1/jobs/{job_id}/log", scrapethis.job_log, methods=["GET"]),
        # Cron schedules of jobs, batches and recrawls
        Route("/api/v1/schedules", schedules.create_schedule, methods=["POST"]),
        Route("/api/v1/schedules", schedules.list_schedules, methods=["GET"]),
        Route("/api/v1/schedules/{schedule_id}", schedules.get_schedule, methods=["GET"]),
        Route("/api/v1/schedules/{schedule_id}", schedules.update_schedule, methods=["PATCH"]),
        Route("/api/v1/schedules/{schedule_id}", schedules.delete_schedule, methods=["DELETE"]),
        Route("/api/v1/schedules/{schedule_id}/run", schedules.run_schedule, methods=["POST"]),
        # Batch scrapes (Geonode)
        Route("/v1/batch", geonode.start_batch, methods=["POST"]),
        Route("/v1/batch/jobs", geonode.list_batches, methods=["GET"]),
        Route("/v1/batch/{job_id}", geonode.batch_status, methods=["GET"]),
        Route("/v1/batch/{job_id}", geonode.cancel_batch, methods=["DELETE"]),
        # Batch scrapes (Firecrawl v2)
        Route("/v2/batch/scrape", firecrawl.start_batch, methods=["POST"]),
        Route("/v2/batch/scrape/{batch_id}", firecrawl.batch_status, methods=["GET"]),
        Route("/v2/batch/scrape/{batch_id}", firecrawl.cancel_batch, methods=["DELETE"]),
        Route("/v2/batch/scrape/{batch_id}/errors", firecrawl.batch_errors, methods=["GET"]),
        # Site crawls (Firecrawl v2)
        Route("/v2/crawl", firecrawl.start_crawl, methods=["POST"]),
        Route("/v2/crawl/{batch_id}", firecrawl.crawl_status, methods=["GET"]),
        Route("/v2/crawl/{batch_id}", firecrawl.cancel_crawl, methods=["DELETE"]),
        Route("/v2/crawl/{batch_id}/errors", firecrawl.crawl_errors, methods=["GET"]),
        # Batch scrapes (Scrapeless)
        Route("/api/v1/crawler/scrape/batch", scrapeless.start_batch, methods=["POST"]),
        Route("/api/v1/crawler/scrape/batch/{batch_id}", scrapeless.batch_status, methods=["GET"]),
        # Website datasources and their recrawls (open.cx)
        Route("/crawl", opencx.create_datasource, methods=["POST"]),
        Route("/crawl", opencx.list_datasources, methods=["GET"]),
        Route("/crawl/{datasource_id}", opencx.get_datasource, methods=["GET"]),
        Route("/crawl/{datasource_id}", opencx.update_datasource, methods=["PATCH"]),
        Route("/crawl/{datasource_id}", opencx.delete_datasource, methods=["DELETE"]),
        Route("/crawl/{datasource_id}/crawls", opencx.start_crawl, methods=["POST"]),
        Route("/crawl/{datasource_id}/crawls", opencx.list_crawls, methods=["GET"]),
        Route("/crawl/{datasource_id}/crawls/{crawl_id}", opencx.get_crawl, methods=["GET"]),
        Route("/crawl/{datasource_id}/crawls/{crawl_id}", opencx.cancel_crawl, methods=["DELETE"]),
        Route("/crawl/{datasource_id}/pages", opencx.list_pages, methods=["GET"]),
        # Screenshots of rendered batch pages, for every dialect
        Route("/screenshots/{batch_id}/{file_name}", screenshots.page_screenshot, methods=["GET"]),
        # Deploy and run (scrapyd-compatible, at the host root)
        Route("/daemonstatus.json", scrapyd_compat.daemon_status, methods=["GET"]),
        Route("/addversion.json", scrapyd_compat.add_version, methods=["POST"]),
        Route("/listprojects.json", scrapyd_compat.list_projects, methods=["GET"]),
        Route("/listversions.json", scrapyd_compat.list_versions, methods=["GET"]),
        Route("/listspiders.json", scrapyd_compat.list_spiders, methods=["GET"]),
        Route("/delversion.json", scrapyd_compat.delete_version, methods=["POST"]),
        Route("/delproject.json", scrapyd_compat.delete_project, methods=["POST"]),
        Route("/schedule.json", scrapyd_compat.schedule, methods=["POST"]),
        Route("/cancel.json", scrapyd_compat.cancel, methods=["POST"]),
        Route("/listjobs.json", scrapyd_compat.list_jobs, methods=["GET"]),
        Route("/status.json", scrapyd_compat.job_status, methods=["GET"]),
        Route("/logs/{project}/{spider}/{file_name}", scrapyd_compat.job_log, methods=["GET"]),
        Route("/items/{project}/{spider}/{file_name}", scrapyd_compat.job_items, methods=["GET"]),
        # The platform's own spiders (a per-batch token, no API key)
        Route("/internal/batches/{batch_id}/inputs", internal.batch_inputs, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(CleanPathMiddleware),
            Middleware(
                ApiKeyMiddleware,
                keys=platform.keys,
                limiter=platform.limiter,
                default_rate_per_minute=platform.settings.rate_limit_per_minute,
                public_paths=PUBLIC_PATHS,
                public_prefixes=(internal.INTERNAL_PREFIX,),
                unlimited_prefixes=(internal.INTERNAL_PREFIX,),
            ),
        ],
        exception_handlers={
            GatewayError: on_gateway_error,
            HTTPException: on_http_exception,
            Exception: on_unexpected_error,
        },
        lifespan=platform.lifespan,
    )
    app.state.platform = platform
    return app
