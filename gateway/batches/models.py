"""A batch and its pages as the rest of the platform sees them, and the moves a batch's status may make."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.store.moves import StateMachine
from gateway.webhooks.models import CANCELLED, PAGE
from spiders_project.pages import PageOptions
from spiders_project.site_scope import CrawlScope


class BatchKind(StrEnum):
    URLS = "urls"  # the pages were given
    CRAWL = "crawl"  # the site spider discovers them
    SCRAPE = "scrape"  # one page, its answer awaited (Firecrawl's /v2/scrape)
    MAP = "map"  # the site spider lists a site's URLs, its answer awaited (Firecrawl's /v2/map)

    @property
    def discovers(self) -> bool:
        """Whether the site spider finds the pages (a crawl, a map) rather than the caller."""
        return self in (BatchKind.CRAWL, BatchKind.MAP)


class BatchStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A cancelled batch is finished as cancelled; ``completed_at`` marks the end of every path.
BATCH_MOVES = StateMachine(
    {
        BatchStatus.QUEUED: {
            BatchStatus.RUNNING,
            BatchStatus.COMPLETED,
            BatchStatus.FAILED,
            BatchStatus.CANCELLED,
        },
        BatchStatus.RUNNING: {BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.CANCELLED},
        BatchStatus.CANCELLED: {BatchStatus.CANCELLED},
    }
)


# A batch's webhook events (``batch_scrape.<event>``, ``crawl.<event>``); its cancel is ``cancelled``,
# sent to every webhook that asked for an end (Firecrawl's SDK cannot name it).
BATCH_EVENTS = frozenset({"started", PAGE, "completed", "failed", CANCELLED})


class PageStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Batch:
    id: str
    tenant_id: str
    dialect: str
    kind: BatchKind
    status: BatchStatus
    options: PageOptions
    crawl: CrawlScope | None
    total_urls: int
    invalid_urls: list[dict[str, Any]]
    credits_used: int
    error: str | None
    # How many times the batch got a new spider process after its processes ended with pages left.
    restarts: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime

    @property
    def ended(self) -> bool:
        return self.status in (BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.CANCELLED)

    @classmethod
    def from_row(cls, row: Any) -> Batch:
        return cls(
            id=row["id"],
            tenant_id=row["tenant_id"],
            dialect=row["dialect"],
            kind=BatchKind(row["kind"]),
            status=BatchStatus(row["status"]),
            options=PageOptions.from_json(row["options"]),
            crawl=CrawlScope.from_json(row["crawl"]) if row["crawl"] else None,
            total_urls=row["total_urls"],
            invalid_urls=list(row["invalid_urls"]),
            credits_used=row["credits_used"],
            error=row["error"],
            restarts=row["restarts"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            expires_at=row["expires_at"],
        )


@dataclass(frozen=True)
class PageCounts:
    pending: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    # Pages that got an HTTP answer, whatever it was: what the batch is charged for.
    fetched: int = 0

    @property
    def done(self) -> int:
        return self.completed + self.failed + self.cancelled


@dataclass(frozen=True)
class BatchPage:
    input_index: int
    url: str
    status: PageStatus
    status_code: int | None
    error_code: str | None
    error_message: str | None
    duration_ms: int | None
    retry_count: int | None
    record: dict[str, Any]
    record_bytes: int
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> BatchPage:
        return cls(
            input_index=row["input_index"],
            url=row["url"],
            status=PageStatus(row["status"]),
            status_code=row["status_code"],
            error_code=row["error_code"],
            error_message=row["error_message"],
            duration_ms=row["duration_ms"],
            retry_count=row["retry_count"],
            record=json.loads(row["record"]) if row.get("record") else {},
            record_bytes=row["record_bytes"],
            finished_at=row["finished_at"],
        )


@dataclass(frozen=True)
class PageWindow:
    """Which of a batch's pages one read shows: their input indexes in order, the size of their
    records, and whether more pages follow."""

    batch_id: str
    indexes: list[int]
    record_bytes: int
    more: bool
    by_completion: bool
