"""The outbox: a resource's subscription, and its events written in the caller's transaction.

A state change and the event it causes commit together (a batch's completion and its
``completed`` event), so an event is never lost to a crash between the two, and never sent for a
change that rolled back. The body is built once, here: every attempt sends, and signs, the same bytes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update

from gateway.clock import timestamp, utc_now
from gateway.store import Connection
from gateway.store.tables import webhook_events, webhook_subscriptions
from gateway.webhooks.models import ENDINGS, STARTED, DeliveryStatus, Dialect, Subscription, WebhookTarget
from gateway.webhooks.secrets import ensure_secret

# A body beyond this (a page of several MiB) is sent without the page's content.
MAX_BODY_CHARACTERS = 1024 * 1024
_SUBSCRIPTION = select(webhook_subscriptions).where(
    webhook_subscriptions.c.resource_id == bindparam("resource_id")
)


@dataclass(frozen=True)
class Event:
    """What happened to a resource: its event's name (without the type's prefix), its data, and
    whether it went well (a failed page, a failed batch: False, with ``error``)."""

    name: str
    data: Any = None
    success: bool = True
    error: str | None = None


async def subscribe(
    db: Connection,
    tenant_id: str,
    resource_id: str,
    resource_type: str,
    target: WebhookTarget,
    *,
    public_id: str | None = None,
) -> None:
    """Send the resource's events to ``target`` (in the transaction that stores the resource)."""
    await ensure_secret(db, tenant_id)
    await db.execute(
        insert(webhook_subscriptions).values(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            resource_id=resource_id,
            public_id=public_id or resource_id,
            resource_type=resource_type,
            created_at=utc_now(),
            **_target_values(target),
        )
    )


async def resubscribe(
    db: Connection, tenant_id: str, resource_id: str, resource_type: str, target: WebhookTarget
) -> None:
    """Send the resource's events to ``target`` from now on, its events not yet delivered too."""
    changed = await db.execute(
        update(webhook_subscriptions)
        .where(webhook_subscriptions.c.resource_id == resource_id)
        .values(**_target_values(target))
    )
    if changed.rowcount == 0:
        await subscribe(db, tenant_id, resource_id, resource_type, target)


def _target_values(target: WebhookTarget) -> dict[str, Any]:
    return {
        "dialect": target.dialect.value,
        "url": target.url,
        "headers": dict(target.headers),
        "metadata": dict(target.metadata),
        "events": sorted(target.events) if target.events is not None else None,
    }


async def unsubscribe(db: Connection, resource_id: str) -> None:
    """Forget the resource's webhook and its events (the resource was never started, or is gone)."""
    await db.execute(delete(webhook_subscriptions).where(webhook_subscriptions.c.resource_id == resource_id))


async def subscription_of(db: Connection, resource_id: str) -> Subscription | None:
    row = (await db.execute(_SUBSCRIPTION, {"resource_id": resource_id})).first()
    return None if row is None else _subscription(row)


def _subscription(row: Any) -> Subscription:
    events = row.events
    return Subscription(
        started=row.started_at is not None,
        ended=row.ended_at is not None,
        id=row.id,
        tenant_id=row.tenant_id,
        resource_id=row.resource_id,
        public_id=row.public_id,
        resource_type=row.resource_type,
        target=WebhookTarget(
            url=row.url,
            headers=dict(row.headers or {}),
            metadata=dict(row.metadata or {}),
            events=frozenset(events) if isinstance(events, list) else None,
            dialect=Dialect(row.dialect),
        ),
    )


async def emit(db: Connection, resource_id: str, events: Iterable[Event], *, lifecycle: bool = True) -> int:
    """Write the resource's events that its webhook asked for (none without a webhook); how many.

    A resource's events begin with one ``started`` (made here, with no data, if a page comes first),
    unless it ended without starting (cancelled while queued), and end with its first end event;
    anything after that end is dropped (the late record of a page of a cancelled batch). A resource
    whose events recur (a datasource's crawls: ``lifecycle`` False) has no start or end of its own."""
    subscription = await subscription_of(db, resource_id)
    if subscription is None or subscription.ended:
        return 0
    now = utc_now()
    if not lifecycle:
        recurring: list[dict[str, Any]] = []
        for event in events:
            _add(recurring, subscription, event, now)
        if recurring:
            await db.execute(insert(webhook_events), recurring)
        return len(recurring)
    rows: list[dict[str, Any]] = []
    started, ended = subscription.started, False
    for event in events:
        if event.name == STARTED:
            if started:
                continue
        elif not started and event.name not in ENDINGS:
            _add(rows, subscription, Event(STARTED), now)
            started = True
        started = started or event.name == STARTED
        _add(rows, subscription, event, now)
        if event.name in ENDINGS:
            ended = True
            break
    if started != subscription.started or ended:
        marks: dict[str, Any] = {}
        if started and not subscription.started:
            marks["started_at"] = now
        if ended:
            marks["ended_at"] = now
        await db.execute(
            update(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription.id).values(**marks)
        )
    if rows:
        await db.execute(insert(webhook_events), rows)
    return len(rows)


def _add(rows: list[dict[str, Any]], subscription: Subscription, event: Event, now: datetime) -> None:
    if not subscription.target.wants(event.name):
        return
    event_id = str(uuid.uuid4())
    event_type = f"{subscription.resource_type}.{event.name}"
    rows.append(
        {
            "id": event_id,
            "tenant_id": subscription.tenant_id,
            "subscription_id": subscription.id,
            "resource_id": subscription.resource_id,
            "event": event.name,
            "type": event_type,
            "body": _body(subscription, event, event_type, event_id, timestamp(now)),
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
    )


def _body(subscription: Subscription, event: Event, event_type: str, event_id: str, at: str | None) -> str:
    text = _render(subscription, event, event_type, event_id, at)
    if len(text) > MAX_BODY_CHARACTERS and isinstance(event.data, list):
        # A page too big to post: its metadata only, and the status API has the rest.
        slim = [{"metadata": entry.get("metadata", {})} for entry in event.data if isinstance(entry, dict)]
        text = _render(subscription, replace(event, data=slim), event_type, event_id, at, truncated=True)
    return text


def _render(
    subscription: Subscription,
    event: Event,
    event_type: str,
    event_id: str,
    at: str | None,
    *,
    truncated: bool = False,
) -> str:
    body: dict[str, Any] = {
        "success": event.success,
        "type": event_type,
        "id": subscription.public_id,
        "webhookId": event_id,
        "timestamp": at,
        "data": event.data if event.data is not None else [],
        "metadata": dict(subscription.target.metadata),
    }
    if event.error is not None:
        body["error"] = event.error
    if truncated:
        body["truncated"] = True
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
