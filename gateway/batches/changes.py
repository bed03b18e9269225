"""Firecrawl's change tracking: a page's scrape against the tenant's previous scrape of the same
URL under the same tag.

Compared on the hash of the page's main content with whitespace folded (the spider's
``content_hash``), so a clock in a footer or a rotated banner is ``same``; ``removed`` when the page
answers 404 or 410. Written on the feed ingestion's connection, so a page's record and the version
the next scrape compares with move together.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from gateway.clock import timestamp
from gateway.store import Connection
from gateway.store.tables import page_versions
from spiders_project.contract import PageFacts, RecordStatus
from spiders_project.pages import PageOptions

CHANGE_TRACKING = "changeTracking"
GONE_STATUSES = (404, 410)
# A diff of pages this large is left out: it would dwarf the page itself.
MAX_DIFF_INPUT_CHARACTERS = 2 * 1024 * 1024


@dataclass(frozen=True)
class _Version:
    content_hash: str
    markdown: str
    scraped_at: datetime


async def track_changes(
    db: Connection,
    tenant_id: str,
    options: PageOptions,
    pages: list[tuple[PageFacts, dict[str, Any]]],
    now: datetime,
) -> list[dict[str, Any]]:
    """Add ``changeTracking`` to each record of a page that answered, and keep it as the page's
    latest version under the tag; returns the records it changed."""
    changed: list[dict[str, Any]] = []
    latest: dict[str, _Version | None] = {}
    for facts, record in pages:
        if facts.status_code is None or not facts.url:
            continue  # no answer: nothing to compare, and the last version still stands
        url_hash = hashlib.sha256(facts.url.encode()).hexdigest()
        if url_hash not in latest:
            latest[url_hash] = await _version(db, tenant_id, options.change_tag, url_hash)
        previous = latest[url_hash]
        given = record.get("markdown")
        markdown = given if isinstance(given, str) else ""
        content_hash = record.get("content_hash")
        if facts.status_code in GONE_STATUSES:
            tracking = _tracking("removed", previous, record)
            await _forget(db, tenant_id, options.change_tag, url_hash)
            latest[url_hash] = None
        elif facts.status == RecordStatus.COMPLETED and isinstance(content_hash, str):
            if previous is None:
                status = "new"
            else:
                status = "same" if previous.content_hash == content_hash else "changed"
            tracking = _tracking(status, previous, record)
            if options.change_diff and previous is not None and status == "changed":
                tracking["diff"] = {"text": _diff(previous.markdown, markdown)}
            version = _Version(content_hash, markdown, now)
            await _forget(db, tenant_id, options.change_tag, url_hash)
            await db.execute(
                insert(page_versions).values(
                    tenant_id=tenant_id,
                    tag=options.change_tag,
                    url_hash=url_hash,
                    content_hash=version.content_hash,
                    markdown=version.markdown,
                    scraped_at=now,
                )
            )
            latest[url_hash] = version
        else:
            continue
        record[CHANGE_TRACKING] = tracking
        changed.append(record)
    return changed


def _tracking(status: str, previous: _Version | None, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "previousScrapeAt": timestamp(previous.scraped_at) if previous else None,
        "changeStatus": status,
        # Hidden: a page a crawl found only in a sitemap, linked from none of the pages it crawled
        # (a page of a scrape or a batch was asked for by URL: never hidden).
        "visibility": "hidden" if record.get("hidden") is True else "visible",
    }


def _diff(before: str, after: str) -> str:
    if len(before) + len(after) > MAX_DIFF_INPUT_CHARACTERS:
        return ""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), "previous", "current"
    )
    return "".join(lines)


async def _version(db: Connection, tenant_id: str, tag: str, url_hash: str) -> _Version | None:
    row = (
        await db.execute(
            select(page_versions.c.content_hash, page_versions.c.markdown, page_versions.c.scraped_at).where(
                page_versions.c.tenant_id == tenant_id,
                page_versions.c.tag == tag,
                page_versions.c.url_hash == url_hash,
            )
        )
    ).first()
    return None if row is None else _Version(row.content_hash, row.markdown, row.scraped_at)


async def _forget(db: Connection, tenant_id: str, tag: str, url_hash: str) -> None:
    await db.execute(
        delete(page_versions).where(
            page_versions.c.tenant_id == tenant_id,
            page_versions.c.tag == tag,
            page_versions.c.url_hash == url_hash,
        )
    )
