"""Starting what a schedule's run starts: a spider's job, a batch, or a datasource recrawl.

A run is recorded (``starting``) before its target starts, and the target is started under ids
taken from the run, so a run that is started again (after its scheduler died) never starts a
second job, batch or crawl. A schedule whose spider, datasource or key is gone is disabled with
the reason, and the scheduler goes on with the others. How a run went (started, failed, skipped)
is its schedule's webhook event, written with the run's outcome.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from gateway.accounts.keys import ApiKey, ApiKeys
from gateway.batches.models import BatchStatus
from gateway.batches.queries import batch_statuses
from gateway.batches.service import BatchService
from gateway.catalog.spiders import SpiderCatalog
from gateway.clock import utc_now
from gateway.datasources.queries import crawl_statuses
from gateway.datasources.service import OPEN_CRAWL_STATUSES, DatasourceService
from gateway.errors import Conflict, GatewayError, NotFound
from gateway.jobs.models import JobStatus
from gateway.jobs.queries import public_id_taken, statuses_of_schedule_jobs
from gateway.jobs.service import JobService
from gateway.schedules.events import run_event, target_webhook
from gateway.schedules.models import (
    Overlap,
    RunOutcome,
    RunTrigger,
    Schedule,
    ScheduleRun,
    ScheduleTarget,
)
from gateway.store import Store
from gateway.store.tables import schedule_runs, schedules
from gateway.webhooks.models import WebhookTarget
from gateway.webhooks.outbox import emit, subscription_of

log = logging.getLogger(__name__)

GOING = frozenset(
    {JobStatus.PENDING, JobStatus.RUNNING, BatchStatus.QUEUED, BatchStatus.RUNNING}
) | frozenset(OPEN_CRAWL_STATUSES)
# Started runs looked at to decide whether the previous run is still going.
OVERLAP_LOOKBACK = 5


class TargetGone(Exception):
    """What the schedule starts no longer exists (or may no longer be started): it is disabled."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def run_values(
    schedule_id: str, trigger: RunTrigger, due_at: datetime | None, now: datetime, message: str | None = None
) -> dict[str, Any]:
    """A new run's row: claimed, its target not started yet."""
    return {
        "id": str(uuid.uuid4()),
        "schedule_id": schedule_id,
        "trigger": trigger,
        "due_at": due_at,
        "fired_at": now,
        "outcome": RunOutcome.STARTING,
        "job_id": None,
        "batch_id": None,
        "crawl_id": None,
        "message": message,
    }


