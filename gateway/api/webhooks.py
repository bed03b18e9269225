"""Webhooks: a tenant's signing secret (``/api/v1/webhooks/secret``) and its deliveries
(``/api/v1/webhooks/deliveries``), and the webhook every dialect's start call takes."""

from __future__ import annotations

from collections.abc import Collection

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api import platform_of
from gateway.api.models import webhooks as models
from gateway.api.operations import WEBHOOKS, Operation
from gateway.api.validation import parse_query
from gateway.clock import timestamp
from gateway.http import api_key_of
from gateway.webhooks.models import Delivery, Dialect, WebhookTarget


async def webhook_target(
    request: Request,
    webhook: str | models.WebhookConfig | None,
    *,
    known_events: Collection[str],
    dialect: Dialect = Dialect.PLATFORM,
    default_events: Collection[str] | None = None,
) -> WebhookTarget | None:
    """The webhook a start call gave, checked (a 400 names what is wrong), or None. Without
    ``events``, it is sent ``default_events`` (default: every known one)."""
    if webhook is None:
        return None
    if isinstance(webhook, str):
        webhook = models.WebhookConfig(url=webhook)
    return await platform_of(request).webhooks.screen(
        webhook.url,
        tenant_id=api_key_of(request).tenant_id,
        headers=webhook.headers,
        metadata=webhook.metadata,
        events=default_events if webhook.events is None else webhook.events,
        known_events=known_events,
        dialect=dialect,
    )


async def get_secret(request: Request) -> JSONResponse:
    platform = platform_of(request)
    return JSONResponse({"secret": await platform.webhooks.secrets.of(api_key_of(request).tenant_id)})


async def rotate_secret(request: Request) -> JSONResponse:
    platform = platform_of(request)
    return JSONResponse({"secret": await platform.webhooks.secrets.rotate(api_key_of(request).tenant_id)})


async def list_deliveries(request: Request) -> JSONResponse:
    platform = platform_of(request)
    query = parse_query(request, models.DeliveryQuery)
    found = await platform.webhooks.deliveries(
        api_key_of(request).tenant_id,
        resource_id=query.resource_id,
        status=query.status,
        offset=query.offset,
        limit=query.limit,
    )
    return JSONResponse([_delivery(delivery) for delivery in found])


async def retry_delivery(request: Request) -> JSONResponse:
    platform = platform_of(request)
    delivery = await platform.webhooks.retry(
        api_key_of(request).tenant_id, request.path_params["delivery_id"]
    )
    return JSONResponse(_delivery(delivery))


def _delivery(delivery: Delivery) -> dict[str, object]:
    return {
        "id": delivery.id,
        "type": delivery.type,
        "resource_id": delivery.resource_id,
        "url": delivery.url,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "next_attempt_at": timestamp(delivery.next_attempt_at),
        "delivered_at": timestamp(delivery.delivered_at),
        "created_at": timestamp(delivery.created_at),
    }


OPERATIONS = [
    Operation(
        "GET",
        "/api/v1/webhooks/secret",
        get_secret,
        WEBHOOKS,
        "The secret your webhooks are signed with (made on first use)",
        response=models.WebhookSecret,
    ),
    Operation(
        "POST",
        "/api/v1/webhooks/secret",
        rotate_secret,
        WEBHOOKS,
        "Rotate the webhook signing secret",
        response=models.WebhookSecret,
    ),
    Operation(
        "GET",
        "/api/v1/webhooks/deliveries",
        list_deliveries,
        WEBHOOKS,
        "Webhook events and how their delivery went",
        query=models.DeliveryQuery,
        response=list[models.Delivery],
    ),
    Operation(
        "POST",
        "/api/v1/webhooks/deliveries/{delivery_id}/retry",
        retry_delivery,
        WEBHOOKS,
        "Deliver an event again",
        response=models.Delivery,
    ),
]
