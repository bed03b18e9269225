"""What other packages may read of datasources, each on the caller's connection."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select

from gateway.store import Connection
from gateway.store.tables import datasource_crawls


async def crawl_statuses(db: Connection, crawl_ids: Collection[str]) -> dict[str, str]:
    """The status of each of these crawls that still exists."""
    if not crawl_ids:
        return {}
    rows = await db.execute(
        select(datasource_crawls.c.id, datasource_crawls.c.status).where(
            datasource_crawls.c.id.in_(list(crawl_ids))
        )
    )
    return {row.id: str(row.status) for row in rows}
