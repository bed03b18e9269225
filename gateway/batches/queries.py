"""What other packages may read or remove of batches, each on the caller's connection."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, select

from gateway.batches.models import Batch, PageStatus
from gateway.store import Connection
from gateway.store.tables import batch_pages, batch_records, batches

# Each page with its record, when it has one.
PAGES_WITH_RECORDS = batch_pages.outerjoin(
    batch_records,
    and_(
        batch_records.c.batch_id == batch_pages.c.batch_id,
        batch_records.c.input_index == batch_pages.c.input_index,
    ),
)


@dataclass(frozen=True)
class PageResult:
    """What a batch found at one of its pages."""

    url: str
    status: PageStatus
    status_code: int | None
    content_hash: str | None
    record: dict[str, Any]


async def batch_statuses(db: Connection, batch_ids: Collection[str]) -> dict[str, str]:
    """The status of each of these batches that still exists."""
    if not batch_ids:
        return {}
    rows = await db.execute(select(batches.c.id, batches.c.status).where(batches.c.id.in_(list(batch_ids))))
    return {row.id: str(row.status) for row in rows}


async def batch_of(db: Connection, batch_id: str) -> Batch | None:
    row = (await db.execute(select(batches).where(batches.c.id == batch_id))).first()
    return None if row is None else Batch.from_row(row._mapping)


async def page_results(db: Connection, batch_id: str, *, with_records: bool) -> list[PageResult]:
    """Every page of the batch; with its record (parsed) when asked, else an empty one."""
    columns = [batch_pages.c.url, batch_pages.c.status, batch_pages.c.status_code, batch_pages.c.content_hash]
    query = select(*columns).where(batch_pages.c.batch_id == batch_id)
    if with_records:
        query = (
            select(*columns, batch_records.c.record)
            .select_from(PAGES_WITH_RECORDS)
            .where(batch_pages.c.batch_id == batch_id)
        )
    return [
        PageResult(
            url=row.url,
            status=PageStatus(row.status),
            status_code=row.status_code,
            content_hash=row.content_hash,
            record=json.loads(row.record) if with_records and row.record else {},
        )
        for row in await db.execute(query)
    ]


async def delete_batches(db: Connection, batch_ids: Collection[str]) -> None:
    """Remove these batches with their pages, records, screenshots and jobs."""
    if batch_ids:
        await db.execute(delete(batches).where(batches.c.id.in_(list(batch_ids))))
