"""Moving batches along: running once a spider runs, finished once every page is accounted for.

Runs every sync interval (``advance``) and every so often (``expire``). A spider process that dies
gives its unfetched pages back; when a batch's processes have all ended with pages left, it gets new
ones (a few times at most) before those pages end as failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from gateway.accounts.credits import charge_credits
from gateway.accounts.keys import ApiKeys
from gateway.batches.models import BATCH_MOVES, BatchKind, BatchStatus, PageStatus
from gateway.batches.service import NEVER_STARTED_AFTER, BatchPolicy, BatchService
from gateway.clock import utc_now
from gateway.errors import GatewayError
from gateway.jobs.models import JobStatus
from gateway.jobs.queries import BatchJob, jobs_of_batches
from gateway.store import Store
from gateway.store.moves import move
from gateway.store.tables import batch_pages, batches
from gateway.webhooks.models import CANCELLED
from gateway.webhooks.outbox import Event, emit
from node.outcome import GATEWAY_UNREACHABLE

log = logging.getLogger(__name__)

# How many times a batch whose spider processes all ended with pages left gets new ones; each
# process that gave up for want of the gateway (an outage, not a fault of the batch) earns it one
# more, up to MAX_OUTAGE_RESTARTS.
MAX_RESTARTS = 2
MAX_OUTAGE_RESTARTS = 10
RETENTION_SWEEP_SECONDS = 60.0


@dataclass(frozen=True)
class _OpenBatch:
    id: str
    status: BatchStatus
    crawl: bool
    api_key_id: str | None
    restarts: int
    error: str | None
    created_at: datetime


class BatchProgress:
    name = "batch-progress"

    def __init__(
        self,
        store: Store,
        batch_service: BatchService,
        keys: ApiKeys,
        policy: BatchPolicy,
        interval: float = 0.2,
    ) -> None:
        self.interval = interval
        self._store = store
        self._batches = batch_service
        self._keys = keys
        self._policy = policy

    async def tick(self) -> None:
        """Mark batches running once a job runs, and finish them once every page is accounted for."""
        open_batches, by_batch = await self._open_batches()
        now = utc_now()
        for batch in open_batches:
            batch_jobs = by_batch.get(batch.id, [])
            if batch.status == BatchStatus.QUEUED and any(job.started for job in batch_jobs):
                await self._mark_running(batch.id, now)
            if not batch_jobs:
                if batch.error or now - batch.created_at > NEVER_STARTED_AFTER:
                    # Its jobs could not be started (or the gateway stopped before it started them).
                    await self._finish(batch.id, [])
                continue
            ended = [job.id for job in batch_jobs if job.settled]
            if ended:
                await self._release_claims(batch.id, ended)
            statuses = [job.status for job in batch_jobs]
            if batch.crawl:
                # A crawl finds its pages as it goes: it is over when its spider is.
                if batch.status == BatchStatus.CANCELLED or len(ended) == len(batch_jobs):
                    await self._finish(batch.id, statuses)
                continue
            if batch.status == BatchStatus.CANCELLED or not (await self._batches.counts(batch.id)).pending:
                # Every page has its record (or the batch was cancelled): done, even while the
                # spider processes are still shutting down.
                await self._finish(batch.id, statuses)
            elif len(ended) == len(batch_jobs):
                outages = sum(job.close_reason == GATEWAY_UNREACHABLE for job in batch_jobs)
                allowed = MAX_RESTARTS + min(outages, MAX_OUTAGE_RESTARTS)
                if batch.restarts < allowed and await self._restart(batch):
                    continue
                await self._finish(batch.id, statuses)

    async def _open_batches(self) -> tuple[list[_OpenBatch], dict[str, list[BatchJob]]]:
        async with self._store.read() as db:
            rows = await db.execute(
                select(
                    batches.c.id,
                    batches.c.status,
                    batches.c.kind,
                    batches.c.api_key_id,
                    batches.c.restarts,
                    batches.c.error,
                    batches.c.created_at,
                ).where(batches.c.completed_at.is_(None))
            )
            open_batches = [
                _OpenBatch(
                    row.id,
                    BatchStatus(row.status),
                    BatchKind(row.kind).discovers,
                    row.api_key_id,
                    row.restarts,
                    row.error,
                    row.created_at,
                )
                for row in rows
            ]
            if not open_batches:
                return [], {}
            by_batch: dict[str, list[BatchJob]] = {}
            for job in await jobs_of_batches(db, [batch.id for batch in open_batches]):
                by_batch.setdefault(job.batch_id, []).append(job)
        return open_batches, by_batch

    async def _mark_running(self, batch_id: str, now: datetime) -> None:
        # Only a queued batch: a cancel may have landed since the batches were read.
        async with self._store.write() as db:
            if await move(db, batches, batch_id, BATCH_MOVES, BatchStatus.RUNNING, started_at=now):
                await emit(db, batch_id, [Event("started")])

    async def _release_claims(self, batch_id: str, ended_jobs: list[str]) -> None:
        """Pages claimed by processes that have ended, and still unfetched, can be claimed again."""
        async with self._store.write() as db:
            await db.execute(
                update(batch_pages)
                .where(
                    batch_pages.c.batch_id == batch_id,
                    batch_pages.c.status == PageStatus.PENDING,
                    batch_pages.c.claimed_by.in_(ended_jobs),
                )
                .values(claimed_at=None, claimed_by=None)
            )

    async def _restart(self, batch: _OpenBatch) -> bool:
        """Start one new spider process for the batch's pages left; False if none could start."""
        if batch.api_key_id is None:
            return False
        try:
            key = await self._keys.get(batch.api_key_id)
            async with self._store.write() as db:
                await db.execute(
                    update(batches).where(batches.c.id == batch.id).values(restarts=batches.c.restarts + 1)
                )
            await self._batches.start_jobs(key, batch.id, 1)
        except GatewayError as exc:
            log.warning("batch %s could not be restarted: %s", batch.id, exc.message)
            return False
        log.warning("batch %s: its spider processes ended with pages left; started another", batch.id)
        return True

    async def _finish(self, batch_id: str, job_statuses: list[JobStatus]) -> None:
        now = utc_now()
        async with self._store.write() as db:
            row = (await db.execute(select(batches).where(batches.c.id == batch_id).with_for_update())).one()
            if row.completed_at is not None:
                return
            cancelled = row.status == BatchStatus.CANCELLED
            await db.execute(
                update(batch_pages)
                .where(batch_pages.c.batch_id == batch_id, batch_pages.c.status == PageStatus.PENDING)
                .values(
                    status=PageStatus.CANCELLED if cancelled else PageStatus.FAILED,
                    error_code="CANCELLED" if cancelled else "NOT_FETCHED",
                    error_message="the batch was cancelled before this page was fetched"
                    if cancelled
                    else "the scrape ended before this page was fetched",
                    finished_at=now,
                )
            )
            fetched, completed = await self._tally(db, batch_id)
            status, error = BatchStatus.COMPLETED, row.error
            if cancelled:
                status = BatchStatus.CANCELLED
            elif not completed and all(job == JobStatus.ERROR for job in job_statuses):
                status, error = BatchStatus.FAILED, error or "the batch's scrape jobs failed: see their logs"
            await db.execute(
                update(batches)
                .where(batches.c.id == batch_id)
                .values(
                    status=status,
                    error=error,
                    credits_used=fetched,
                    completed_at=now,
                    expires_at=now + self._policy.retention,
                )
            )
            if row.api_key_id:
                # Held credits of unfetched pages come back (a key without a limit held none).
                await charge_credits(db, row.api_key_id, fetched - row.credits_reserved)
            await emit(db, batch_id, [_end_event(status, error)])
        log.info("batch %s %s: %d pages fetched", batch_id, status.value, fetched)

    @staticmethod
    async def _tally(db: Any, batch_id: str) -> tuple[int, int]:
        """Pages that got an HTTP answer, and pages completed."""
        fetched, completed = (
            await db.execute(
                select(
                    func.count(batch_pages.c.status_code),
                    func.count().filter(batch_pages.c.status == PageStatus.COMPLETED),
                ).where(batch_pages.c.batch_id == batch_id)
            )
        ).one()
        return int(fetched), int(completed)


def _end_event(status: BatchStatus, error: str | None) -> Event:
    if status == BatchStatus.COMPLETED:
        return Event("completed")
    if status == BatchStatus.CANCELLED:
        return Event(CANCELLED, success=False, error="the batch was cancelled")
    return Event("failed", success=False, error=error or "the batch failed")


class BatchExpiry:
    """Deletes finished batches past their retention, with their pages, records and jobs."""

    name = "batch-expiry"

    def __init__(self, store: Store, retention: timedelta) -> None:
        # Often enough that a short retention is kept to within a minute.
        self.interval = min(RETENTION_SWEEP_SECONDS, retention.total_seconds())
        self._store = store

    async def tick(self) -> None:
        async with self._store.write() as db:
            result = await db.execute(
                delete(batches).where(batches.c.completed_at.is_not(None), batches.c.expires_at <= utc_now())
            )
        if result.rowcount:
            log.info("deleted %d expired batches", result.rowcount)
