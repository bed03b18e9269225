"""The scheduler driven by a clock the tests move: exactly-once firing across restarts, two
schedulers on one store, outages shorter and longer than the grace period, daylight-saving
changes, overlap, and schedules whose spider or key is gone.

The gateway's own services run on a real SQLite store. Their scrapyd node does not answer, so the
jobs a schedule starts are recorded and wait for a node: what a schedule started is read from the
store, and nothing here sleeps. ``test_schedules.py`` runs schedules against a real scrapyd.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select

from gateway.accounts.keys import ApiKey
from gateway.catalog.spiders import spider_id
from gateway.config import Settings
from gateway.platform import Platform
from gateway.schedules.models import Overlap, Schedule, ScheduleRun, ScheduleSpec
from gateway.schedules.runs import ScheduleRunner
from gateway.schedules.scheduler import Scheduler
from gateway.store.tables import schedule_runs, spiders
from tests.forward_proxy import closed_port

PROJECT = "shop"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now


class Gateway:
    """One gateway process's services and scheduler, on the store in ``data_dir``."""

    def __init__(self, platform: Platform, scheduler: Scheduler) -> None:
        self.platform = platform
        self.scheduler = scheduler

    async def runs(self, schedule: Schedule) -> list[ScheduleRun]:
        async with self.platform.store.read() as db:
            rows = await db.execute(
                select(schedule_runs)
                .where(schedule_runs.c.schedule_id == schedule.id)
                .order_by(schedule_runs.c.fired_at, schedule_runs.c.due_at)
            )
            return [ScheduleRun.from_row(row._mapping) for row in rows]

    async def due_times(self, schedule: Schedule) -> list[datetime | None]:
        return [run.due_at for run in await self.runs(schedule)]

    async def schedule(self, schedule: Schedule) -> Schedule:
        return await self.platform.schedules.find(schedule.id)


@asynccontextmanager
async def gateway(data_dir: Path, clock: Clock, grace_seconds: float = 600) -> AsyncIterator[Gateway]:
    settings = Settings(
        data_dir=data_dir,
        scrapyd_urls=(f"http://127.0.0.1:{closed_port()}",),
        deploy_builtin_project=False,
        schedule_grace_seconds=grace_seconds,
    )
    platform = Platform(settings)
    await platform.store.migrate()
    scheduler = Scheduler(
        platform.store, platform.schedule_runner, timedelta(seconds=grace_seconds), clock=clock
    )
    try:
        served = Gateway(platform, scheduler)
        await deployed(served, "prices")
        yield served
    finally:
        await platform.http.aclose()
        await platform.store.close()


async def deployed(gateway: Gateway, name: str) -> None:
    now = datetime.now(UTC)
    async with gateway.platform.store.write() as db:
        if (await db.execute(select(spiders).where(spiders.c.name == name))).first() is not None:
            return
        await db.execute(
            insert(spiders).values(
                id=spider_id(PROJECT, name), project=PROJECT, name=name, created_at=now, updated_at=now
            )
        )


async def tenant_key(gateway: Gateway) -> ApiKey:
    key, _ = await gateway.platform.keys.create("shop team")
    return key


async def spider_schedule(
    gateway: Gateway,
    key: ApiKey,
    cron: str,
    clock: Clock,
    timezone: str = "UTC",
    overlap: Overlap = Overlap.ALLOW,
    spider: str = "prices",
) -> Schedule:
    spec = ScheduleSpec(
        name=f"{spider} {cron}",
        cron=cron,
        timezone=timezone,
        spider_name=spider,
        arguments={"category": "books"},
        overlap=overlap,
    )
    return await gateway.platform.schedules.create(key, spec, now=clock())


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def run(coroutine: object) -> None:
    asyncio.run(coroutine)  # type: ignore[arg-type]


