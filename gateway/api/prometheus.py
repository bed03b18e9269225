"""``GET /metrics``: the gateway's Prometheus metrics, for an operator's token or an admin key.

Outside the API keys' middleware and its rate limits, as a scraper calls it every few seconds; not
in the OpenAPI document, which describes the tenants' API. Besides what ``gateway.metrics`` counts,
each scrape reads jobs by status and spider, batch pages by status, webhook events by status, and
each node's state.
"""

from __future__ import annotations

import hmac

from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import Response

from gateway.api import platform_of
from gateway.errors import Forbidden, Unauthorized
from gateway.http import presented_key
from gateway.metrics import CONTENT_TYPE, FEEDS, exposition
from gateway.platform import Platform

METRICS_PATH = "/metrics"


async def metrics(request: Request) -> Response:
    platform = platform_of(request)
    await _authorise(platform, presented_key(request.headers))
    return Response(exposition(await _state(platform)), media_type=CONTENT_TYPE)


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