class ScheduleRunner:
    def __init__(
        self,
        store: Store,
        keys: ApiKeys,
        catalog: SpiderCatalog,
        job_service: JobService,
        batch_service: BatchService,
        datasource_service: DatasourceService,
    ) -> None:
        self._store = store
        self._keys = keys
        self._catalog = catalog
        self._jobs = job_service
        self._batches = batch_service
        self._datasources = datasource_service

    async def record(
        self, schedule: Schedule, trigger: RunTrigger, due_at: datetime | None, now: datetime | None = None
    ) -> ScheduleRun:
        """A run about to start (run by hand: the scheduler records its runs as it claims due times)."""
        now = now or utc_now()
        values = run_values(schedule.id, trigger, due_at, now)
        async with self._store.write() as db:
            await db.execute(insert(schedule_runs).values(**values))
            await db.execute(update(schedules).where(schedules.c.id == schedule.id).values(last_run_at=now))
        return await self._load(values["id"])

    async def start(self, schedule: Schedule, run: ScheduleRun) -> ScheduleRun:
        """Start the run's target and record how that went; never raises for the target's sake."""
        try:
            key = await self._key(schedule)
            if schedule.overlap == Overlap.SKIP:
                going = await self.still_going(schedule, exclude_run=run.id)
                if going is not None:
                    return await self._finish(
                        schedule,
                        run,
                        RunOutcome.SKIPPED,
                        f"skipped: the previous run is still going ({going})",
                    )
            started = await self._start_target(key, schedule, run)
        except TargetGone as gone:
            await self._disable(schedule, gone.reason)
            return await self._finish(
                schedule, run, RunOutcome.FAILED, f"{gone.reason}; the schedule was disabled"
            )
        except Conflict as exc:
            return await self._finish(schedule, run, RunOutcome.SKIPPED, f"skipped: {exc.message}")
        except GatewayError as exc:
            log.warning("schedule %s: run %s did not start: %s", schedule.id, run.id, exc.message)
            return await self._finish(schedule, run, RunOutcome.FAILED, exc.message)
        return await self._finish(schedule, run, RunOutcome.STARTED, None, **started)

    async def still_going(self, schedule: Schedule, exclude_run: str | None) -> str | None:
        """What of the schedule's recent runs is still going (e.g. "job 1f… is running"), if any."""
        query = (
            select(schedule_runs)
            .where(
                schedule_runs.c.schedule_id == schedule.id,
                schedule_runs.c.outcome.in_((RunOutcome.STARTED, RunOutcome.STARTING)),
            )
            .order_by(schedule_runs.c.fired_at.desc())
            .limit(OVERLAP_LOOKBACK)
        )
        if exclude_run is not None:
            query = query.where(schedule_runs.c.id != exclude_run)
        async with self._store.read() as db:
            runs = [ScheduleRun.from_row(row._mapping) for row in await db.execute(query)]
        for run in await self.with_statuses(runs):
            if run.outcome == RunOutcome.STARTING:
                return f"run {run.id} is starting"
            if run.status in GOING:
                kind, target_id = _target_of(run)
                return f"{kind} {target_id} is {run.status}"
        return None

    async def with_statuses(self, runs: list[ScheduleRun]) -> list[ScheduleRun]:
        """The runs, each with the current status of the job, batch or crawl it started."""
        found: dict[str, str] = {}
        async with self._store.read() as db:
            # A run's job id is the id its tenant knows: looked up among the jobs of its schedule.
            if job_ids := [run.job_id for run in runs if run.job_id]:
                schedule_ids = {run.schedule_id for run in runs}
                found |= await statuses_of_schedule_jobs(db, schedule_ids, job_ids)
            found |= await batch_statuses(db, [run.batch_id for run in runs if run.batch_id])
            found |= await crawl_statuses(db, [run.crawl_id for run in runs if run.crawl_id])
        return [_with_status(run, found) for run in runs]

    async def _start_target(self, key: ApiKey, schedule: Schedule, run: ScheduleRun) -> dict[str, str]:
        """The ids of what was started, under ids taken from the run."""
        webhook = await self._target_webhook(schedule)
        if schedule.target == ScheduleTarget.SPIDER:
            return {"job_id": await self._start_job(key, schedule, run, webhook)}
        if schedule.target == ScheduleTarget.BATCH:
            assert schedule.batch is not None
            request = schedule.batch
            batch, _ = await self._batches.create(
                key,
                "firecrawl",
                request.urls,
                request.options,
                proxy=request.proxy,
                ignore_invalid=request.ignore_invalid,
                idempotency_key=f"schedule-run-{run.id}",
                webhook=webhook,
            )
            return {"batch_id": batch.id}
        assert schedule.datasource_id is not None
        try:
            crawl = await self._datasources.start_crawl(
                key, schedule.datasource_id, crawl_id=run.id, webhook=webhook
            )
        except NotFound:
            raise TargetGone("its datasource no longer exists") from None
        return {"crawl_id": crawl.id}

    async def _target_webhook(self, schedule: Schedule) -> WebhookTarget | None:
        """The webhook of what a run starts, when the schedule's webhook names its events."""
        async with self._store.read() as db:
            subscription = await subscription_of(db, schedule.id)
        return None if subscription is None else target_webhook(schedule.target, subscription.target)

    async def _start_job(
        self, key: ApiKey, schedule: Schedule, run: ScheduleRun, webhook: WebhookTarget | None
    ) -> str:
        job_id = run.id
        async with self._store.read() as db:
            if await public_id_taken(db, key.tenant_id, job_id):
                return job_id  # started before its scheduler could record it
        assert schedule.spider_name is not None
        gone = f"its spider {schedule.spider_name!r} (project {schedule.project!r}) no longer exists"
        try:
            spider = await self._catalog.find(schedule.spider_name, schedule.project)
        except NotFound:
            raise TargetGone(gone) from None
        try:
            job = await self._jobs.start(
                key, spider, schedule.arguments, job_id=job_id, schedule_id=schedule.id, webhook=webhook
            )
        except NotFound:
            raise TargetGone(gone) from None
        return job.public_id

    async def _key(self, schedule: Schedule) -> ApiKey:
        try:
            key = await self._keys.get(schedule.api_key_id) if schedule.api_key_id else None
        except NotFound:
            key = None
        if key is None or key.revoked_at is not None:
            raise TargetGone("the API key that created it was revoked")
        return key

    async def _disable(self, schedule: Schedule, reason: str) -> None:
        log.warning("schedule %s (%s) disabled: %s", schedule.id, schedule.name, reason)
        async with self._store.write() as db:
            await db.execute(
                update(schedules)
                .where(schedules.c.id == schedule.id)
                .values(
                    enabled=False,
                    disabled_reason=reason,
                    next_run_at=None,
                    updated_at=utc_now(),
                )
            )

    async def _finish(
        self,
        schedule: Schedule,
        run: ScheduleRun,
        outcome: RunOutcome,
        message: str | None,
        **target_ids: str,
    ) -> ScheduleRun:
        joined = "; ".join(part for part in (run.message, message) if part) or None
        ended = replace(
            run,
            outcome=outcome,
            message=joined,
            job_id=target_ids.get("job_id", run.job_id),
            batch_id=target_ids.get("batch_id", run.batch_id),
            crawl_id=target_ids.get("crawl_id", run.crawl_id),
        )
        event = run_event(schedule, ended)
        async with self._store.write() as db:
            await db.execute(
                update(schedule_runs)
                .where(schedule_runs.c.id == run.id)
                .values(outcome=outcome, message=joined, **target_ids)
            )
            if event is not None:
                await emit(db, schedule.id, [event], lifecycle=False)
        return (await self.with_statuses([await self._load(run.id)]))[0]

    async def _load(self, run_id: str) -> ScheduleRun:
        async with self._store.read() as db:
            row = (await db.execute(select(schedule_runs).where(schedule_runs.c.id == run_id))).one()
        return ScheduleRun.from_row(row._mapping)


def _target_of(run: ScheduleRun) -> tuple[str, str | None]:
    if run.job_id:
        return "job", run.job_id
    if run.batch_id:
        return "batch", run.batch_id
    return "crawl", run.crawl_id


def _with_status(run: ScheduleRun, found: dict[str, str]) -> ScheduleRun:
    _, target_id = _target_of(run)
    if target_id is None:
        return run
    # A batch's results (and with them the batch) go after its retention period.
    status = found.get(target_id, "expired" if run.batch_id else "deleted")
    return replace(run, status=status)
