"""Webhooks: as clients give them with their work, the signing secret, and the deliveries."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag

from gateway.api.models.common import Model
from gateway.api.models.fields import UNION_TAG, Body, Query
from gateway.webhooks.models import DeliveryStatus


class WebhookConfig(Body):
    """Where a resource's events go: Firecrawl's shape, which every dialect takes."""

    url: str = Field(description="http(s) URL the events are POSTed to")
    headers: dict[str, str] | None = Field(None, description="Sent with every event as given")
    metadata: dict[str, Any] | None = Field(None, description="Sent back in every event's body")
    events: list[str] | None = Field(None, description="The events wanted (default: all)")


def _webhook_form(value: Any) -> str:
    return f"{UNION_TAG}url" if isinstance(value, str) else f"{UNION_TAG}object"


# A URL alone, or the whole configuration; told apart first, so a 400 names what is wrong in the
# form given (not "must be a string" for an object with a bad header).
Webhook = Annotated[
    Annotated[str, Tag(f"{UNION_TAG}url")] | Annotated[WebhookConfig, Tag(f"{UNION_TAG}object")],
    Discriminator(_webhook_form),
    Field(description="A URL, or {url, headers, metadata, events}"),
]


class WebhookSecret(Model):
    secret: str = Field(description="Signs every webhook: sha256=HMAC-SHA256(secret, body) in hex")


class DeliveryQuery(Query):
    resource_id: str | None = Field(None, description="Only the events of this job, batch or crawl")
    status: DeliveryStatus | None = None
    offset: int = Field(0, ge=0, le=1_000_000_000)
    limit: int = Field(100, ge=1, le=1000)


class Delivery(Model):
    id: str = Field(description="The event's webhookId")
    type: str
    resource_id: str
    url: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None
    delivered_at: str | None
    created_at: str | None