def test_each_due_time_fires_once_and_its_job_carries_the_schedule(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(at("2026-06-01T10:05:00"))
        async with gateway(tmp_path, clock) as gw:
            key = await tenant_key(gw)
            schedule = await spider_schedule(gw, key, "0 * * * *", clock)
            assert schedule.next_run_at == at("2026-06-01T11:00:00")

            clock.set(at("2026-06-01T10:59:59"))
            await gw.scheduler.tick()
            assert await gw.runs(schedule) == []

            for moment in ("11:00:00", "11:00:01", "11:00:30", "12:00:00", "12:00:05"):
                clock.set(at(f"2026-06-01T{moment}"))
                await gw.scheduler.tick()

            runs = await gw.runs(schedule)
            assert [run.due_at for run in runs] == [at("2026-06-01T11:00:00"), at("2026-06-01T12:00:00")]
            assert [run.outcome for run in runs] == ["started", "started"]
            jobs = await gw.platform.jobs.search(key, schedule_id=schedule.id)
            assert sorted(job.public_id for job in jobs) == sorted(str(run.job_id) for run in runs)
            assert all(job.arguments == {"category": "books"} and job.spider_name == "prices" for job in jobs)
            current = await gw.schedule(schedule)
            assert current.next_run_at == at("2026-06-01T13:00:00")
            assert current.last_run_at == at("2026-06-01T12:00:00")

    run(scenario())


def test_a_restart_mid_window_neither_repeats_nor_loses_the_due_time(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(at("2026-06-01T01:00:00"))
        async with gateway(tmp_path, clock) as first:
            schedule = await spider_schedule(first, await tenant_key(first), "0 2 * * *", clock)
            clock.set(at("2026-06-01T02:00:00.300"))
            await first.scheduler.tick()
            assert await first.due_times(schedule) == [at("2026-06-01T02:00:00")]
        # The gateway restarts a few seconds later, still within the minute of the due time.
        clock.set(at("2026-06-01T02:00:09"))
        async with gateway(tmp_path, clock) as second:
            await second.scheduler.tick()
            assert await second.due_times(schedule) == [at("2026-06-01T02:00:00")]
            # It was down over the next due time, for less than the grace period: that one fires late.
        clock.set(at("2026-06-02T02:07:00"))
        async with gateway(tmp_path, clock) as third:
            await third.scheduler.tick()
            await third.scheduler.tick()
            runs = await third.runs(schedule)
            assert [run.due_at for run in runs] == [at("2026-06-01T02:00:00"), at("2026-06-02T02:00:00")]
            assert runs[1].message == "fired 420 s late: no scheduler ran at its time"
            assert (await third.schedule(schedule)).next_run_at == at("2026-06-03T02:00:00")

    run(scenario())


def test_two_schedulers_on_one_store_fire_each_due_time_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(at("2026-06-01T09:58:00"))
        async with gateway(tmp_path, clock) as one, gateway(tmp_path, clock) as other:
            key = await tenant_key(one)
            schedules = [await spider_schedule(one, key, "*/5 * * * *", clock) for _ in range(3)]
            for minute in range(0, 30):
                clock.set(at("2026-06-01T10:00:00") + timedelta(minutes=minute, seconds=1))
                # Both gateways' passes run at once, twice each, as their loops would overlap.
                await asyncio.gather(*(gw.scheduler.tick() for gw in (one, other, one, other)))

            expected = [at("2026-06-01T10:00:00") + timedelta(minutes=5 * n) for n in range(6)]
            for schedule in schedules:
                assert await one.due_times(schedule) == expected
                jobs = await one.platform.jobs.search(key, schedule_id=schedule.id)
                assert len(jobs) == 6

    run(scenario())


def test_an_outage_within_the_grace_period_fires_every_missed_time_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(at("2026-06-01T10:01:00"))
        async with gateway(tmp_path, clock, grace_seconds=1800) as gw:
            schedule = await spider_schedule(gw, await tenant_key(gw), "*/5 * * * *", clock)
            # Down from 10:01 to 10:17: 10:05, 10:10 and 10:15 were missed.
            clock.set(at("2026-06-01T10:17:00"))
            await gw.scheduler.tick()
            await gw.scheduler.tick()

            assert await gw.due_times(schedule) == [
                at("2026-06-01T10:05:00"),
                at("2026-06-01T10:10:00"),
                at("2026-06-01T10:15:00"),
            ]
            assert (await gw.schedule(schedule)).next_run_at == at("2026-06-01T10:20:00")

    run(scenario())


def test_an_outage_longer_than_the_grace_period_fires_once_on_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(at("2026-06-01T10:01:00"))
        async with gateway(tmp_path, clock, grace_seconds=600) as gw:
            schedule = await spider_schedule(gw, await tenant_key(gw), "*/15 * * * *", clock)
            # Down from 10:01 to 13:20: thirteen due times were missed.
            clock.set(at("2026-06-01T13:20:00"))
            for _ in range(3):
                await gw.scheduler.tick()

            runs = await gw.runs(schedule)
            assert [run.due_at for run in runs] == [at("2026-06-01T13:15:00")]
            assert runs[0].outcome == "started"
            assert runs[0].message is not None
            assert (
                "no scheduler ran from 2026-06-01T10:15:00.000Z to 2026-06-01T13:15:00.000Z"
                in runs[0].message
            )
            assert (await gw.schedule(schedule)).next_run_at == at("2026-06-01T13:30:00")

            clock.set(at("2026-06-01T13:30:00"))
            await gw.scheduler.tick()
            assert len(await gw.runs(schedule)) == 2

    run(scenario())


async def passes_every_five_minutes(gw: Gateway, clock: Clock, start: datetime, days: int) -> None:
    for step in range(days * 24 * 12):
        clock.set(start + timedelta(minutes=5 * step))
        await gw.scheduler.tick()


def test_a_daily_time_the_spring_change_skips_fires_once_when_the_clock_jumps(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(at("2026-03-27T12:00:00"))
        async with gateway(tmp_path, clock) as gw:
            key = await tenant_key(gw)
            daily = await spider_schedule(gw, key, "30 2 * * *", clock, timezone="Europe/Berlin")
            await passes_every_five_minutes(gw, clock, clock(), days=3)

            # 29 March has no 02:30 in Berlin: it runs once, at 03:00 CEST (01:00 UTC).
            assert await gw.due_times(daily) == [
                at("2026-03-28T01:30:00"),
                at("2026-03-29T01:00:00"),
                at("2026-03-30T00:30:00"),
            ]

    run(scenario())


def test_the_autumn_change_fires_a_daily_time_once_and_an_hourly_one_25_times(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(at("2026-10-23T12:00:00"))
        async with gateway(tmp_path, clock) as gw:
            key = await tenant_key(gw)
            daily = await spider_schedule(gw, key, "30 2 * * *", clock, timezone="Europe/Berlin")
            hourly = await spider_schedule(gw, key, "0 * * * *", clock, timezone="Europe/Berlin")
            await passes_every_five_minutes(gw, clock, clock(), days=3)

            # 25 October has 02:30 twice in Berlin: it runs once, at the first (00:30 UTC).
            assert await gw.due_times(daily) == [
                at("2026-10-24T00:30:00"),
                at("2026-10-25T00:30:00"),
                at("2026-10-26T01:30:00"),
            ]
            # Every real hour: Berlin's 25 October (22:00 UTC the day before to 23:00 UTC) has 25.
            day = [
                due
                for due in await gw.due_times(hourly)
                if due is not None and at("2026-10-24T22:00:00") <= due < at("2026-10-25T23:00:00")
            ]
            assert len(day) == 25

    run(scenario())


def test_overlap_skip_waits_for_the_previous_run_and_allow_does_not(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(at("2026-06-01T09:30:00"))
        async with gateway(tmp_path, clock) as gw:
            key = await tenant_key(gw)
            skipping = await spider_schedule(gw, key, "0 * * * *", clock, overlap=Overlap.SKIP)
            allowing = await spider_schedule(gw, key, "0 * * * *", clock, overlap=Overlap.ALLOW)
            for moment in ("10:00", "11:00"):
                clock.set(at(f"2026-06-01T{moment}:00"))
                await gw.scheduler.tick()

            first, second = await gw.runs(skipping)
            assert (first.outcome, second.outcome) == ("started", "skipped")
            assert (
                second.message == f"skipped: the previous run is still going (job {first.job_id} is pending)"
            )
            assert [run.outcome for run in await gw.runs(allowing)] == ["started", "started"]

            # Once the job has ended, the next due time starts a job again.
            assert first.job_id is not None
            await gw.platform.jobs.cancel(key, first.job_id)
            clock.set(at("2026-06-01T12:00:00"))
            await gw.scheduler.tick()
            assert [run.outcome for run in await gw.runs(skipping)] == ["started", "skipped", "started"]

    run(scenario())


def test_a_schedule_whose_spider_is_gone_is_disabled_and_the_others_still_fire(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(at("2026-06-01T09:30:00"))
        async with gateway(tmp_path, clock) as gw:
            await deployed(gw, "stock")
            key = await tenant_key(gw)
            orphaned = await spider_schedule(gw, key, "0 * * * *", clock, spider="stock")
            healthy = await spider_schedule(gw, key, "0 * * * *", clock)
            async with gw.platform.store.write() as db:
                await db.execute(delete(spiders).where(spiders.c.name == "stock"))

            for moment in ("10:00", "11:00"):
                clock.set(at(f"2026-06-01T{moment}:00"))
                await gw.scheduler.tick()

            disabled = await gw.schedule(orphaned)
            assert not disabled.enabled
            assert disabled.next_run_at is None
            assert disabled.disabled_reason == "its spider 'stock' (project 'shop') no longer exists"
            [failed] = await gw.runs(orphaned)
            assert failed.outcome == "failed"
            assert (
                failed.message
                == "its spider 'stock' (project 'shop') no longer exists; the schedule was disabled"
            )
            assert [run.outcome for run in await gw.runs(healthy)] == ["started", "started"]

            # Enabled again once the spider is back, it runs from the next due time on.
            await deployed(gw, "stock")
            enabled = await gw.platform.schedules.update(
                key, orphaned.id, ScheduleSpec(enabled=True), now=clock()
            )
            assert enabled.disabled_reason is None
            assert enabled.next_run_at == at("2026-06-01T12:00:00")

    run(scenario())


def test_a_revoked_key_disables_its_schedules(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(at("2026-06-01T09:30:00"))
        async with gateway(tmp_path, clock) as gw:
            key = await tenant_key(gw)
            schedule = await spider_schedule(gw, key, "0 * * * *", clock)
            await gw.platform.keys.revoke(key.id)
            clock.set(at("2026-06-01T10:00:00"))
            await gw.scheduler.tick()

            current = await gw.schedule(schedule)
            assert not current.enabled
            assert current.disabled_reason == "the API key that created it was revoked"
            assert await gw.platform.jobs.search(key, schedule_id=schedule.id) == []

    run(scenario())


class StoppedBeforeStarting(ScheduleRunner):
    def __init__(self, platform: Platform) -> None:
        super().__init__(
            platform.store,
            platform.keys,
            platform.catalog,
            platform.jobs,
            platform.batches,
            platform.datasources,
        )

    async def start(self, schedule: Schedule, run: ScheduleRun) -> ScheduleRun:
        raise asyncio.CancelledError


def test_a_run_whose_scheduler_died_before_starting_it_is_started_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(at("2026-06-01T09:30:00"))
        async with gateway(tmp_path, clock) as gw:
            key = await tenant_key(gw)
            schedule = await spider_schedule(gw, key, "0 * * * *", clock)
            # The gateway stops (its scheduler task is cancelled) after claiming 10:00, before the job.
            dying = Scheduler(gw.platform.store, StoppedBeforeStarting(gw.platform), timedelta(600), clock)
            clock.set(at("2026-06-01T10:00:00"))
            with pytest.raises(asyncio.CancelledError):
                await dying.tick()
            [claimed] = await gw.runs(schedule)
            clock.set(at("2026-06-01T10:00:30"))
            await gw.scheduler.tick()
            assert (await gw.runs(schedule))[0].outcome == "starting"  # its scheduler may still be at it

            clock.set(at("2026-06-01T10:01:30"))
            await gw.scheduler.tick()
            await gw.scheduler.tick()

            [resumed] = [run for run in await gw.runs(schedule) if run.id == claimed.id]
            assert resumed.outcome == "started"
            assert resumed.job_id == claimed.id
            jobs = await gw.platform.jobs.search(key, schedule_id=schedule.id)
            assert [job.public_id for job in jobs] == [claimed.id]

    run(scenario())
