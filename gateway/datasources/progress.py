"""Moving datasource crawls along: following each site crawl, applying it once it is over, and
starting the recrawls that ``crawl_interval_hours`` makes due, each due time exactly once.

Runs every sync interval (``advance``), like ``gateway.batches.progress`` for batches.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from gateway.accounts.keys import ApiKeys
from gateway.batches.models import BatchStatus
from gateway.batches.queries import batch_of, batch_statuses
from gateway.clock import utc_now
from gateway.datasources.changes import changes
from gateway.datasources.pages import crawled_pages, previous_pages, save_pages
from gateway.datasources.service import (
    CRAWL_MOVES,
    OPEN_CRAWL_STATUSES,
    Crawl,
    CrawlStatus,
    Datasource,
    DatasourceService,
    DatasourceStatus,
    count_values,
    emit_crawl_end,
    open_crawl_id,
)
from gateway.errors import Conflict, GatewayError
from gateway.jobs.models import JobStatus
from gateway.jobs.queries import jobs_of_batches
from gateway.store import Connection, Store
from gateway.store.moves import compare_and_set, move
from gateway.store.tables import datasource_crawls, datasources

log = logging.getLogger(__name__)


class DatasourceProgress:
    name = "datasource-progress"

    def __init__(
        self, store: Store, datasource_service: DatasourceService, keys: ApiKeys, interval: float = 0.2
    ) -> None:
        self.interval = interval
        self._store = store
        self._datasources = datasource_service
        self._keys = keys

    async def tick(self) -> None:
        """Follow open crawls (and apply finished ones), then start the recrawls that are due."""
        async with self._store.read() as db:
            open_crawls = list(
                await db.execute(
                    select(
                        datasource_crawls.c.id, datasource_crawls.c.status, datasource_crawls.c.batch_id
                    ).where(
                        datasource_crawls.c.status.in_(OPEN_CRAWL_STATUSES),
                        datasource_crawls.c.batch_id.is_not(None),
                    )
                )
            )
            statuses = await batch_statuses(db, [row.batch_id for row in open_crawls])
        for row in open_crawls:
            batch_status = statuses.get(row.batch_id)
            if batch_status is None:
                await self._datasources.end_crawl(
                    row.id, CrawlStatus.FAILED, "the crawl's results expired before use"
                )
            elif batch_status in (BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.CANCELLED):
                await self._apply(row.id)
            elif batch_status == BatchStatus.RUNNING and row.status == CrawlStatus.PENDING:
                await self._mark_scraping(row.id)
        await self._start_due()

    async def _start_due(self, now: datetime | None = None) -> None:
        now = now or utc_now()
        async with self._store.read() as db:
            due = list(
                await db.execute(
                    select(datasources).where(
                        datasources.c.status == DatasourceStatus.ACTIVE,
                        datasources.c.next_crawl_at <= now,
                    )
                )
            )
        for row in due:
            datasource = Datasource.from_row(row._mapping)
            if datasource.api_key_id is None or not datasource.crawl_interval_hours:
                continue
            async with self._store.read() as db:
                if await open_crawl_id(db, datasource.id) is not None:
                    continue  # it fires once the crawl under way is over
            # Whoever moves next_crawl_at on starts the crawl: a due time fires once.
            async with self._store.write() as db:
                taken = await compare_and_set(
                    db,
                    datasources,
                    datasource.id,
                    {"next_crawl_at": datasource.next_crawl_at},
                    next_crawl_at=now + timedelta(hours=datasource.crawl_interval_hours),
                )
            if not taken:
                continue
            try:
                key = await self._keys.get(datasource.api_key_id)
                if key.revoked_at is not None:
                    raise Conflict("the API key that created the datasource was revoked")
                await self._datasources.start_crawl(key, datasource.id)
            except GatewayError as exc:
                log.warning(
                    "datasource %s: its scheduled crawl did not start: %s", datasource.id, exc.message
                )

    async def _apply(self, crawl_id: str) -> None:
        """Make a finished crawl the datasource's state, once, in one transaction."""
        now = utc_now()
        async with self._store.write() as db:
            crawl_row = (
                await db.execute(select(datasource_crawls).where(datasource_crawls.c.id == crawl_id))
            ).one()
            crawl = Crawl.from_row(crawl_row._mapping)
            if not crawl.open or crawl.batch_id is None:
                return
            batch = await batch_of(db, crawl.batch_id)
            assert batch is not None  # a crawl's batch goes only with the crawl or after it ended
            pages = await crawled_pages(db, crawl.batch_id, with_records=True)
            previous = await previous_pages(db, crawl.datasource_id)
            answered = [page for page, _ in pages if page.answered]
            spider_failure = await _spider_failure(db, crawl.batch_id)
            values: dict[str, Any] = {
                "total_pages": len(pages),
                "completed_pages": len(pages),
                "completed_at": now,
                "updated_at": now,
            }
            if batch.status == BatchStatus.CANCELLED:
                _, counts = changes([page for page, _ in pages], previous, finished=False)
                values |= count_values(counts) | {"status": CrawlStatus.CANCELLED}
            elif spider_failure is not None:
                # A crawl cut short never saw the rest of the site: its pages would all look removed.
                _, counts = changes([page for page, _ in pages], previous, finished=False)
                values |= count_values(counts) | {
                    "status": CrawlStatus.FAILED,
                    "error_message": f"the crawl ended before it was over: {spider_failure}",
                }
            elif not answered:
                # A site that did not answer has not lost its pages: nothing is applied.
                failed = next((record.get("error") for page, record in pages if record.get("error")), None)
                values |= {
                    "status": CrawlStatus.FAILED,
                    "error_message": batch.error or failed or "no page of the site could be fetched",
                }
            else:
                decided, counts = changes([page for page, _ in pages], previous, finished=True)
                await save_pages(db, crawl.datasource_id, crawl.id, decided, pages, now)
                values |= count_values(counts) | {"status": CrawlStatus.COMPLETED}
            await db.execute(
                update(datasource_crawls)
                .where(datasource_crawls.c.id == crawl_id)
                .values(started_at=func.coalesce(datasource_crawls.c.started_at, batch.started_at), **values)
            )
            await emit_crawl_end(db, crawl_id)
        log.info("datasource %s: crawl %s %s", crawl.datasource_id, crawl_id, values["status"])

    async def _mark_scraping(self, crawl_id: str) -> None:
        now = utc_now()
        async with self._store.write() as db:
            await move(
                db,
                datasource_crawls,
                crawl_id,
                CRAWL_MOVES,
                CrawlStatus.SCRAPING,
                started_at=now,
                updated_at=now,
            )


async def _spider_failure(db: Connection, batch_id: str) -> str | None:
    """Why the crawl's spider did not finish its work, if it did not."""
    for job in await jobs_of_batches(db, [batch_id]):
        if job.status != JobStatus.FINISHED:
            return str(job.error or f"its spider process ended {job.status}")
    return None
