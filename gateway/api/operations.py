"""Each dialect's routes as operations: the handler, and the models that describe what it takes and
answers. ``app.py`` mounts them; ``gateway.api.openapi`` documents them from the same list.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.models.common import ErrorBody, FirecrawlErrorBody, ScrapydErrorBody

Endpoint = Callable[[Request], Awaitable[Response]]
# What a client can get wrong, or meet, on any route that needs a key: the dialect's error shape.
KEY_ERRORS = (400, 401, 402, 403, 404, 409, 429, 500, 503)
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
_PATH_PARAMETER = re.compile(r"{([a-z_]+)}")


@dataclass(frozen=True)
class Dialect:
    """A public API the gateway speaks, and the shape of its errors."""

    name: str
    description: str
    error: type[BaseModel] = ErrorBody


SCRAPETHIS = Dialect("jobs", "ScrapeThis-style spiders and jobs")
SCHEDULES = Dialect("schedules", "Cron schedules of jobs, batches and recrawls")
GEONODE = Dialect("geonode", "Geonode batch scrapes")
FIRECRAWL = Dialect(
    "firecrawl", "Firecrawl v2 scrapes, batch scrapes, crawls and account calls", error=FirecrawlErrorBody
)
SCRAPELESS = Dialect("scrapeless", "Scrapeless batch scrapes")
WEBHOOKS = Dialect("webhooks", "Signed webhooks: the signing secret and the deliveries")
OPENCX = Dialect("opencx", "open.cx-style website datasources and their recrawls")
SCRAPYD = Dialect("scrapyd", "scrapyd's JSON API, at the host root", error=ScrapydErrorBody)
PLATFORM = Dialect("platform", "The platform's own: health, screenshots, this document")


@dataclass(frozen=True)
class Operation:
    """One route: method, path, handler, and what it takes and answers."""

    method: str
    path: str
    endpoint: Endpoint
    dialect: Dialect
    summary: str
    # The body's model and media types (a scrapyd form is also taken as a query string).
    body: type[BaseModel] | None = None
    body_media: tuple[str, ...] = (JSON,)
    body_required: bool = True
    query: type[BaseModel] | None = None
    # The success answer: a model (or a list of one), or a media type with a plain string body.
    response: Any = None
    response_media: str = JSON
    status: int = 200
    # Further answers that are not errors (healthz's 503 "degraded"), by status.
    other_responses: dict[int, Any] = field(default_factory=dict)
    errors: tuple[int, ...] = KEY_ERRORS
    public: bool = False
    headers: tuple[str, ...] = ()
    # Path parameters that are not any string (one that another route takes as its own path).
    path_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The error shape, when not the dialect's (scrapyd's log and item files answer like any file).
    error: type[BaseModel] | None = None

    def route(self) -> Route:
        return Route(self.path, self.endpoint, methods=[self.method])

    @property
    def path_parameters(self) -> list[str]:
        return _PATH_PARAMETER.findall(self.path)

    @property
    def error_model(self) -> type[BaseModel]:
        return self.error or self.dialect.error

    @property
    def operation_id(self) -> str:
        return f"{self.dialect.name}_{getattr(self.endpoint, '__name__', 'call')}"
