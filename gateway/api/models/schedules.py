"""Cron schedules of jobs, batches and recrawls."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from gateway.api.models.common import Model
from gateway.api.models.fields import Body
from gateway.api.models.firecrawl import BatchScrapeBody
from gateway.api.models.webhooks import Webhook
from gateway.schedules.models import Overlap, RunOutcome, RunTrigger, ScheduleTarget


class ScheduleBody(Body):
    """A schedule, or the changes to one: one target (a spider, a batch or a datasource)."""

    # Unknown fields are refused: a typo would otherwise change nothing, silently.
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    cron: str | None = Field(None, description="Five-field cron expression, or @hourly, @daily, ...")
    timezone: str | None = Field(None, description="IANA zone, such as Europe/Paris")
    spider_id: str | None = None
    spider_name: str | None = None
    project: str | None = None
    arguments: dict[str, Any] | None = None
    batch: BatchScrapeBody | None = Field(None, description="A Firecrawl v2 batch scrape request")
    datasource_id: str | None = None
    enabled: bool | None = None
    overlap: Overlap | None = Field(None, strict=False)
    webhook: Webhook | None = Field(
        None,
        description=(
            "Told of each run: run.started, run.failed, run.skipped (default: the failed and skipped "
            "ones), and of what it starts when its events are named (job.finished, "
            "batch_scrape.page, crawl.completed...). In a change, null removes it."
        ),
    )


class ScheduleRun(Model):
    id: str
    trigger: RunTrigger
    due_at: str | None
    fired_at: str | None
    outcome: RunOutcome
    job_id: str | None
    batch_id: str | None
    crawl_id: str | None
    status: str | None
    message: str | None


class ScheduleWebhook(Model):
    url: str
    events: list[str]
    metadata: dict[str, Any]
    header_names: list[str] = Field(description="The headers sent with each event (values not shown)")


class Schedule(Model):
    id: str
    name: str
    cron: str
    timezone: str
    description: str
    enabled: bool
    disabled_reason: str | None
    overlap: Overlap
    target: ScheduleTarget
    spider_id: str | None
    spider_name: str | None
    project: str | None
    arguments: dict[str, Any]
    batch: dict[str, Any] | None
    datasource_id: str | None
    next_run_at: str | None
    last_run_at: str | None
    created_at: str | None
    updated_at: str | None
    webhook: ScheduleWebhook | None
    last_runs: list[ScheduleRun]
