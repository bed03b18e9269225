"""Delivering the outbox: each event POSTed to its webhook, signed, until a 2xx or the last retry.

A pass (``tick``) hands due events to delivery tasks, and more as tasks end, for one interval at
most; it never waits on a receiver beyond that. A slow or dead receiver holds only its own events
(at most ``per_host`` of them at once, ``per_tenant`` of its tenant's) and never the loop, the API
or another tenant's deliveries. A resource's events go in order: a page event waits for the
resource's ``started``, and any other event for every event before it. An event stays pending
until its outcome is recorded, so a gateway that dies during a delivery sends it again after
restart: at least once, with the same ``webhookId``. Outcomes are recorded in batches (32 attempts,
or 20 ms after the first ended), and due events are looked up 256 at a time, afresh each pass,
the bodies of the next 64 read together; a receiver's share is free again as soon as its attempt
ends, not when it is recorded.

Connections obey the address policy where they are made (``transport.py``): the addresses a
host resolves to are checked, and only a checked address is connected to. Redirects are not
followed, and a response's body is read up to ``MAX_RESPONSE_BYTES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, and_, bindparam, delete, exists, func, or_, select, update

from gateway.clock import utc_now
from gateway.metrics import WEBHOOK_ATTEMPTS
from gateway.store import Store
from gateway.store.tables import webhook_events, webhook_secrets, webhook_subscriptions
from gateway.webhooks.models import PAGE, STARTED, DeliveryStatus, Dialect
from gateway.webhooks.resolver import Resolver
from gateway.webhooks.secrets import WebhookSecrets, signature
from gateway.webhooks.transport import Attempt, WebhookTransport
from spiders_project.addresses import AddressPolicy, default_port

log = logging.getLogger(__name__)

# After the first attempt fails: about a day in all, then the event is marked failed.
RETRY_DELAYS = (10.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0, 43200.0)
ATTEMPT_SECONDS = 10.0
KEEP_DELIVERED = timedelta(days=7)
# An attempt's outcome as gateway_webhook_delivery_attempts_total counts it, by the event's status after it.
_ATTEMPT_OUTCOMES = {
    DeliveryStatus.DELIVERED.value: "delivered",
    DeliveryStatus.PENDING.value: "retry",
    DeliveryStatus.FAILED.value: "failed",
}
_SWEEP_EVERY = 60.0
# Outcomes are recorded together, in one transaction, once this many attempts have ended or the
# first of them ended this long ago; their events stay pending, and under way, until then.
_RECORD_BATCH = 32
_RECORD_AFTER = 0.02
# Due events are looked up this many at a time, and handed out from memory until the next pass;
# the bodies of the next this many (and their tenants' secrets) are read together.
_DUE_BATCH = 256
_BODY_BATCH = 64


def _due_events() -> Select[Any]:
    """The statement of WebhookDelivery._due, built once (it runs after every delivery)."""
    events = webhook_events
    earlier = webhook_events.alias("earlier")
    # An earlier pending event of the same resource holds this one back: any, for an event that
    # is not a page; its started event, for a page (nothing else comes before pages, and nothing
    # after the end). Each is one probe of an index.
    earlier_pending = (
        earlier.c.subscription_id == events.c.subscription_id,
        earlier.c.status == DeliveryStatus.PENDING.value,
        earlier.c.seq < events.c.seq,
    )
    held_back = or_(
        and_(events.c.event == PAGE, exists().where(*earlier_pending, earlier.c.event == STARTED)),
        and_(events.c.event != PAGE, exists().where(*earlier_pending)),
    )
    candidates = (
        select(
            events.c.seq,
            events.c.id,
            events.c.tenant_id,
            events.c.type,
            events.c.attempts,
            events.c.subscription_id,
            webhook_subscriptions.c.url,
            webhook_subscriptions.c.headers,
            webhook_subscriptions.c.dialect,
            func.row_number().over(partition_by=events.c.tenant_id, order_by=events.c.seq).label("turn"),
        )
        .join(webhook_subscriptions, webhook_subscriptions.c.id == events.c.subscription_id)
        .where(
            events.c.status == DeliveryStatus.PENDING.value,
            events.c.next_attempt_at <= bindparam("now"),
            events.c.id.not_in(bindparam("in_flight", expanding=True)),
            events.c.subscription_id.not_in(bindparam("skipped", expanding=True)),
            events.c.tenant_id.not_in(bindparam("full_tenants", expanding=True)),
            ~held_back,
        )
        .subquery()
    )
    return select(candidates).order_by(candidates.c.turn, candidates.c.seq).limit(bindparam("limit"))


_DUE = _due_events()
_BODIES = select(webhook_events.c.id, webhook_events.c.body).where(
    webhook_events.c.id.in_(bindparam("ids", expanding=True))
)
_SECRETS = select(webhook_secrets.c.tenant_id, webhook_secrets.c.secret).where(
    webhook_secrets.c.tenant_id.in_(bindparam("tenants", expanding=True))
)
# An attempt's outcome, all of it, for many events in one statement; only the attempt this was
# changes its event (a retry asked for meanwhile starts over).
_RECORD = (
    update(webhook_events)
    .where(
        webhook_events.c.id == bindparam("event_id"),
        webhook_events.c.status == DeliveryStatus.PENDING.value,
        webhook_events.c.attempts == bindparam("attempts_before"),
    )
    .values(
        status=bindparam("outcome"),
        attempts=bindparam("attempts_now"),
        last_status_code=bindparam("status_code"),
        last_error=bindparam("error"),
        next_attempt_at=bindparam("retry_at", type_=webhook_events.c.next_attempt_at.type),
        delivered_at=bindparam("delivered", type_=webhook_events.c.delivered_at.type),
    )
)


@dataclass(frozen=True)
class _Due:
    seq: int
    id: str
    tenant_id: str
    type: str
    attempts: int
    subscription_id: str
    url: str
    headers: dict[str, str]
    dialect: Dialect

    @property
    def host(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or default_port(parts.scheme)}"


class WebhookDelivery:
    name = "webhook-delivery"

    def __init__(
        self,
        store: Store,
        secrets: WebhookSecrets,
        policy: AddressPolicy,
        *,
        resolver: Resolver | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        attempt_seconds: float = ATTEMPT_SECONDS,
        interval: float = 0.25,
        max_in_flight: int = 64,
        per_host: int = 4,
        per_tenant: int = 16,
    ) -> None:
        self.interval = interval
        self._store = store
        self._secrets = secrets
        self._retry_delays = tuple(retry_delays)
        self._attempt_seconds = attempt_seconds
        self._max_in_flight = max_in_flight
        self._per_host = per_host
        self._per_tenant = per_tenant
        self._host_load: Counter[str] = Counter()
        self._tenant_load: Counter[str] = Counter()
        # Events under way (posting, or posted and not yet recorded), by id.
        self._in_flight: dict[str, tuple[_Due, asyncio.Task[Attempt]]] = {}
        self._ended_since: float | None = None
        # Due events not yet handed out, as the last look found them (each pass looks afresh), and
        # the bodies and secrets read ahead for them.
        self._waiting: list[_Due] = []
        self._bodies: dict[str, str] = {}
        self._tenant_secrets: dict[str, str] = {}
        self._subscriptions_of: dict[str, set[str]] = {}
        self._swept_at = 0.0
        self._transport = WebhookTransport(policy, resolver or Resolver(), max_connections=max_in_flight)

    async def tick(self) -> None:
        """Hand due events to delivery tasks, and more as tasks end, for one interval at most: a
        receiver that answers at once gets its next event at once, not a pass later. What ended
        tasks found is recorded in batches, each in one transaction."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.interval
        # Looked up afresh each pass: a tenant whose events came since waits one pass at most.
        self._waiting, self._bodies, self._tenant_secrets = [], {}, {}
        while True:
            await self._record_ended(force=False)
            if not self._waiting and len(self._in_flight) < self._max_in_flight:
                self._waiting = await self._due(_DUE_BATCH)
            await self._launch()
            left = deadline - loop.time()
            running = [task for _, task in self._in_flight.values() if not task.done()]
            if left <= 0 or not self._in_flight:
                break
            if self._ended_since is not None:
                left = min(left, max(0.0, self._ended_since + _RECORD_AFTER - loop.time()))
            if running:
                done, _ = await asyncio.wait(running, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                if not done and self._ended_since is None:
                    break  # receivers still answering: the next pass looks again
            elif left > 0:
                await asyncio.sleep(left)
            if not self._waiting and self._ended_since is None and not running:
                break
        await self._record_ended(force=True)
        if loop.time() - self._swept_at >= _SWEEP_EVERY:
            self._swept_at = loop.time()
            await self._sweep()

    async def _launch(self) -> None:
        """Hand waiting events to tasks, each receiver and tenant its share and no more; their
        bodies and secrets are read in one go."""
        room = self._max_in_flight - len(self._in_flight)
        chosen: list[_Due] = []
        left: list[_Due] = []
        for event in self._waiting:
            host, tenant = event.host, event.tenant_id
            if (
                len(chosen) >= room
                or self._host_load[host] >= self._per_host
                or self._tenant_load[tenant] >= self._per_tenant
            ):
                left.append(event)
                continue
            self._host_load[host] += 1
            self._tenant_load[tenant] += 1
            chosen.append(event)
        self._waiting = left
        if not chosen:
            return
        try:
            if any(event.id not in self._bodies for event in chosen):
                await self._read_ahead(chosen)
        except BaseException:
            for event in chosen:
                self._release(event)
            raise
        for event in chosen:
            self._subscriptions_of.setdefault(event.host, set()).add(event.subscription_id)
            body = self._bodies.pop(event.id, None)
            task = asyncio.create_task(
                self.post(event, body, self._tenant_secrets.get(event.tenant_id)),
                name=f"webhook {event.id}",
            )
            task.add_done_callback(functools.partial(self._posted, event))
            self._in_flight[event.id] = (event, task)

    def _posted(self, event: _Due, _: asyncio.Task[Attempt]) -> None:
        """The attempt ended: its receiver and tenant may take another (it is recorded later)."""
        if self._ended_since is None:
            self._ended_since = asyncio.get_running_loop().time()
        subscriptions = self._subscriptions_of.get(event.host, set())
        subscriptions.discard(event.subscription_id)
        if not subscriptions:
            self._subscriptions_of.pop(event.host, None)
        self._release(event)

    def _release(self, event: _Due) -> None:
        for load, name in ((self._host_load, event.host), (self._tenant_load, event.tenant_id)):
            load[name] -= 1
            if load[name] <= 0:
                del load[name]

    async def _read_ahead(self, chosen: list[_Due]) -> None:
        """Read the bodies of the chosen events and of the next waiting ones, up to _BODY_BATCH,
        and their tenants' secrets, in one read (a secret rotated meanwhile signs from the next pass)."""
        ahead = [event for event in chosen if event.id not in self._bodies]
        for event in self._waiting:
            if len(ahead) >= _BODY_BATCH:
                break
            if event.id not in self._bodies:
                ahead.append(event)
        tenants = sorted({event.tenant_id for event in ahead} - self._tenant_secrets.keys())
        async with self._store.read() as db:
            bodies = await db.execute(_BODIES, {"ids": [event.id for event in ahead]})
            self._bodies.update(bodies.tuples().all())
            if tenants:
                secrets = await db.execute(_SECRETS, {"tenants": tenants})
                self._tenant_secrets.update(secrets.tuples().all())

    async def _record_ended(self, *, force: bool) -> None:
        """Record the attempts that ended, once enough have or the first waited long enough (or
        now, with ``force``); until then their events stay under way (never handed out twice)."""
        ended = [(event, task) for event, task in self._in_flight.values() if task.done()]
        if not ended:
            self._ended_since = None
            return
        loop = asyncio.get_running_loop()
        waited = loop.time() - (self._ended_since or loop.time())
        if not force and len(ended) < _RECORD_BATCH and waited < _RECORD_AFTER:
            return
        attempts = []
        for event, task in ended:
            if task.cancelled():
                continue
            failure = task.exception()
            if failure is not None:
                log.error("webhook event %s: its attempt failed unexpectedly: %r", event.id, failure)
                attempts.append((event, Attempt(None, "the delivery failed unexpectedly")))
            else:
                attempts.append((event, task.result()))
        try:
            await self._record(attempts)
        finally:
            for event, _ in ended:
                del self._in_flight[event.id]
            # Attempts that ended while these were recorded wait for the next batch.
            more = any(task.done() for _, task in self._in_flight.values())
            self._ended_since = loop.time() if more else None

    async def close(self) -> None:
        """Stop delivering: what ended is recorded; events under way stay pending and go again
        after a restart."""
        for _, task in self._in_flight.values():
            if not task.done():
                task.cancel()
        for _, task in list(self._in_flight.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self._record_ended(force=True)
        await self._transport.close()

    async def _due(self, limit: int) -> list[_Due]:
        """Due events, not under way, that no earlier event of theirs holds back: each tenant's
        first before any tenant's second, so a tenant with many events never crowds out the others.
        Receivers and tenants that have their share under way are not even looked at."""
        full_hosts = {host for host, load in self._host_load.items() if load >= self._per_host}
        full_tenants = [tenant for tenant, load in self._tenant_load.items() if load >= self._per_tenant]
        skipped = [sub for host in full_hosts for sub in self._subscriptions_of.get(host, ())]
        query = _DUE
        parameters = {
            "now": utc_now(),
            "in_flight": list(self._in_flight),
            "skipped": skipped,
            "full_tenants": full_tenants,
            "limit": limit,
        }
        async with self._store.scan() as db:
            rows = (await db.execute(query, parameters)).all()
        return [
            _Due(
                row.seq,
                row.id,
                row.tenant_id,
                row.type,
                row.attempts,
                row.subscription_id,
                row.url,
                dict(row.headers or {}),
                Dialect(row.dialect),
            )
            for row in rows
        ]

    async def post(self, event: _Due, body: str | None, secret: str | None) -> Attempt:
        """One attempt: the event's body, signed, POSTed; never raises for what the receiver does."""
        if body is None:
            return Attempt(None, "the event is gone")
        try:
            return await self.send(event, body.encode(), secret)
        except Exception as exc:
            # Whatever went wrong counts as a failed attempt, so the event moves on to its retries.
            log.warning("webhook event %s: the delivery failed: %r", event.id, exc)
            return Attempt(None, f"the delivery failed ({type(exc).__name__})")

    async def send(self, event: _Due, body: bytes, secret: str | None = None) -> Attempt:
        """POST ``body``, signed with ``secret`` (by default the tenant's now), to the event's
        webhook; what came of it."""
        signed = signature(secret or await self._secrets.of(event.tenant_id), body)
        headers = [(name, value) for name, value in event.headers.items()]
        headers += [
            ("Content-Type", "application/json"),
            ("X-Webhook-Id", event.id),
            ("X-Webhook-Event", event.type),
            ("X-Webhook-Signature", signed),
        ]
        if event.dialect == Dialect.FIRECRAWL:
            headers.append(("X-Firecrawl-Signature", signed))
        return await self._transport.post(event.tenant_id, event.url, headers, body, self._attempt_seconds)

    async def _record(self, attempts: list[tuple[_Due, Attempt]]) -> None:
        if not attempts:
            return
        now = utc_now()
        outcomes = [self._outcome(event, attempt, now) for event, attempt in attempts]
        async with self._store.write() as db:
            await db.execute(_RECORD, outcomes)
        for values in outcomes:
            WEBHOOK_ATTEMPTS.labels(_ATTEMPT_OUTCOMES[str(values["outcome"])]).inc()

    def _outcome(self, event: _Due, attempt: Attempt, now: datetime) -> dict[str, object]:
        """The parameters of ``_RECORD`` for one attempt."""
        attempts = event.attempts + 1
        values: dict[str, object] = {
            "event_id": event.id,
            "attempts_before": event.attempts,
            "attempts_now": attempts,
            "status_code": attempt.status_code,
            "error": attempt.error,
            "outcome": DeliveryStatus.PENDING.value,
            "retry_at": None,
            "delivered": None,
        }
        if attempt.delivered:
            values.update(outcome=DeliveryStatus.DELIVERED.value, delivered=now)
        elif attempts > len(self._retry_delays):
            values["outcome"] = DeliveryStatus.FAILED.value
            log.warning("webhook event %s (%s) failed for good: %s", event.id, event.type, attempt.error)
        else:
            values["retry_at"] = _next_attempt(now, self._retry_delays[attempts - 1])
        return values

    async def _sweep(self) -> None:
        """Delivered and failed events are kept for a week, for the deliveries list; a resource's
        webhook (its headers may hold the receiver's credentials) as long after the resource ended."""
        cutoff = utc_now() - KEEP_DELIVERED
        async with self._store.write() as db:
            await db.execute(
                delete(webhook_events).where(
                    webhook_events.c.status != DeliveryStatus.PENDING.value,
                    webhook_events.c.created_at < cutoff,
                )
            )
            pending = select(webhook_events.c.seq).where(
                webhook_events.c.subscription_id == webhook_subscriptions.c.id,
                webhook_events.c.status == DeliveryStatus.PENDING.value,
            )
            await db.execute(
                delete(webhook_subscriptions).where(
                    webhook_subscriptions.c.ended_at < cutoff, ~pending.exists()
                )
            )


def _next_attempt(now: datetime, delay: float) -> datetime:
    # Jitter spreads the retries of many events that failed together.
    return now + timedelta(seconds=delay * random.uniform(0.8, 1.2))
