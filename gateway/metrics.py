"""Prometheus metrics (prometheus_client): what the gateway counts as it works.

Counted as it happens: HTTP requests by route template, method and status, with their latency;
items and page records ingested from feeds, and how long ago each job's feed was last read to its
end; each background loop's passes and failures; webhook delivery attempts by outcome. What the
store and the nodes hold is read when ``GET /metrics`` is scraped (``gateway.api.prometheus``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

HTTP_REQUESTS = Counter(
    "gateway_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "gateway_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template and method.",
    ["route", "method"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
ITEMS_INGESTED = Counter("gateway_items_ingested", "Items of item jobs' feeds stored.", registry=REGISTRY)
PAGE_RECORDS_INGESTED = Counter(
    "gateway_page_records_ingested",
    "Page records of batches, scrapes and crawls stored from their spiders' feeds.",
    registry=REGISTRY,
)
LOOP_DURATION = Histogram(
    "gateway_loop_duration_seconds",
    "Duration of one pass of a background loop (job sync, batch progress, scheduler, ...).",
    ["loop"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
LOOP_FAILURES = Counter(
    "gateway_loop_failures", "Passes of a background loop that failed.", ["loop"], registry=REGISTRY
)
WEBHOOK_ATTEMPTS = Counter(
    "gateway_webhook_delivery_attempts",
    "Webhook delivery attempts, by outcome: delivered, retry (to be tried again) or failed (for good).",
    ["outcome"],
    registry=REGISTRY,
)

# Requests no route matched share one label: a path is the caller's to choose.
UNMATCHED = "unmatched"


class FeedProgress:
    """When each job whose feed is being read was last read to its end (monotonic seconds)."""

    # A job whose feed nobody has asked for this long has ended: it is forgotten.
    FORGET_AFTER_SECONDS = 30.0

    def __init__(self) -> None:
        self._read_at: dict[str, float] = {}
        self._caught_up: dict[str, float] = {}

    def reading(self, job_id: str) -> None:
        now = time.monotonic()
        if job_id not in self._read_at:
            self._forget_ended(now)
        self._read_at[job_id] = now
        self._caught_up.setdefault(job_id, now)

    def caught_up(self, job_id: str) -> None:
        self._caught_up[job_id] = time.monotonic()

    def lag_seconds(self) -> float:
        """The longest any job still being read has gone since its feed was last read to its end."""
        now = time.monotonic()
        self._forget_ended(now)
        return max((now - self._caught_up[job_id] for job_id in self._read_at), default=0.0)

    def _forget_ended(self, now: float) -> None:
        ended = [job_id for job_id, at in self._read_at.items() if now - at > self.FORGET_AFTER_SECONDS]
        for job_id in ended:
            del self._read_at[job_id]
            self._caught_up.pop(job_id, None)


FEEDS = FeedProgress()

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Counts every HTTP answer under its route's template (``/v2/batch/scrape/{batch_id}``), the
    one its path matches even when it was refused before routing (401, 429)."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = list(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            # The method is the caller's to spell: only the standard ones get a label of their own.
            method = str(scope["method"]) if scope["method"] in _METHODS else "other"
            route = self._template(scope)
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_LATENCY.labels(route, method).observe(time.perf_counter() - started)

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            route = next((each for each in self.routes if each.matches(scope)[0] != Match.NONE), None)
        return str(getattr(route, "path", UNMATCHED)) if route is not None else UNMATCHED


def exposition(state: list[Metric]) -> bytes:
    """Every metric counted here, and ``state`` (gauges read just now), in the text format."""
    now = CollectorRegistry(auto_describe=False)
    now.register(_Families(state))
    return generate_latest(REGISTRY) + generate_latest(now)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families
