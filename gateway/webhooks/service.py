"""A tenant's webhooks: checking one it gives, its signing secret, its deliveries and their retry."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import func, select, update

from gateway.clock import utc_now
from gateway.errors import Conflict, NotFound
from gateway.store import Store
from gateway.store.tables import webhook_events, webhook_subscriptions
from gateway.webhooks.models import Delivery, DeliveryStatus, Dialect, WebhookTarget
from gateway.webhooks.resolver import Resolver
from gateway.webhooks.screening import screen_webhook
from gateway.webhooks.secrets import WebhookSecrets
from spiders_project.addresses import AddressPolicy

MAX_LISTED = 1000


class WebhookService:
    def __init__(
        self, store: Store, policy: AddressPolicy, retry_delays: Sequence[float], resolver: Resolver
    ) -> None:
        self._store = store
        self._policy = policy
        self._resolver = resolver
        # A retry asked for is the last attempt: one POST per request, whatever the receiver does.
        self._last_attempt = len(retry_delays)
        self.secrets = WebhookSecrets(store)

    async def census(self) -> list[tuple[str, int]]:
        """(status, events) over the outbox: what the metrics report (off the event loop)."""
        async with self._store.scan() as db:
            rows = await db.execute(
                select(webhook_events.c.status, func.count()).group_by(webhook_events.c.status)
            )
            return [(str(status), int(count)) for status, count in rows]

    async def screen(
        self,
        url: Any,
        *,
        tenant_id: str,
        headers: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        events: Collection[str] | None = None,
        known_events: Collection[str],
        dialect: Dialect = Dialect.PLATFORM,
    ) -> WebhookTarget:
        return await screen_webhook(
            url,
            headers=headers,
            metadata=metadata,
            events=events,
            known_events=known_events,
            dialect=dialect,
            policy=self._policy,
            resolver=self._resolver,
            tenant_id=tenant_id,
        )

    async def deliveries(
        self,
        tenant_id: str,
        *,
        resource_id: str | None = None,
        status: DeliveryStatus | None = None,
        delivery_id: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[Delivery]:
        """The tenant's events, oldest first; ``resource_id`` is the id the tenant knows."""
        events = webhook_events.c
        query = (
            select(
                events.id,
                events.type,
                events.status,
                events.attempts,
                events.last_status_code,
                events.last_error,
                events.next_attempt_at,
                events.delivered_at,
                events.created_at,
                webhook_subscriptions.c.url,
                webhook_subscriptions.c.public_id,
            )
            .join(webhook_subscriptions, webhook_subscriptions.c.id == webhook_events.c.subscription_id)
            .where(webhook_events.c.tenant_id == tenant_id)
        )
        if resource_id is not None:
            query = query.where(webhook_subscriptions.c.public_id == resource_id)
        if status is not None:
            query = query.where(webhook_events.c.status == status.value)
        if delivery_id is not None:
            query = query.where(webhook_events.c.id == delivery_id)
        query = query.order_by(webhook_events.c.seq).offset(offset).limit(min(limit, MAX_LISTED))
        async with self._store.scan() as db:
            rows = (await db.execute(query)).all()
        return [
            Delivery(
                id=row.id,
                type=row.type,
                resource_id=row.public_id,
                url=row.url,
                status=DeliveryStatus(row.status),
                attempts=row.attempts,
                last_status_code=row.last_status_code,
                last_error=row.last_error,
                next_attempt_at=row.next_attempt_at,
                delivered_at=row.delivered_at,
                created_at=row.created_at,
            )
            for row in rows
        ]

    async def retry(self, tenant_id: str, delivery_id: str) -> Delivery:
        """Send a delivered or failed event once more, now: one attempt, and no retries after it."""
        async with self._store.write() as db:
            changed = await db.execute(
                update(webhook_events)
                .where(
                    webhook_events.c.id == delivery_id,
                    webhook_events.c.tenant_id == tenant_id,
                    webhook_events.c.status != DeliveryStatus.PENDING.value,
                )
                .values(
                    status=DeliveryStatus.PENDING.value,
                    attempts=self._last_attempt,
                    next_attempt_at=utc_now(),
                    delivered_at=None,
                )
            )
        found = await self.deliveries(tenant_id, delivery_id=delivery_id)
        if not found:
            raise NotFound("Delivery not found")
        if changed.rowcount != 1:
            raise Conflict("The delivery is under way already")
        return found[0]
