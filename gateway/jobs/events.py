"""A job's webhook events (``job.started``, ``job.finished``, ``job.failed``, ``job.cancelled``)."""

from __future__ import annotations

from typing import Any

from gateway.jobs.models import JobStatus
from gateway.webhooks.models import CANCELLED
from gateway.webhooks.outbox import Event

JOB_EVENTS = frozenset({"started", "finished", "failed", CANCELLED})
_ENDINGS = {JobStatus.FINISHED: "finished", JobStatus.ERROR: "failed", JobStatus.CANCELLED: CANCELLED}


def started_event(project: str, spider: str) -> Event:
    return Event("started", {"status": JobStatus.RUNNING.value, "project": project, "spider": spider})


def ended_event(
    status: JobStatus, *, project: str, spider: str, items_scraped: int, error: str | None
) -> Event:
    data: dict[str, Any] = {
        "status": status.value,
        "project": project,
        "spider": spider,
        "items_scraped": items_scraped,
    }
    finished = status == JobStatus.FINISHED
    return Event(
        _ENDINGS[status], data, success=finished, error=None if finished else (error or status.value)
    )
