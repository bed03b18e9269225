"""A datasource's pages against a crawl's: reading both, and writing what a finished crawl found."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from gateway.batches.models import PageStatus
from gateway.batches.queries import page_results
from gateway.datasources.changes import Change, CrawledPage
from gateway.store import Connection
from gateway.store.tables import datasource_pages


async def crawled_pages(
    db: Connection, batch_id: str, *, with_records: bool
) -> list[tuple[CrawledPage, dict[str, Any]]]:
    """The pages a crawl's batch found, each with its record (when asked for)."""
    return [
        (
            CrawledPage(
                url=result.url,
                status_code=result.status_code,
                content_hash=result.content_hash,
                failed=result.status != PageStatus.COMPLETED,
            ),
            result.record,
        )
        for result in await page_results(db, batch_id, with_records=with_records)
    ]


async def previous_pages(db: Connection, datasource_id: str) -> dict[str, str | None]:
    """url → content hash of the pages the datasource holds (not removed)."""
    rows = await db.execute(
        select(datasource_pages.c.url, datasource_pages.c.content_hash).where(
            datasource_pages.c.datasource_id == datasource_id, datasource_pages.c.removed_at.is_(None)
        )
    )
    return {row.url: row.content_hash for row in rows}


async def save_pages(
    db: Connection,
    datasource_id: str,
    crawl_id: str,
    decided: dict[str, Change],
    pages: Sequence[tuple[CrawledPage, dict[str, Any]]],
    now: datetime,
) -> None:
    by_url = {page.url: (page, record) for page, record in pages}
    existing = {
        row.url: row
        for row in await db.execute(
            select(
                datasource_pages.c.url, datasource_pages.c.first_seen_at, datasource_pages.c.changed_at
            ).where(datasource_pages.c.datasource_id == datasource_id)
        )
    }
    inserts, updates = [], []
    for url, change in decided.items():
        values: dict[str, Any] = {"change": change.value, "crawl_id": crawl_id, "crawled_at": now}
        page, record = by_url.get(url, (None, {}))
        if change in (Change.NEW, Change.UPDATED):
            metadata = record.get("metadata") or {}
            values |= {
                "content_hash": page.content_hash if page else None,
                "etag": record.get("etag"),
                "last_modified": record.get("last_modified"),
                "links": record.get("page_links") or [],
                "status_code": page.status_code if page else None,
                "error_message": None,
                "title": metadata.get("title"),
                "record": json.dumps(_content_record(record), ensure_ascii=False),
                "changed_at": now,
                "removed_at": None,
            }
        elif change == Change.UNCHANGED:
            values |= {"status_code": page.status_code if page else None, "error_message": None}
            if record.get("etag") or record.get("last_modified"):
                values |= {"etag": record.get("etag"), "last_modified": record.get("last_modified")}
            if page is not None and page.status_code != 304:
                # Same content in new markup: keep the newer record and links.
                values |= {
                    "links": record.get("page_links") or [],
                    "record": json.dumps(_content_record(record), ensure_ascii=False),
                }
        elif change == Change.REMOVED:
            values |= {
                "removed_at": now,
                "changed_at": now,
                "status_code": page.status_code if page else None,
            }
        else:  # failed: what was known stays
            values |= {
                "error_message": record.get("error"),
                "status_code": page.status_code if page else None,
            }
        if url in existing:
            updates.append((url, values))
        else:
            inserts.append({"datasource_id": datasource_id, "url": url, "first_seen_at": now, **values})
    if inserts:
        await db.execute(insert(datasource_pages), inserts)
    for url, values in updates:
        await db.execute(
            update(datasource_pages)
            .where(datasource_pages.c.datasource_id == datasource_id, datasource_pages.c.url == url)
            .values(**values)
        )


def _content_record(record: dict[str, Any]) -> dict[str, Any]:
    """The part of a crawl's page record a datasource keeps: its content and metadata."""
    return {name: record[name] for name in ("markdown", "metadata") if name in record}
