"""The gateway application: every dialect's operations, mounted, and documented at /openapi.json."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from gateway.api import (
    firecrawl,
    firecrawl_account,
    firecrawl_map,
    firecrawl_scrape,
    geonode,
    health,
    internal,
    openapi,
    opencx,
    prometheus,
    schedules,
    scrapeless,
    scrapethis,
    scrapyd_compat,
    screenshots,
    webhooks,
)
from gateway.api.operations import Operation
from gateway.errors import GatewayError
from gateway.http import (
    ApiKeyMiddleware,
    CleanPathMiddleware,
    on_gateway_error,
    on_http_exception,
    on_unexpected_error,
)
from gateway.metrics import MetricsMiddleware
from gateway.platform import Platform

DIALECTS = (
    health,
    scrapethis,
    schedules,
    geonode,
    firecrawl_account,
    firecrawl_scrape,
    firecrawl_map,
    firecrawl,
    scrapeless,
    opencx,
    screenshots,
    webhooks,
    scrapyd_compat,
)
OPERATIONS: list[Operation] = [operation for dialect in DIALECTS for operation in dialect.OPERATIONS]
DOCUMENTED = OPERATIONS + openapi.OPERATIONS


def create_app(platform: Platform) -> Starlette:
    routes = [operation.route() for operation in DOCUMENTED]
    # The platform's own spiders (a per-batch token, no API key); not a public API.
    routes.append(Route("/internal/batches/{batch_id}/inputs", internal.batch_inputs, methods=["GET"]))
    # An operator's Prometheus: its own credentials (prometheus.py), off the tenants' rate limits.
    routes.append(Route(prometheus.METRICS_PATH, prometheus.metrics, methods=["GET"]))
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(CleanPathMiddleware),
            Middleware(MetricsMiddleware, routes=routes),
            Middleware(
                ApiKeyMiddleware,
                keys=platform.keys,
                limiter=platform.limiter,
                default_rate_per_minute=platform.settings.rate_limit_per_minute,
                public_paths=[
                    *(operation.path for operation in DOCUMENTED if operation.public),
                    prometheus.METRICS_PATH,
                ],
                public_prefixes=(internal.INTERNAL_PREFIX,),
                unlimited_prefixes=(internal.INTERNAL_PREFIX, prometheus.METRICS_PATH),
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
    app.state.openapi = api_document()
    return app


def api_document() -> dict[str, Any]:
    """The OpenAPI document of every documented operation."""
    return openapi.openapi_document(DOCUMENTED, title="Spider platform", version=_version())


def _version() -> str:
    try:
        return version("spider-platform")
    except PackageNotFoundError:
        return "0"
