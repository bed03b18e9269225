"""Firing schedules at their cron times, each due time exactly once.

Every pass (``tick``) looks for enabled schedules whose ``next_run_at`` has come. Whoever moves
``next_run_at`` on (a compare-and-set) records the run in the same transaction, so a due time
fires once however many schedulers share the store, and a restarted gateway finds it moved.

Due times missed while no scheduler ran are not lost: those within ``grace`` of now each fire,
late, in order. If the first missed time is older than ``grace``, the outage was longer: the
schedule fires once, for its latest due time, and goes on from now.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import insert, select

from gateway.clock import Clock, timestamp, utc_now
from gateway.schedules.models import RunOutcome, RunTrigger, Schedule, ScheduleRun
from gateway.schedules.runs import ScheduleRunner, run_values
from gateway.store import Store
from gateway.store.moves import compare_and_set
from gateway.store.tables import schedule_runs, schedules

log = logging.getLogger(__name__)

# A run claimed this long ago and still not started lost its scheduler: another one starts it.
ORPHANED_AFTER = timedelta(seconds=60)
# Runs fired later than this say so.
LATE_NOTE_AFTER = timedelta(seconds=30)


class Scheduler:
    name = "scheduler"
    # Cron times are whole minutes: a pass a second fires each within a second of its time.
    interval = 1.0

    def __init__(
        self, store: Store, runner: ScheduleRunner, grace: timedelta, clock: Clock = utc_now
    ) -> None:
        self._store = store
        self._runner = runner
        self._grace = grace
        self._clock = clock

    async def tick(self) -> None:
        """Fire what is due, and start the runs a scheduler claimed and then lost."""
        now = self._clock()
        async with self._store.read() as db:
            rows = await db.execute(
                select(schedules)
                .where(schedules.c.enabled.is_(True), schedules.c.next_run_at <= now)
                .order_by(schedules.c.next_run_at)
            )
            due = [Schedule.from_row(row._mapping) for row in rows]
        for schedule in due:
            try:
                await self._fire(schedule, now)
            except Exception:
                # One schedule's trouble never holds up the others; a run it claimed is resumed.
                log.exception("schedule %s (%s) could not fire", schedule.id, schedule.name)
        await self._resume_orphans(now)

    async def _fire(self, schedule: Schedule, now: datetime) -> None:
        times = schedule.times
        while schedule.next_run_at is not None and schedule.next_run_at <= now:
            due_at, message = schedule.next_run_at, None
            late = now - due_at
            if late <= self._grace:
                following = times.next_after(due_at)
                if late > LATE_NOTE_AFTER:
                    message = f"fired {int(late.total_seconds())} s late: no scheduler ran at its time"
            else:
                latest = times.latest_until(now) or due_at
                following = times.next_after(now)
                if latest != due_at:
                    message = (
                        f"no scheduler ran from {timestamp(due_at)} to {timestamp(latest)}, longer than "
                        f"the grace period of {self._grace.total_seconds():g} s: the due times "
                        "missed in between fire once, as this run"
                    )
                else:
                    message = f"fired {int((now - due_at).total_seconds())} s late"
                due_at = latest
            run = await self._claim(schedule, schedule.next_run_at, due_at, following, now, message)
            if run is None:
                return  # another scheduler fired it, or the schedule changed meanwhile
            run = await self._runner.start(schedule, run)
            log.info("schedule %s (%s): run %s %s", schedule.id, schedule.name, run.id, run.outcome.value)
            schedule = replace(schedule, next_run_at=following)

    async def _claim(
        self,
        schedule: Schedule,
        seen: datetime,
        due_at: datetime,
        following: datetime,
        now: datetime,
        message: str | None,
    ) -> ScheduleRun | None:
        values = run_values(schedule.id, RunTrigger.CRON, due_at, now, message)
        async with self._store.write() as db:
            taken = await compare_and_set(
                db,
                schedules,
                schedule.id,
                {"enabled": True, "next_run_at": seen},
                next_run_at=following,
                last_run_at=now,
            )
            if not taken:
                return None
            await db.execute(insert(schedule_runs).values(**values))
        return ScheduleRun.from_row(values)

    async def _resume_orphans(self, now: datetime) -> None:
        async with self._store.read() as db:
            rows = await db.execute(
                select(schedule_runs).where(
                    schedule_runs.c.outcome == RunOutcome.STARTING,
                    schedule_runs.c.fired_at < now - ORPHANED_AFTER,
                )
            )
            orphans = [ScheduleRun.from_row(row._mapping) for row in rows]
        for orphan in orphans:
            async with self._store.write() as db:
                taken = await compare_and_set(
                    db,
                    schedule_runs,
                    orphan.id,
                    {"outcome": RunOutcome.STARTING, "fired_at": orphan.fired_at},
                    fired_at=now,
                )
                row = (await db.execute(select(schedules).where(schedules.c.id == orphan.schedule_id))).one()
            if not taken:
                continue
            log.warning(
                "schedule %s: run %s lost its scheduler before it started", orphan.schedule_id, orphan.id
            )
            await self._runner.start(Schedule.from_row(row._mapping), replace(orphan, fired_at=now))
