"""The gateway↔spider contract, in one place for both sides: what a page spider is given (its
inputs, from ``GET /internal/batches/<id>/inputs``) and what it gives back (a page record, one line
of its item feed). Plain data with no Scrapy import, so the gateway uses it as the spiders do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# The record field that carries a rendered page's PNG (base64) from the spider; the gateway keeps
# the PNG apart and leaves ``true`` in its place.
SCREENSHOT = "screenshot"
# What a page's browser actions gave: screenshots (base64 in the feed), scrapes, script values.
ACTIONS = "actions"
# The error code of a page a crawl's robots.txt forbids (recorded only when the crawl lists them).
ROBOTS_BLOCKED = "ROBOTS_BLOCKED"


@dataclass(frozen=True)
class Inputs:
    """One claim's worth of work, with what every page of it needs."""

    batch_id: str
    # (input index, URL) of each page claimed; fewer than asked for: the batch has no more.
    pages: list[tuple[int, str]]
    options: dict[str, Any]  # spiders_project.pages.PageOptions, as JSON
    crawl: dict[str, Any] | None  # spiders_project.site_scope.CrawlScope, as JSON, for a crawl
    proxies: list[str]  # proxy URLs of the batch's pool, credentials included
    # For a recrawl: what the datasource knows of each page (validators, hash, links), by URL.
    known: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "batch_id": self.batch_id,
            "pages": [[index, url] for index, url in self.pages],
            "options": self.options,
            "crawl": self.crawl,
            "proxies": self.proxies,
        }
        if self.known is not None:
            data["known"] = self.known
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Inputs:
        return cls(
            batch_id=str(data["batch_id"]),
            pages=[(int(index), str(url)) for index, url in data["pages"]],
            options=dict(data["options"]),
            crawl=dict(data["crawl"]) if data.get("crawl") else None,
            proxies=[str(url) for url in data.get("proxies") or ()],
            known=dict(data["known"]) if data.get("known") else None,
        )


class RecordStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class PageFacts:
    """The fields of a page record that say what happened at the page; the formats asked for
    (``markdown``, ``html``, ``rawHtml``, ``links``, ``screenshot``) and ``metadata`` follow them."""

    input_index: int
    url: str | None
    status: RecordStatus
    status_code: int | None
    error_code: str | None
    error: str | None
    duration_ms: int | None
    retry_count: int | None
    # Only in the records of crawls that track changes.
    content_hash: str | None = None

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "input_index": self.input_index,
            "url": self.url,
            "status": self.status.value,
            "status_code": self.status_code,
            "error_code": self.error_code,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "retry_count": self.retry_count,
        }
        if self.content_hash is not None:
            record["content_hash"] = self.content_hash
        return record

    @classmethod
    def of_record(cls, record: Any) -> PageFacts | None:
        """The facts of a feed line, or None if it is not a page record."""
        if not isinstance(record, dict) or not isinstance(record.get("input_index"), int):
            return None
        return cls(
            input_index=record["input_index"],
            url=record.get("url"),
            status=RecordStatus.FAILED if record.get("status") == "failed" else RecordStatus.COMPLETED,
            status_code=record.get("status_code"),
            error_code=record.get("error_code"),
            error=record.get("error"),
            duration_ms=record.get("duration_ms"),
            retry_count=record.get("retry_count"),
            content_hash=record.get("content_hash"),
        )
