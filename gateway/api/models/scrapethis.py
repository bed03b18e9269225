"""ScrapeThis-style spiders and jobs."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from gateway.api.models.common import Model
from gateway.api.models.fields import Body, Query
from gateway.api.models.webhooks import Webhook
from gateway.jobs.models import JobStatus


class SpiderListQuery(Query):
    name: str | None = Field(None, description="Only spiders whose name contains this")
    limit: int = Field(200, ge=1, le=1000)


class Spider(Model):
    id: str
    name: str
    project: str
    version: str | None
    repo_path: str | None
    description: str | None
    settings: dict[str, Any]
    created_at: str | None
    updated_at: str | None


def _spider_uuid(value: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValueError("must be a spider's UUID") from None
    return value


class StartJobBody(Body):
    """A spider by id, or by name (and project, when several have it), with its arguments."""

    spider_id: Annotated[str, AfterValidator(_spider_uuid)] | None = Field(
        None, description="The spider's UUID"
    )
    spider_name: str | None = None
    project: str | None = None
    arguments: dict[str, Any] | None = Field(None, description="Spider arguments (-a name=value)")
    webhook: Webhook | None = Field(None, description="job.started, job.finished, job.failed, job.cancelled")

    @model_validator(mode="after")
    def _names_a_spider(self) -> StartJobBody:
        if not self.spider_id and not self.spider_name:
            raise ValueError("Missing spider_id or spider_name")
        return self


class StartedJob(Model):
    jobId: str
    status: JobStatus


class JobListQuery(Query):
    status: JobStatus | None = None
    spider_id: str | None = None
    schedule_id: str | None = None
    limit: int = Field(50, ge=1, le=1000)


class JobSpider(Model):
    id: str
    name: str
    repo_path: str | None = None


class Job(Model):
    id: str
    spider_id: str
    status: JobStatus
    items_scraped: int
    user_id: str
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    project: str
    arguments: dict[str, Any]
    error: str | None
    schedule_id: str | None
    spider: JobSpider


class ItemsQuery(Query):
    offset: int = Field(0, ge=0, le=2**62)
    limit: int = Field(1000, ge=1, le=10000)
