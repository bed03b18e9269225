"""What a client asks for when it gives a webhook, and what the outbox knows of each delivery."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

# A resource's last event; ``cancelled`` also reaches clients that asked for how it ends in other
# words (Firecrawl's SDK can name only started, page, completed and failed).
CANCELLED = "cancelled"
STARTED = "started"
ENDINGS = frozenset({"completed", "failed", "finished", CANCELLED})
PAGE = "page"


class Dialect(StrEnum):
    """Whose conventions a webhook follows: its signature header."""

    FIRECRAWL = "firecrawl"
    PLATFORM = "platform"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class WebhookTarget:
    """A webhook as its client gave it: where, with which headers and metadata, for which events
    (None: every one)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    events: frozenset[str] | None = None
    dialect: Dialect = Dialect.PLATFORM

    def wants(self, event: str) -> bool:
        if self.events is None or event in self.events:
            return True
        return event == CANCELLED and bool(self.events & ENDINGS)


@dataclass(frozen=True)
class Subscription:
    """A resource's webhook, stored with the resource."""

    id: str
    tenant_id: str
    resource_id: str
    public_id: str
    resource_type: str
    target: WebhookTarget
    # Whether its started event, and its end, were emitted.
    started: bool = False
    ended: bool = False


@dataclass(frozen=True)
class Delivery:
    """One event and how its delivery went, as its tenant sees it."""

    id: str
    type: str
    resource_id: str
    url: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
