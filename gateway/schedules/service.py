"""Cron schedules: a spider's job, a batch or a datasource recrawl, started at each cron time.

``ScheduleService`` creates, reads, changes and deletes a tenant's schedules and runs them by
hand; ``gateway.schedules.scheduler`` fires them when they are due and ``gateway.schedules.runs`` starts
what a run starts. Everything lives in the store, so schedules and their history outlive restarts.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from gateway.accounts.keys import ApiKey
from gateway.batches.service import BatchService
from gateway.catalog.spiders import Spider, SpiderCatalog
from gateway.clock import utc_now
from gateway.datasources.service import DatasourceService
from gateway.errors import BadRequest, Conflict, NotFound
from gateway.jobs.service import INTERNAL_SPIDERS, encode_arguments
from gateway.schedules.cron import CronTimes
from gateway.schedules.events import RESOURCE_TYPE, check_events
from gateway.schedules.models import (
    Overlap,
    RunTrigger,
    Schedule,
    ScheduleRun,
    ScheduleSpec,
    ScheduleTarget,
)
from gateway.schedules.runs import ScheduleRunner
from gateway.store import Connection, Store
from gateway.store.tables import schedule_runs, schedules
from gateway.webhooks.models import WebhookTarget
from gateway.webhooks.outbox import resubscribe, subscribe, subscription_of, unsubscribe

# Runs shown with a schedule.
RECENT_RUNS = 10
MAX_NAME = 200


class ScheduleService:
    """A tenant's schedules, on behalf of an API key."""

    def __init__(
        self,
        store: Store,
        catalog: SpiderCatalog,
        batch_service: BatchService,
        datasource_service: DatasourceService,
        runner: ScheduleRunner,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._batches = batch_service
        self._datasources = datasource_service
        self._runner = runner

    async def create(self, key: ApiKey, spec: ScheduleSpec, now: datetime | None = None) -> Schedule:
        now = now or utc_now()
        if spec.name is None or spec.cron is None:
            raise BadRequest("a schedule needs a name and a cron expression")
        if len(spec.targets) != 1:
            raise BadRequest("give exactly one of spider_id/spider_name, batch or datasource_id")
        times = CronTimes.parse(spec.cron, spec.timezone or "UTC")
        target = next(iter(spec.targets))
        target_values = await self._target_values(key, target, spec)
        if spec.webhook is not None:
            check_events(target, spec.webhook.events or ())
        enabled = spec.enabled is not False
        schedule_id = str(uuid.uuid4())
        values: dict[str, Any] = {"arguments": {}} | target_values
        async with self._store.write() as db:
            await db.execute(
                insert(schedules).values(
                    id=schedule_id,
                    tenant_id=key.tenant_id,
                    api_key_id=key.id,
                    name=_name(spec.name),
                    cron=times.expression,
                    timezone=times.timezone,
                    target=target,
                    enabled=enabled,
                    overlap=spec.overlap or Overlap.SKIP,
                    next_run_at=times.next_after(now) if enabled else None,
                    created_at=now,
                    updated_at=now,
                    **values,
                )
            )
            if spec.webhook is not None:
                await subscribe(db, key.tenant_id, schedule_id, RESOURCE_TYPE, spec.webhook)
        return await self.get(key, schedule_id)

    async def update(
        self, key: ApiKey, schedule_id: str, spec: ScheduleSpec, now: datetime | None = None
    ) -> Schedule:
        """Change what ``spec`` gives. A new cron, time zone or enabling counts from now on."""
        now = now or utc_now()
        schedule = await self.get(key, schedule_id)
        if spec.targets - {schedule.target}:
            raise BadRequest(
                f"this schedule starts a {schedule.target.value}; create another schedule for another target"
            )
        values: dict[str, Any] = {"updated_at": now}
        if spec.name is not None:
            values["name"] = _name(spec.name)
        if spec.targets or spec.arguments is not None:
            values |= await self._target_values(key, schedule.target, spec, schedule)
        times = CronTimes.parse(
            schedule.cron if spec.cron is None else spec.cron,
            schedule.timezone if spec.timezone is None else spec.timezone,
        )
        values |= {"cron": times.expression, "timezone": times.timezone}
        if spec.overlap is not None:
            values["overlap"] = spec.overlap
        enabled = schedule.enabled if spec.enabled is None else spec.enabled
        values["enabled"] = enabled
        if not enabled:
            values["next_run_at"] = None
            if spec.enabled is False:
                values["disabled_reason"] = None
        elif not schedule.enabled or times != schedule.times:
            values |= {"next_run_at": times.next_after(now), "disabled_reason": None}
        if spec.webhook is not None:
            check_events(schedule.target, spec.webhook.events or ())
        async with self._store.write() as db:
            changed = await db.execute(
                update(schedules).where(schedules.c.id == schedule.id).values(**values)
            )
            if changed.rowcount != 1:  # deleted meanwhile: no webhook outlives it
                raise NotFound("Schedule not found")
            await self._change_webhook(db, key, schedule, spec)
        return await self.get(key, schedule.id)

    async def _change_webhook(
        self, db: Connection, key: ApiKey, schedule: Schedule, spec: ScheduleSpec
    ) -> None:
        """A new webhook takes the events not yet delivered too; a removed one drops them."""
        if spec.remove_webhook:
            await unsubscribe(db, schedule.id)
        elif spec.webhook is not None:
            await resubscribe(db, key.tenant_id, schedule.id, RESOURCE_TYPE, spec.webhook)

    async def webhook(self, schedule: Schedule) -> WebhookTarget | None:
        """Where the schedule's runs are told, if anywhere."""
        async with self._store.read() as db:
            subscription = await subscription_of(db, schedule.id)
        return None if subscription is None else subscription.target

    async def get(self, key: ApiKey, schedule_id: str) -> Schedule:
        """The tenant's schedule; another tenant's is not found, like a missing one."""
        async with self._store.read() as db:
            row = (
                await db.execute(
                    select(schedules).where(
                        schedules.c.id == schedule_id, schedules.c.tenant_id == key.tenant_id
                    )
                )
            ).first()
        if row is None:
            raise NotFound("Schedule not found")
        return Schedule.from_row(row._mapping)

    async def search(self, tenant_id: str | None) -> list[Schedule]:
        """A tenant's schedules (every tenant's with None), oldest first."""
        query = select(schedules).order_by(schedules.c.created_at, schedules.c.id)
        if tenant_id is not None:
            query = query.where(schedules.c.tenant_id == tenant_id)
        async with self._store.read() as db:
            return [Schedule.from_row(row._mapping) for row in await db.execute(query)]

    async def find(self, schedule_id: str) -> Schedule:
        """Any tenant's schedule, for operators."""
        async with self._store.read() as db:
            row = (await db.execute(select(schedules).where(schedules.c.id == schedule_id))).first()
        if row is None:
            raise NotFound(f"no schedule {schedule_id}")
        return Schedule.from_row(row._mapping)

    async def delete(self, key: ApiKey, schedule_id: str) -> None:
        """Gone with its run history and its webhook; the jobs it started stay, still carrying its id."""
        schedule = await self.get(key, schedule_id)
        async with self._store.write() as db:
            await db.execute(delete(schedules).where(schedules.c.id == schedule.id))
            await unsubscribe(db, schedule.id)

    async def recent_runs(self, schedule_id: str, limit: int = RECENT_RUNS) -> list[ScheduleRun]:
        """The schedule's newest runs first, each with the status of what it started."""
        async with self._store.read() as db:
            rows = await db.execute(
                select(schedule_runs)
                .where(schedule_runs.c.schedule_id == schedule_id)
                .order_by(schedule_runs.c.fired_at.desc(), schedule_runs.c.id.desc())
                .limit(limit)
            )
            runs = [ScheduleRun.from_row(row._mapping) for row in rows]
        return await self._runner.with_statuses(runs)

    async def run_now(self, key: ApiKey, schedule_id: str, now: datetime | None = None) -> ScheduleRun:
        """Start the schedule's target at once, under its overlap policy (409 while it would skip)."""
        schedule = await self.get(key, schedule_id)
        going = await self._runner.still_going(schedule, exclude_run=None)
        if going is not None and schedule.overlap == Overlap.SKIP:
            raise Conflict(
                f"the schedule's previous run is still going ({going}); its overlap policy is skip"
            )
        run = await self._runner.record(schedule, RunTrigger.MANUAL, due_at=None, now=now)
        return await self._runner.start(schedule, run)

    async def _target_values(
        self, key: ApiKey, target: ScheduleTarget, spec: ScheduleSpec, current: Schedule | None = None
    ) -> dict[str, Any]:
        """The stored columns of the target ``spec`` names, checked: unknown ones are a 400."""
        if target == ScheduleTarget.SPIDER:
            arguments = (
                spec.arguments if spec.arguments is not None else (current.arguments if current else {})
            )
            encode_arguments(arguments)
            values: dict[str, Any] = {"arguments": arguments}
            if spec.spider_id or spec.spider_name:
                spider = await self._spider(spec)
                values |= {"spider_id": spider.id, "project": spider.project, "spider_name": spider.name}
            elif current is None:
                raise BadRequest("give spider_id or spider_name")
            return values
        if spec.arguments is not None:
            raise BadRequest(f"arguments are for spider schedules; this one starts a {target.value}")
        if target == ScheduleTarget.BATCH:
            if spec.batch is None:
                return {}
            await self._batches.check(
                spec.batch.urls, proxy=spec.batch.proxy, ignore_invalid=spec.batch.ignore_invalid
            )
            return {"batch": spec.batch.to_json()}
        if spec.datasource_id is None:
            return {}
        try:
            datasource = await self._datasources.get(key, spec.datasource_id)
        except NotFound:
            raise BadRequest(f"unknown datasource {spec.datasource_id!r}") from None
        return {"datasource_id": datasource.id}

    async def _spider(self, spec: ScheduleSpec) -> Spider:
        try:
            spider = await self._catalog.lookup(spec.spider_id, spec.spider_name, spec.project)
        except NotFound:
            named = spec.spider_id or spec.spider_name
            in_project = f" in project {spec.project!r}" if spec.project and not spec.spider_id else ""
            raise BadRequest(f"unknown spider {named!r}{in_project}: see GET /api/v1/spiders") from None
        if (spider.project, spider.name) in INTERNAL_SPIDERS:
            raise BadRequest(
                f"the {spider.name} spider runs only through batches and crawls: schedule a batch "
                "or a datasource instead"
            )
        return spider


def _name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise BadRequest(f"name must be 1 to {MAX_NAME} characters")
    return name
