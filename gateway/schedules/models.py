"""What a schedule is: its target, its overlap rule, and the record of each of its runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.batches.proxies import ProxyChoice
from gateway.clock import timestamp
from gateway.schedules.cron import CronTimes
from gateway.webhooks.models import WebhookTarget
from spiders_project.pages import PageOptions


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

    def to_json(self) -> dict[str, Any]:
        """The run as its tenant reads it, in the schedule's read and in its webhook events."""
        return {
            "id": self.id,
            "trigger": self.trigger.value,
            "due_at": timestamp(self.due_at),
            "fired_at": timestamp(self.fired_at),
            "outcome": self.outcome.value,
            "job_id": self.job_id,
            "batch_id": self.batch_id,
            "crawl_id": self.crawl_id,
            "status": self.status,
            "message": self.message,
        }

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
    webhook: WebhookTarget | None = None
    # In a change: the schedule's webhook is removed.
    remove_webhook: bool = False

    @property
    def targets(self) -> frozenset[ScheduleTarget]:
        """The targets it names (a schedule takes one)."""
        named = {
            ScheduleTarget.SPIDER: bool(self.spider_id or self.spider_name),
            ScheduleTarget.BATCH: self.batch is not None,
            ScheduleTarget.DATASOURCE: bool(self.datasource_id),
        }
        return frozenset(target for target, given in named.items() if given)
