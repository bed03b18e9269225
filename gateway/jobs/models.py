"""What a job is: its status and the record the store keeps of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.store.moves import StateMachine
from node.secret_arguments import SECRET_ARGUMENTS


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    ERROR = "error"

    @property
    def ended(self) -> bool:
        return self in (JobStatus.FINISHED, JobStatus.CANCELLED, JobStatus.ERROR)


# A job moves only along these; ``settled`` marks the end of every path. A cancelled job is
# ``cancelled`` at once, while its process may still be stopping, and is settled as cancelled.
JOB_MOVES = StateMachine(
    {
        JobStatus.PENDING: {JobStatus.RUNNING, JobStatus.FINISHED, JobStatus.CANCELLED, JobStatus.ERROR},
        JobStatus.RUNNING: {JobStatus.FINISHED, JobStatus.CANCELLED, JobStatus.ERROR},
        JobStatus.CANCELLED: {JobStatus.CANCELLED},
    }
)


@dataclass(frozen=True)
class Job:
    id: str  # on the store and the node
    public_id: str  # as its tenant knows it (see the jobs table)
    tenant_id: str
    api_key_id: str | None
    spider_id: str
    project: str
    spider_name: str
    version: str | None
    arguments: dict[str, Any]
    settings: dict[str, str]
    priority: float
    node: str | None
    dispatched_at: datetime | None
    status: JobStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    items_scraped: int
    feed_offset: int
    pid: int | None
    close_reason: str | None
    exit_code: int | None
    error: str | None
    cancel_requested_at: datetime | None
    term_sent_at: datetime | None
    kill_sent_at: datetime | None
    settled: bool
    batch_id: str | None
    schedule_id: str | None

    @property
    def public_arguments(self) -> dict[str, Any]:
        """The arguments as the tenant may see them."""
        return {name: value for name, value in self.arguments.items() if name not in SECRET_ARGUMENTS}

    @classmethod
    def from_row(cls, row: Any) -> Job:
        values = dict(row)
        values["status"] = JobStatus(values["status"])
        values["settled"] = bool(values["settled"])
        return cls(**values)


@dataclass(frozen=True)
class ItemPage:
    items: list[str]
    total: int
    offset: int
