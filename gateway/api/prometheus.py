"""``GET /metrics``: the gateway's Prometheus metrics, for an operator's token or an admin key.

Outside the API keys' middleware and its rate limits, as a scraper calls it every few seconds; not
in the OpenAPI document, which describes the tenants' API. Besides what ``gateway.metrics`` counts,
a scrape reads (at most every 10 s, off the event loop) jobs by status and spider, batch pages by
status, webhook events by status, and each node's state.
"""

from __future__ import annotations

import hmac
import time

from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import Response

from gateway.api import platform_of
from gateway.errors import Forbidden, Unauthorized
from gateway.http import presented_key
from gateway.metrics import CONTENT_TYPE, FEEDS, exposition
from gateway.platform import Platform

METRICS_PATH = "/metrics"


# The store's counts go through whole tables: they are read at most this often, whoever scrapes.
STATE_SECONDS = 10.0
_read: dict[int, tuple[float, list[Metric]]] = {}


async def metrics(request: Request) -> Response:
    platform = platform_of(request)
    await _authorise(platform, presented_key(request.headers))
    read_at, state = _read.get(id(platform), (0.0, []))
    if time.monotonic() - read_at >= STATE_SECONDS:
        state = await _state(platform)
        _read[id(platform)] = (time.monotonic(), state)
    return Response(exposition(state), media_type=CONTENT_TYPE)


async def _authorise(platform: Platform, presented: str | None) -> None:
    if presented is None:
        raise Unauthorized(
            "Missing credentials: send the metrics token or an admin API key as 'Authorization: Bearer ...'."
        )
    token = platform.settings.metrics_token
    if token is not None and hmac.compare_digest(presented.encode(), token.encode()):
        return
    key = await platform.keys.authenticate(presented)
    if key is None:
        raise Unauthorized("Invalid metrics token or API key.")
    if not key.is_admin:
        raise Forbidden("Only admin API keys (or the metrics token) may read the metrics.")


async def _state(platform: Platform) -> list[Metric]:
    jobs = GaugeMetricFamily("gateway_jobs", "Jobs kept, by status and spider.", labels=["status", "spider"])
    for status, spider, count in await platform.jobs.census():
        jobs.add_metric([status, spider], count)
    pages = GaugeMetricFamily(
        "gateway_batch_pages", "Pages of the batches and crawls kept, by status.", labels=["status"]
    )
    for status, count in await platform.batches.census():
        pages.add_metric([status], count)
    events = GaugeMetricFamily(
        "gateway_webhook_events", "Webhook events in the outbox, by status.", labels=["status"]
    )
    for status, count in await platform.webhooks.census():
        events.add_metric([status], count)
    up = GaugeMetricFamily("gateway_node_up", "Whether the scrapyd node answers.", labels=["node"])
    node_jobs = GaugeMetricFamily(
        "gateway_node_jobs", "Jobs on the scrapyd node, as it reports them.", labels=["node", "state"]
    )
    for node in await platform.nodes.health():
        up.add_metric([node.name], 1.0 if node.ok else 0.0)
        node_jobs.add_metric([node.name, "pending"], node.pending)
        node_jobs.add_metric([node.name, "running"], node.running)
    lag = GaugeMetricFamily(
        "gateway_feed_ingestion_lag_seconds",
        "The longest any job whose feed is being read has gone since it was last read to its end.",
        value=FEEDS.lag_seconds(),
    )
    return [jobs, pages, events, up, node_jobs, lag]
