"""Batches: a list of URLs scraped into page records by the built-in ``batch`` spider, tracked as one.

A batch is stored with one row per accepted URL (its ``input_index`` kept), credits are reserved
for every page up front, and one scrapyd job per share of the URLs is started (a big batch uses
every core). Spider processes read the URLs over HTTP from the gateway with the batch's token;
their page records come back through the item feed (``gateway.feeds``) into ``batch_pages``.
``advance`` moves batches along as their jobs run and end; ``expire`` deletes them after retention.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.batch_urls import MAX_URLS, InvalidUrl, screen_urls
from gateway.deploy import BUILTIN_PROJECT
from gateway.errors import BadRequest, Conflict, GatewayError, NodeUnavailable, NotFound, PaymentRequired
from gateway.jobs import JobService, JobStatus
from gateway.keys import ApiKey
from gateway.spiders import SpiderCatalog
from gateway.store import Store
from gateway.store.tables import api_keys, batch_pages, batches, jobs
from spiders_project.addresses import AddressPolicy
from spiders_project.pages import PageOptions

log = logging.getLogger(__name__)

BATCH_SPIDER = "batch"
NEVER_STARTED_AFTER = timedelta(minutes=5)


class BatchStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class PageStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class BatchPolicy:
    """What an operator decides about every batch."""

    gateway_url: str
    addresses: AddressPolicy
    retention: timedelta
    processes: int
    urls_per_process: int


@dataclass(frozen=True)
class Batch:
    id: str
    tenant_id: str
    dialect: str
    status: BatchStatus
    options: PageOptions
    total_urls: int
    invalid_urls: list[dict[str, Any]]
    credits_used: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime

    @property
    def ended(self) -> bool:
        return self.status in (BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.CANCELLED)

    @classmethod
    def from_row(cls, row: Any) -> Batch:
        return cls(
            id=row["id"],
            tenant_id=row["tenant_id"],
            dialect=row["dialect"],
            status=BatchStatus(row["status"]),
            options=PageOptions.from_json(row["options"]),
            total_urls=row["total_urls"],
            invalid_urls=list(row["invalid_urls"]),
            credits_used=row["credits_used"],
            error=row["error"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            expires_at=row["expires_at"],
        )


@dataclass(frozen=True)
class PageCounts:
    pending: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def done(self) -> int:
        return self.completed + self.failed + self.cancelled


@dataclass(frozen=True)
class BatchPage:
    input_index: int
    url: str
    status: PageStatus
    status_code: int | None
    error_code: str | None
    error_message: str | None
    duration_ms: int | None
    retry_count: int | None
    record: dict[str, Any]
    record_bytes: int
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> BatchPage:
        return cls(
            input_index=row["input_index"],
            url=row["url"],
            status=PageStatus(row["status"]),
            status_code=row["status_code"],
            error_code=row["error_code"],
            error_message=row["error_message"],
            duration_ms=row["duration_ms"],
            retry_count=row["retry_count"],
            record=json.loads(row["record"]) if row["record"] else {},
            record_bytes=row["record_bytes"],
            finished_at=row["finished_at"],
        )


class BatchService:
    def __init__(
        self, store: Store, job_service: JobService, catalog: SpiderCatalog, policy: BatchPolicy
    ) -> None:
        self._store = store
        self._jobs = job_service
        self._catalog = catalog
        self._policy = policy

    async def create(
        self,
        key: ApiKey,
        dialect: str,
        urls: Sequence[Any],
        options: PageOptions,
        *,
        ignore_invalid: bool = True,
        idempotency_key: str | None = None,
    ) -> tuple[Batch, list[InvalidUrl]]:
        """Store and start a batch; returns it with the URLs that were refused."""
        if not 1 <= len(urls) <= MAX_URLS:
            raise BadRequest(f"a batch takes 1 to {MAX_URLS} URLs, not {len(urls)}")
        if idempotency_key is not None:
            existing = await self._by_idempotency_key(key, idempotency_key)
            if existing is not None:
                return existing, [_invalid(entry) for entry in existing.invalid_urls]
        screened = await screen_urls(urls, self._policy.addresses)
        if screened.invalid and not ignore_invalid:
            listed = "; ".join(f"{item.url} ({item.reason})" for item in screened.invalid[:50])
            raise BadRequest(f"invalid URLs: {listed}")
        if not screened.accepted:
            raise BadRequest(
                "none of the URLs can be scraped: " + "; ".join(i.reason for i in screened.invalid[:5])
            )
        spider = await self._batch_spider()
        batch_id = str(uuid.uuid4())
        try:
            await self._insert(
                key, batch_id, dialect, options, screened.accepted, screened.invalid, idempotency_key
            )
        except IntegrityError:
            existing = await self._by_idempotency_key(key, idempotency_key or "")
            if existing is None:
                raise
            return existing, [_invalid(entry) for entry in existing.invalid_urls]
        await self._start_jobs(key, batch_id, spider, len(screened.accepted))
        return await self._load(batch_id), screened.invalid

    async def get(self, key: ApiKey, batch_id: str) -> Batch:
        """The tenant's batch; another tenant's, or an expired one, is not found."""
        async with self._store.read() as db:
            row = (
                await db.execute(
                    select(batches).where(
                        batches.c.id == batch_id,
                        batches.c.tenant_id == key.tenant_id,
                        batches.c.expires_at > datetime.now(UTC),
                    )
                )
            ).first()
        if row is None:
            raise NotFound("Batch not found")
        return Batch.from_row(row._mapping)

    async def counts(self, batch_id: str) -> PageCounts:
        query = (
            select(batch_pages.c.status, func.count())
            .where(batch_pages.c.batch_id == batch_id)
            .group_by(batch_pages.c.status)
        )
        async with self._store.read() as db:
            found = {status: int(count) for status, count in await db.execute(query)}
        return PageCounts(**{status.value: found.get(status.value, 0) for status in PageStatus})

    async def pages(
        self,
        batch_id: str,
        *,
        offset: int = 0,
        limit: int | None = None,
        statuses: Sequence[PageStatus] = (),
    ) -> list[BatchPage]:
        """Pages in input order; ``offset`` counts pages of the given statuses."""
        query = (
            select(batch_pages)
            .where(batch_pages.c.batch_id == batch_id)
            .order_by(batch_pages.c.input_index)
            .offset(offset)
        )
        if statuses:
            query = query.where(batch_pages.c.status.in_([status.value for status in statuses]))
        if limit is not None:
            query = query.limit(limit)
        async with self._store.read() as db:
            return [BatchPage.from_row(row._mapping) for row in await db.execute(query)]

    async def search(
        self, key: ApiKey, *, offset: int, limit: int, status: BatchStatus | None = None
    ) -> tuple[list[Batch], int]:
        """The tenant's live batches, newest first, and how many there are in all."""
        where = and_(batches.c.tenant_id == key.tenant_id, batches.c.expires_at > datetime.now(UTC))
        if status is not None:
            where = and_(where, batches.c.status == status.value)
        async with self._store.read() as db:
            rows = await db.execute(
                select(batches).where(where).order_by(batches.c.created_at.desc()).offset(offset).limit(limit)
            )
            found = [Batch.from_row(row._mapping) for row in rows]
            total = (await db.execute(select(func.count()).select_from(batches).where(where))).scalar_one()
        return found, int(total)

    async def cancel(self, key: ApiKey, batch_id: str) -> tuple[Batch, int]:
        """Stop the batch: its jobs are cancelled and pages not fetched end as cancelled.

        Returns the batch and how many of its pages were still to fetch.
        """
        batch = await self.get(key, batch_id)
        if batch.ended:
            raise Conflict(f"Batch already {batch.status.value}")
        async with self._store.write() as db:
            changed = await db.execute(
                update(batches)
                .where(batches.c.id == batch.id, batches.c.completed_at.is_(None))
                .values(status=BatchStatus.CANCELLED)
            )
        if changed.rowcount != 1:
            raise Conflict("Batch already ended")
        async with self._store.read() as db:
            job_ids = [
                row.id for row in await db.execute(select(jobs.c.id).where(jobs.c.batch_id == batch.id))
            ]
        for job_id in job_ids:
            try:
                await self._jobs.cancel(key, job_id)
            except (Conflict, NotFound):
                continue
        in_flight = (await self.counts(batch.id)).pending
        return await self._load(batch.id), in_flight

    async def inputs(self, batch_id: str, token: str, claim: int) -> dict[str, Any]:
        """The next ``claim`` URLs of the batch nobody took yet, with its options and address policy.

        The batch's spider processes ask for their work this way, so however many share a batch,
        each page is handed out once and a fast process simply takes more.
        """
        async with self._store.write() as db:
            row = (await db.execute(select(batches).where(batches.c.id == batch_id))).first()
            if row is None or not secrets.compare_digest(row.inputs_token, token):
                raise NotFound("Batch not found")
            unclaimed = (
                select(batch_pages.c.input_index)
                .where(
                    batch_pages.c.batch_id == batch_id,
                    batch_pages.c.status == PageStatus.PENDING,
                    batch_pages.c.claimed_at.is_(None),
                )
                .order_by(batch_pages.c.input_index)
                .limit(claim)
            )
            claimed: Sequence[Any] = ()
            if row.status != BatchStatus.CANCELLED:
                claimed = (
                    await db.execute(
                        update(batch_pages)
                        .where(batch_pages.c.batch_id == batch_id, batch_pages.c.input_index.in_(unclaimed))
                        .values(claimed_at=datetime.now(UTC))
                        .returning(batch_pages.c.input_index, batch_pages.c.url)
                    )
                ).all()
        return {
            "batch_id": batch_id,
            "pages": sorted([page.input_index, page.url] for page in claimed),
            "options": row.options,
            "addresses": self._policy.addresses.to_entries(),
        }

    async def advance(self) -> None:
        """Mark batches running once a job runs, and finish them once all their jobs have ended."""
        async with self._store.read() as db:
            open_batches = [
                Batch.from_row(row._mapping)
                for row in await db.execute(select(batches).where(batches.c.completed_at.is_(None)))
            ]
            if not open_batches:
                return
            job_rows = (
                await db.execute(
                    select(jobs.c.batch_id, jobs.c.status, jobs.c.settled, jobs.c.started_at).where(
                        jobs.c.batch_id.in_([batch.id for batch in open_batches])
                    )
                )
            ).all()
        by_batch: dict[str, list[Any]] = {}
        for row in job_rows:
            by_batch.setdefault(row.batch_id, []).append(row)
        now = datetime.now(UTC)
        for batch in open_batches:
            batch_jobs = by_batch.get(batch.id, [])
            if batch.status == BatchStatus.QUEUED and any(job.started_at for job in batch_jobs):
                await self._set(batch, status=BatchStatus.RUNNING, started_at=now)
            statuses = [JobStatus(job.status) for job in batch_jobs]
            if batch_jobs and all(job.settled for job in batch_jobs):
                await self._finish(batch, statuses)
            elif batch_jobs and (
                batch.status == BatchStatus.CANCELLED or not (await self.counts(batch.id)).pending
            ):
                # Every page has its record (or the batch was cancelled): done, while the spider
                # processes are still shutting down.
                await self._finish(batch, statuses)
            elif not batch_jobs and (batch.error or now - batch.created_at > NEVER_STARTED_AFTER):
                # Its jobs could not be started (or the gateway stopped before it started them).
                await self._finish(batch, [])

    async def expire(self) -> int:
        """Delete finished batches past their retention, with their pages and jobs."""
        async with self._store.write() as db:
            result = await db.execute(
                delete(batches).where(
                    batches.c.completed_at.is_not(None), batches.c.expires_at <= datetime.now(UTC)
                )
            )
        if result.rowcount:
            log.info("deleted %d expired batches", result.rowcount)
        return int(result.rowcount)

    async def _finish(self, batch: Batch, job_statuses: list[JobStatus]) -> None:
        now = datetime.now(UTC)
        cancelled = batch.status == BatchStatus.CANCELLED
        async with self._store.write() as db:
            await db.execute(
                update(batch_pages)
                .where(batch_pages.c.batch_id == batch.id, batch_pages.c.status == PageStatus.PENDING)
                .values(
                    status=PageStatus.CANCELLED if cancelled else PageStatus.FAILED,
                    error_code="CANCELLED" if cancelled else "NOT_FETCHED",
                    error_message="the batch was cancelled before this page was fetched"
                    if cancelled
                    else "the scrape ended before this page was fetched",
                    finished_at=now,
                )
            )
            fetched = (
                await db.execute(
                    select(func.count()).where(
                        batch_pages.c.batch_id == batch.id, batch_pages.c.status_code.is_not(None)
                    )
                )
            ).scalar_one()
            completed = (
                await db.execute(
                    select(func.count()).where(
                        batch_pages.c.batch_id == batch.id, batch_pages.c.status == PageStatus.COMPLETED
                    )
                )
            ).scalar_one()
            row = (await db.execute(select(batches).where(batches.c.id == batch.id).with_for_update())).one()
            if row.completed_at is not None:
                return
            status = BatchStatus.CANCELLED if row.status == BatchStatus.CANCELLED else BatchStatus.COMPLETED
            error = row.error
            if (
                status == BatchStatus.COMPLETED
                and not completed
                and all(job == JobStatus.ERROR for job in job_statuses)
            ):
                status, error = BatchStatus.FAILED, error or "the batch's scrape jobs failed: see their logs"
            refund = max(0, row.credits_reserved - int(fetched))
            await db.execute(
                update(batches)
                .where(batches.c.id == batch.id)
                .values(
                    status=status,
                    error=error,
                    credits_used=int(fetched),
                    completed_at=now,
                    expires_at=now + self._policy.retention,
                )
            )
            if refund and row.api_key_id:
                await db.execute(
                    update(api_keys)
                    .where(api_keys.c.id == row.api_key_id)
                    .values(credits_used=api_keys.c.credits_used - refund)
                )
        log.info("batch %s %s: %d pages fetched", batch.id, status.value, fetched)

    async def _insert(
        self,
        key: ApiKey,
        batch_id: str,
        dialect: str,
        options: PageOptions,
        accepted: list[tuple[int, str]],
        invalid: list[InvalidUrl],
        idempotency_key: str | None,
    ) -> None:
        now = datetime.now(UTC)
        reserved = len(accepted) if key.credits_limit is not None else 0
        async with self._store.write() as db:
            if reserved:
                held = await db.execute(
                    update(api_keys)
                    .where(
                        api_keys.c.id == key.id,
                        api_keys.c.credits_limit - api_keys.c.credits_used >= reserved,
                    )
                    .values(credits_used=api_keys.c.credits_used + reserved)
                )
                if held.rowcount != 1:
                    raise PaymentRequired()
            await db.execute(
                insert(batches).values(
                    id=batch_id,
                    tenant_id=key.tenant_id,
                    api_key_id=key.id,
                    dialect=dialect,
                    status=BatchStatus.QUEUED,
                    options=options.to_json(),
                    total_urls=len(accepted),
                    invalid_urls=[{"index": i.index, "url": i.url, "reason": i.reason} for i in invalid],
                    credits_reserved=reserved,
                    credits_used=0,
                    inputs_token=secrets.token_urlsafe(32),
                    idempotency_key=idempotency_key,
                    created_at=now,
                    expires_at=now + self._policy.retention,
                )
            )
            await db.execute(
                insert(batch_pages),
                [
                    {
                        "batch_id": batch_id,
                        "input_index": index,
                        "url": url,
                        "status": PageStatus.PENDING,
                        "record_bytes": 0,
                    }
                    for index, url in accepted
                ],
            )

    async def _start_jobs(self, key: ApiKey, batch_id: str, spider: Any, url_count: int) -> None:
        """As many jobs as cores allow and the batch is worth; they share its URLs as they go."""
        parts = max(1, min(self._policy.processes, math.ceil(url_count / self._policy.urls_per_process)))
        async with self._store.read() as db:
            token = (
                await db.execute(select(batches.c.inputs_token).where(batches.c.id == batch_id))
            ).scalar_one()
        inputs_url = f"{self._policy.gateway_url}/internal/batches/{batch_id}/inputs?token={token}"
        try:
            for _ in range(parts):
                await self._jobs.start(key, spider, {"inputs_url": inputs_url}, batch_id=batch_id)
        except GatewayError as exc:
            await self._set_error(batch_id, f"the batch could not be started: {exc.message}")
            raise

    async def _batch_spider(self) -> Any:
        try:
            return await self._catalog.find(BATCH_SPIDER, BUILTIN_PROJECT)
        except NotFound:
            raise NodeUnavailable("The batch spider is not deployed yet; try again in a moment.") from None

    async def _by_idempotency_key(self, key: ApiKey, idempotency_key: str) -> Batch | None:
        async with self._store.read() as db:
            row = (
                await db.execute(
                    select(batches).where(
                        batches.c.tenant_id == key.tenant_id, batches.c.idempotency_key == idempotency_key
                    )
                )
            ).first()
        return Batch.from_row(row._mapping) if row else None

    async def _set(self, batch: Batch, **values: Any) -> None:
        async with self._store.write() as db:
            await db.execute(update(batches).where(batches.c.id == batch.id).values(**values))

    async def _set_error(self, batch_id: str, error: str) -> None:
        async with self._store.write() as db:
            await db.execute(update(batches).where(batches.c.id == batch_id).values(error=error))

    async def _load(self, batch_id: str) -> Batch:
        async with self._store.read() as db:
            row = (await db.execute(select(batches).where(batches.c.id == batch_id))).one()
        return Batch.from_row(row._mapping)


def _invalid(entry: dict[str, Any]) -> InvalidUrl:
    return InvalidUrl(index=int(entry["index"]), url=str(entry["url"]), reason=str(entry["reason"]))
