"""Cron schedules: a spider's job, a batch or a datasource recrawl, started at each cron time.

``ScheduleService`` creates, reads, changes and deletes a tenant's schedules and runs them by
hand; ``gateway.scheduler`` fires them when they are due and ``gateway.schedule_runs`` starts
what a run starts. Everything lives in the store, so schedules and their history outlive restarts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update

from gateway.batches import BatchService
from gateway.cron import CronTimes
from gateway.datasources import DatasourceService
from gateway.errors import BadRequest, Conflict, NotFound
from gateway.jobs import INTERNAL_SPIDERS, encode_arguments
from gateway.keys import ApiKey
from gateway.proxies import ProxyChoice
from gateway.spiders import Spider, SpiderCatalog
from gateway.store import Store
from gateway.store.tables import schedule_runs, schedules
from spiders_project.pages import PageOptions

if TYPE_CHECKING:
    from gateway.schedule_runs import ScheduleRunner

# Runs shown with a schedule.
RECENT_RUNS = 10
MAX_NAME = 200


class ScheduleTarget(StrEnum):
    SPIDER = "spider"
    BATCH = "batch"
    DATASOURCE = "datasource"


class Overlap(StrEnum):
    """What a due time does while the schedule's previous run is still going."""

    SKIP = "skip"
    ALLOW = "allow"


class RunTrigger(StrEnum):
    CRON = "cron"
    MANUAL = "manual"


class RunOutcome(StrEnum):
    # Claimed by a scheduler, its target not started yet (a scheduler that died here is resumed).
    STARTING = "starting"
    STARTED = "started"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class BatchRequest:
    """A batch target: the URLs and scrape options each run scrapes, read once when it is set."""

    urls: list[Any]
    options: PageOptions
    proxy: ProxyChoice | None
    ignore_invalid: bool
    # The request as the client gave it, shown back as is.
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        proxy = None if self.proxy is None else {"type": self.proxy.type, "country": self.proxy.country}
        return {
            "urls": self.urls,
            "options": self.options.to_json(),
            "proxy": proxy,
            "ignore_invalid": self.ignore_invalid,
            "body": self.body,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchRequest:
        proxy = data.get("proxy")
        return cls(
            urls=list(data["urls"]),
            options=PageOptions.from_json(data["options"]),
            proxy=None if proxy is None else ProxyChoice(**proxy),
            ignore_invalid=bool(data["ignore_invalid"]),
            body=dict(data["body"]),
        )


@dataclass(frozen=True)
class Schedule:
    id: str
    tenant_id: str
    api_key_id: str | None
    name: str
    cron: str
    timezone: str
    target: ScheduleTarget
    project: str | None
    spider_name: str | None
    spider_id: str | None
    arguments: dict[str, Any]
    batch: BatchRequest | None
    datasource_id: str | None
    enabled: bool
    disabled_reason: str | None
    overlap: Overlap
    next_run_at: datetime | None
    last_run_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def times(self) -> CronTimes:
        return CronTimes(self.cron, self.timezone)

    @classmethod
    def from_row(cls, row: Any) -> Schedule:
        values = dict(row)
        values["target"] = ScheduleTarget(values["target"])
        values["overlap"] = Overlap(values["overlap"])
        values["enabled"] = bool(values["enabled"])
        values["batch"] = None if values["batch"] is None else BatchRequest.from_json(values["batch"])
        return cls(**values)


@dataclass(frozen=True)
class ScheduleRun:
    id: str
    schedule_id: str
    trigger: RunTrigger
    due_at: datetime | None
    fired_at: datetime
    outcome: RunOutcome
    job_id: str | None
    batch_id: str | None
    crawl_id: str | None
    message: str | None
    # The status of what the run started (a job's, a batch's or a crawl's), when it was read.
    status: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> ScheduleRun:
        values = dict(row)
        values["trigger"] = RunTrigger(values["trigger"])
        values["outcome"] = RunOutcome(values["outcome"])
        return cls(**values)


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule as a client asks for it; in a change, None leaves a field as it is."""

    name: str | None = None
    cron: str | None = None
    timezone: str | None = None
    spider_id: str | None = None
    spider_name: str | None = None
    project: str | None = None
    arguments: dict[str, Any] | None = None
    batch: BatchRequest | None = None
    datasource_id: str | None = None
    enabled: bool | None = None
    overlap: Overlap | None = None

    @property
    def targets(self) -> frozenset[ScheduleTarget]:
        """The targets it names (a schedule takes one)."""
        named = {
            ScheduleTarget.SPIDER: bool(self.spider_id or self.spider_name),
            ScheduleTarget.BATCH: self.batch is not None,
            ScheduleTarget.DATASOURCE: bool(self.datasource_id),
        }
        return frozenset(target for target, given in named.items() if given)


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
        now = now or datetime.now(UTC)
        if spec.name is None or spec.cron is None:
            raise BadRequest("a schedule needs a name and a cron expression")
        if len(spec.targets) != 1:
            raise BadRequest("give exactly one of spider_id/spider_name, batch or datasource_id")
        times = CronTimes.parse(spec.cron, spec.timezone or "UTC")
        target = next(iter(spec.targets))
        target_values = await self._target_values(key, target, spec)
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
        return await self.get(key, schedule_id)

    async def update(
        self, key: ApiKey, schedule_id: str, spec: ScheduleSpec, now: datetime | None = None
    ) -> Schedule:
        """Change what ``spec`` gives. A new cron, time zone or enabling counts from now on."""
        now = now or datetime.now(UTC)
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
        async with self._store.write() as db:
            await db.execute(update(schedules).where(schedules.c.id == schedule.id).values(**values))
        return await self.get(key, schedule.id)

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
        """Gone with its run history; the jobs it started stay, still carrying its id."""
        schedule = await self.get(key, schedule_id)
        async with self._store.write() as db:
            await db.execute(delete(schedules).where(schedules.c.id == schedule.id))

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
            if spec.spider_id:
                spider = await self._catalog.get(spec.spider_id)
            else:
                assert spec.spider_name is not None
                spider = await self._catalog.find(spec.spider_name, spec.project)
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
