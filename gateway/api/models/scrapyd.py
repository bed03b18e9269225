"""scrapyd's JSON API: form fields (or the query string) in, ``{"status": "ok", ...}`` out."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gateway.api.models.common import Model


class ScrapydAnswer(Model):
    node_name: str
    status: str


class DaemonStatus(ScrapydAnswer):
    pending: int
    running: int
    finished: int


class AddVersionForm(Model):
    project: str
    version: str
    egg: bytes = Field(json_schema_extra={"format": "binary"})


class AddedVersion(ScrapydAnswer):
    project: str
    version: str
    spiders: int


class ProjectForm(Model):
    project: str


class VersionForm(Model):
    project: str
    version: str


class SpidersQuery(Model):
    project: str
    version: str | None = Field(None, alias="_version", description="A version of the project")


class Projects(ScrapydAnswer):
    projects: list[str]


class Versions(ScrapydAnswer):
    versions: list[str]


class Spiders(ScrapydAnswer):
    spiders: list[str]


class ScheduleForm(Model):
    """Fields beyond these are spider arguments."""

    project: str
    spider: str
    jobid: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    priority: float | None = None
    setting: list[str] | None = Field(None, description="NAME=VALUE Scrapy settings")


class Scheduled(ScrapydAnswer):
    jobid: str


class CancelForm(Model):
    project: str
    job: str


class Cancelled(ScrapydAnswer):
    prevstate: str | None


class JobsQuery(Model):
    project: str | None = None


class JobList(ScrapydAnswer):
    pending: list[dict[str, Any]]
    running: list[dict[str, Any]]
    finished: list[dict[str, Any]]


class StatusQuery(Model):
    job: str


class JobState(ScrapydAnswer):
    currstate: str | None
