"""What other packages may read of jobs, each on the caller's connection."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from gateway.jobs.models import JobStatus
from gateway.store import Connection
from gateway.store.tables import jobs


@dataclass(frozen=True)
class TenantQueue:
    """A tenant's spider processes now: running, waiting for a node, and when one last finished well."""

    running: int
    waiting: int
    last_finished_at: datetime | None


async def tenant_queue(db: Connection, tenant_id: str) -> TenantQueue:
    counts = await db.execute(
        select(jobs.c.status, func.count())
        .where(jobs.c.tenant_id == tenant_id, jobs.c.status.in_((JobStatus.PENDING, JobStatus.RUNNING)))
        .group_by(jobs.c.status)
    )
    by_status = {JobStatus(status): int(count) for status, count in counts.tuples()}
    last = await db.execute(
        select(func.max(jobs.c.finished_at)).where(
            jobs.c.tenant_id == tenant_id, jobs.c.status == JobStatus.FINISHED
        )
    )
    return TenantQueue(
        running=by_status.get(JobStatus.RUNNING, 0),
        waiting=by_status.get(JobStatus.PENDING, 0),
        last_finished_at=last.scalar_one_or_none(),
    )


@dataclass(frozen=True)
class BatchJob:
    """One spider process of a batch, as far as the batch's progress needs it."""

    id: str
    public_id: str
    batch_id: str
    status: JobStatus
    settled: bool
    started: bool
    close_reason: str | None
    error: str | None
    cancel_requested: bool


async def job_of_batch(db: Connection, batch_id: str, job_id: str) -> BatchJob | None:
    """One spider process of the batch (asked at every claim of URLs, so by key)."""
    found = await _batch_jobs(db, jobs.c.batch_id == batch_id, jobs.c.id == job_id)
    return found[0] if found else None


async def jobs_of_batches(db: Connection, batch_ids: Collection[str]) -> list[BatchJob]:
    if not batch_ids:
        return []
    return await _batch_jobs(db, jobs.c.batch_id.in_(list(batch_ids)))


async def _batch_jobs(db: Connection, *where: Any) -> list[BatchJob]:
    rows = await db.execute(
        select(
            jobs.c.id,
            jobs.c.public_id,
            jobs.c.batch_id,
            jobs.c.status,
            jobs.c.settled,
            jobs.c.started_at,
            jobs.c.close_reason,
            jobs.c.error,
            jobs.c.cancel_requested_at,
        ).where(*where)
    )
    return [
        BatchJob(
            id=row.id,
            public_id=row.public_id,
            batch_id=row.batch_id,
            status=JobStatus(row.status),
            settled=bool(row.settled),
            started=row.started_at is not None,
            close_reason=row.close_reason,
            error=row.error,
            cancel_requested=row.cancel_requested_at is not None,
        )
        for row in rows
    ]


async def public_id_taken(db: Connection, tenant_id: str, public_id: str) -> bool:
    """Whether the tenant has a job with this id."""
    query = select(jobs.c.id).where(jobs.c.tenant_id == tenant_id, jobs.c.public_id == public_id)
    return (await db.execute(query)).first() is not None


async def statuses_of_schedule_jobs(
    db: Connection, schedule_ids: Collection[str], public_ids: Collection[str]
) -> dict[str, str]:
    """The status of each job of these schedules, by the id its tenant knows."""
    rows = await db.execute(
        select(jobs.c.public_id, jobs.c.status).where(
            jobs.c.schedule_id.in_(list(schedule_ids)), jobs.c.public_id.in_(list(public_ids))
        )
    )
    return {row.public_id: str(row.status) for row in rows}
