"""Website datasources: a site kept in sync by crawls, each telling what changed since the last.

A datasource's crawl is a site crawl (``BatchService.create_crawl``) that tracks changes: its
spider gets the validators, hashes and links of the pages the last crawl kept (``known_pages``) and
asks conditionally. ``advance`` (every sync interval) follows each crawl, and once its site crawl is
over applies it to the datasource's pages in one transaction (``gateway.datasources.changes`` decides what
changed). It also starts the recrawls that ``crawl_interval_hours`` makes due, each exactly once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update

from gateway.accounts.keys import ApiKey, ApiKeys
from gateway.batches.models import BatchKind
from gateway.batches.queries import delete_batches
from gateway.batches.service import BatchService
from gateway.clock import utc_now
from gateway.datasources.changes import Change, ChangeCounts, changes
from gateway.datasources.pages import crawled_pages, previous_pages
from gateway.errors import BadRequest, Conflict, GatewayError, NotFound
from gateway.store import Connection, Store
from gateway.store.moves import StateMachine
from gateway.store.tables import (
    datasource_crawls,
    datasource_pages,
    datasources,
)
from gateway.webhooks.models import CANCELLED, WebhookTarget
from gateway.webhooks.outbox import Event, emit, subscribe, unsubscribe
from spiders_project.pages import PageOptions
from spiders_project.site_scope import CrawlScope

log = logging.getLogger(__name__)

# A datasource's webhook events, one per crawl: crawl.completed, crawl.failed, crawl.cancelled.
CRAWL_EVENTS = frozenset({"completed", "failed", CANCELLED})


class DatasourceStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class CrawlStatus(StrEnum):
    PENDING = "pending"
    SCRAPING = "scraping"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


CRAWL_MOVES = StateMachine(
    {
        CrawlStatus.PENDING: {
            CrawlStatus.SCRAPING,
            CrawlStatus.COMPLETED,
            CrawlStatus.FAILED,
            CrawlStatus.CANCELLED,
        },
        CrawlStatus.SCRAPING: {CrawlStatus.COMPLETED, CrawlStatus.FAILED, CrawlStatus.CANCELLED},
    }
)
OPEN_CRAWL_STATUSES = (CrawlStatus.PENDING, CrawlStatus.SCRAPING)
# A datasource's pages are its main content, as markdown: what a knowledge base keeps.
PAGE_OPTIONS = PageOptions(formats=frozenset({"markdown"}), only_main_content=True)


@dataclass(frozen=True)
class DatasourceSettings:
    """What a client sets on a datasource (all of it for a new one, some of it for a change)."""

    url: str | None = None
    display_name: str | None = None
    page_limit: int | None = None
    include_paths: tuple[str, ...] | None = None
    exclude_paths: tuple[str, ...] | None = None
    # None: leave as is; 0: recrawl by hand only.
    crawl_interval_hours: float | None = None
    status: DatasourceStatus | None = None


@dataclass(frozen=True)
class Datasource:
    id: str
    tenant_id: str
    api_key_id: str | None
    url: str
    display_name: str
    status: DatasourceStatus
    page_limit: int
    include_paths: list[str]
    exclude_paths: list[str]
    crawl_interval_hours: float | None
    next_crawl_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Datasource:
        return cls(
            id=row["id"],
            tenant_id=row["tenant_id"],
            api_key_id=row["api_key_id"],
            url=row["url"],
            display_name=row["display_name"],
            status=DatasourceStatus(row["status"]),
            page_limit=row["page_limit"],
            include_paths=list(row["include_paths"]),
            exclude_paths=list(row["exclude_paths"]),
            crawl_interval_hours=row["crawl_interval_hours"],
            next_crawl_at=row["next_crawl_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def scope(self) -> CrawlScope:
        return CrawlScope(
            url=self.url,
            page_limit=self.page_limit,
            include_paths=tuple(self.include_paths),
            exclude_paths=tuple(self.exclude_paths),
            track_changes=True,
        )


@dataclass(frozen=True)
class Crawl:
    id: str
    datasource_id: str
    batch_id: str | None
    status: CrawlStatus
    total_pages: int | None
    completed_pages: int
    counts: ChangeCounts
    error_message: str | None
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def open(self) -> bool:
        return self.status in OPEN_CRAWL_STATUSES

    @classmethod
    def from_row(cls, row: Any) -> Crawl:
        return cls(
            id=row["id"],
            datasource_id=row["datasource_id"],
            batch_id=row["batch_id"],
            status=CrawlStatus(row["status"]),
            total_pages=row["total_pages"],
            completed_pages=row["completed_pages"],
            counts=ChangeCounts(
                new=row["new_pages"],
                updated=row["updated_pages"],
                unchanged=row["unchanged_pages"],
                removed=row["removed_pages"],
            ),
            error_message=row["error_message"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True)
class PageStats:
    total: int
    synced: int
    error: int


@dataclass(frozen=True)
class DatasourcePage:
    url: str
    change: Change
    title: str | None
    status_code: int | None
    content_hash: str | None
    error_message: str | None
    record: dict[str, Any]
    first_seen_at: datetime
    changed_at: datetime
    crawled_at: datetime


class DatasourceService:
    def __init__(
        self,
        store: Store,
        batch_service: BatchService,
        keys: ApiKeys,
        *,
        min_interval_hours: float = 24.0,
    ) -> None:
        self._store = store
        self._batches = batch_service
        self._keys = keys
        self._min_interval_hours = min_interval_hours

    async def create(
        self,
        key: ApiKey,
        settings: DatasourceSettings,
        *,
        start_crawl: bool = True,
        webhook: WebhookTarget | None = None,
    ) -> tuple[Datasource, Crawl | None]:
        """Register a website; its first crawl starts now unless told otherwise."""
        if not settings.url:
            raise BadRequest("url is required: the website to crawl")
        self._check_interval(settings.crawl_interval_hours)
        # Refused before anything is stored: a datasource nobody can crawl is not kept.
        url = await self._batches.crawlable(settings.url)
        now = utc_now()
        interval = settings.crawl_interval_hours or None
        datasource_id = str(uuid.uuid4())
        async with self._store.write() as db:
            await db.execute(
                insert(datasources).values(
                    id=datasource_id,
                    tenant_id=key.tenant_id,
                    api_key_id=key.id,
                    url=url,
                    display_name=settings.display_name or url,
                    status=settings.status or DatasourceStatus.ACTIVE,
                    page_limit=settings.page_limit or 100,
                    include_paths=list(settings.include_paths or ()),
                    exclude_paths=list(settings.exclude_paths or ()),
                    crawl_interval_hours=interval,
                    next_crawl_at=now + timedelta(hours=interval) if interval else None,
                    created_at=now,
                    updated_at=now,
                )
            )
            if webhook is not None:
                await subscribe(db, key.tenant_id, datasource_id, "crawl", webhook)
        crawl = await self.start_crawl(key, datasource_id) if start_crawl else None
        return await self.get(key, datasource_id), crawl

    async def get(self, key: ApiKey, datasource_id: str) -> Datasource:
        async with self._store.read() as db:
            row = (
                await db.execute(
                    select(datasources).where(
                        datasources.c.id == datasource_id, datasources.c.tenant_id == key.tenant_id
                    )
                )
            ).first()
        if row is None:
            raise NotFound("Datasource not found")
        return Datasource.from_row(row._mapping)

    async def search(self, key: ApiKey, *, offset: int, limit: int) -> tuple[list[Datasource], int]:
        """The tenant's datasources, newest first, and how many there are."""
        where = datasources.c.tenant_id == key.tenant_id
        async with self._store.read() as db:
            rows = await db.execute(
                select(datasources)
                .where(where)
                .order_by(datasources.c.created_at.desc())
                .offset(offset)
                .limit(limit)
            )
            found = [Datasource.from_row(row._mapping) for row in rows]
            total = (
                await db.execute(select(func.count()).select_from(datasources).where(where))
            ).scalar_one()
        return found, int(total)

    async def update(self, key: ApiKey, datasource_id: str, settings: DatasourceSettings) -> Datasource:
        datasource = await self.get(key, datasource_id)
        self._check_interval(settings.crawl_interval_hours)
        now = utc_now()
        values: dict[str, Any] = {"updated_at": now}
        for name in ("display_name", "page_limit", "status"):
            if getattr(settings, name) is not None:
                values[name] = getattr(settings, name)
        for name in ("include_paths", "exclude_paths"):
            if getattr(settings, name) is not None:
                values[name] = list(getattr(settings, name))
        if settings.crawl_interval_hours is not None:
            interval = settings.crawl_interval_hours or None
            values["crawl_interval_hours"] = interval
            last = await self._last_crawl(datasource.id)
            since = last.created_at if last else now
            values["next_crawl_at"] = since + timedelta(hours=interval) if interval else None
        async with self._store.write() as db:
            await db.execute(update(datasources).where(datasources.c.id == datasource.id).values(**values))
        return await self.get(key, datasource.id)

    async def delete(self, key: ApiKey, datasource_id: str) -> None:
        """Remove the datasource with its crawls and pages; a crawl under way is cancelled."""
        datasource = await self.get(key, datasource_id)
        crawls = await self.crawls(key, datasource.id)
        for crawl in crawls:
            if crawl.open and crawl.batch_id:
                await self._cancel_batch(key, crawl.batch_id)
        finished = [crawl.batch_id for crawl in crawls if crawl.batch_id and not crawl.open]
        async with self._store.write() as db:
            await db.execute(delete(datasources).where(datasources.c.id == datasource.id))
            await unsubscribe(db, datasource.id)
            if finished:
                # Their records are the datasource's pages too. A cancelled crawl's go when it expires.
                await delete_batches(db, finished)

    async def start_crawl(
        self,
        key: ApiKey,
        datasource_id: str,
        crawl_id: str | None = None,
        *,
        webhook: WebhookTarget | None = None,
    ) -> Crawl:
        """Start a crawl of the datasource; one at a time (409 while another is under way).

        With ``crawl_id``, asking again for a crawl that exists answers that crawl. ``webhook``
        is told how this crawl ends, besides the datasource's own webhook.
        """
        datasource = await self.get(key, datasource_id)
        if crawl_id is not None:
            async with self._store.read() as db:
                started = await db.execute(
                    select(datasource_crawls.c.id).where(
                        datasource_crawls.c.id == crawl_id, datasource_crawls.c.datasource_id == datasource.id
                    )
                )
                known = started.first() is not None
            if known:
                return await self.crawl(key, datasource.id, crawl_id)
        crawl_id = crawl_id or str(uuid.uuid4())
        now = utc_now()
        async with self._store.write() as db:
            if await open_crawl_id(db, datasource.id) is not None:
                raise Conflict("a crawl of this datasource is already under way")
            await db.execute(
                insert(datasource_crawls).values(
                    id=crawl_id,
                    datasource_id=datasource.id,
                    status=CrawlStatus.PENDING,
                    completed_pages=0,
                    new_pages=0,
                    updated_pages=0,
                    removed_pages=0,
                    unchanged_pages=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            if datasource.crawl_interval_hours:
                await db.execute(
                    update(datasources)
                    .where(datasources.c.id == datasource.id)
                    .values(next_crawl_at=now + timedelta(hours=datasource.crawl_interval_hours))
                )
            if webhook is not None:
                await subscribe(db, key.tenant_id, crawl_id, "crawl", webhook, public_id=datasource.id)
        try:
            batch = await self._batches.create_crawl(key, "opencx", datasource.scope(), PAGE_OPTIONS)
        except GatewayError as exc:
            await self.end_crawl(crawl_id, CrawlStatus.FAILED, exc.message)
            raise
        async with self._store.write() as db:
            await db.execute(
                update(datasource_crawls).where(datasource_crawls.c.id == crawl_id).values(batch_id=batch.id)
            )
        return await self.crawl(key, datasource.id, crawl_id)

    async def crawls(self, key: ApiKey, datasource_id: str) -> list[Crawl]:
        """The datasource's crawls, newest first, open ones with their live counts."""
        datasource = await self.get(key, datasource_id)
        async with self._store.read() as db:
            rows = await db.execute(
                select(datasource_crawls)
                .where(datasource_crawls.c.datasource_id == datasource.id)
                .order_by(datasource_crawls.c.created_at.desc())
            )
            found = [Crawl.from_row(row._mapping) for row in rows]
        return [await self._live(crawl) if crawl.open else crawl for crawl in found]

    async def crawl(self, key: ApiKey, datasource_id: str, crawl_id: str) -> Crawl:
        """One crawl of the datasource; while it runs, its counts are those of the pages so far."""
        datasource = await self.get(key, datasource_id)
        async with self._store.read() as db:
            row = (
                await db.execute(
                    select(datasource_crawls).where(
                        datasource_crawls.c.id == crawl_id,
                        datasource_crawls.c.datasource_id == datasource.id,
                    )
                )
            ).first()
        if row is None:
            raise NotFound("Crawl not found")
        crawl = Crawl.from_row(row._mapping)
        return await self._live(crawl) if crawl.open else crawl

    async def active_crawl(self, key: ApiKey, datasource_id: str) -> Crawl | None:
        async with self._store.read() as db:
            crawl_id = await open_crawl_id(db, datasource_id)
        return await self.crawl(key, datasource_id, crawl_id) if crawl_id else None

    async def cancel_crawl(self, key: ApiKey, datasource_id: str, crawl_id: str) -> Crawl:
        crawl = await self.crawl(key, datasource_id, crawl_id)
        if not crawl.open:
            raise Conflict(f"Crawl already {crawl.status.value}")
        if crawl.batch_id:
            await self._cancel_batch(key, crawl.batch_id)
        await self.end_crawl(crawl.id, CrawlStatus.CANCELLED, None, live=crawl)
        return await self.crawl(key, datasource_id, crawl_id)

    async def last_crawl(self, datasource: Datasource) -> Crawl | None:
        """The newest crawl of a datasource the caller has read (and so may see)."""
        return await self._last_crawl(datasource.id)

    async def page_stats(self, datasource_id: str) -> PageStats:
        query = (
            select(datasource_pages.c.change, func.count())
            .where(datasource_pages.c.datasource_id == datasource_id, datasource_pages.c.removed_at.is_(None))
            .group_by(datasource_pages.c.change)
        )
        async with self._store.read() as db:
            found = {change: int(count) for change, count in await db.execute(query)}
        total = sum(found.values())
        error = found.get(Change.FAILED, 0)
        return PageStats(total=total, synced=total - error, error=error)

    async def pages(
        self,
        key: ApiKey,
        datasource_id: str,
        *,
        change: Change | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[DatasourcePage], int]:
        """The pages of the datasource's latest finished crawl with what it found changed."""
        datasource = await self.get(key, datasource_id)
        async with self._store.scan() as db:
            latest = (
                await db.execute(
                    select(datasource_crawls.c.id)
                    .where(
                        datasource_crawls.c.datasource_id == datasource.id,
                        datasource_crawls.c.status == CrawlStatus.COMPLETED,
                    )
                    .order_by(datasource_crawls.c.completed_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if latest is None:
                return [], 0
            where = and_(
                datasource_pages.c.datasource_id == datasource.id, datasource_pages.c.crawl_id == latest
            )
            if change is not None:
                where = and_(where, datasource_pages.c.change == change.value)
            rows = await db.execute(
                select(datasource_pages)
                .where(where)
                .order_by(datasource_pages.c.url)
                .offset(offset)
                .limit(limit)
            )
            found = [_page(row._mapping) for row in rows]
            total = (
                await db.execute(select(func.count()).select_from(datasource_pages).where(where))
            ).scalar_one()
        return found, int(total)

    async def known_pages(self, batch_id: str) -> dict[str, dict[str, Any]]:
        """What the previous crawl kept of each page, for the crawl ``batch_id`` to ask conditionally
        and to follow the links of pages that did not change."""
        async with self._store.scan() as db:
            datasource_id = (
                await db.execute(
                    select(datasource_crawls.c.datasource_id).where(datasource_crawls.c.batch_id == batch_id)
                )
            ).scalar_one_or_none()
            if datasource_id is None:
                return {}
            rows = await db.execute(
                select(
                    datasource_pages.c.url,
                    datasource_pages.c.etag,
                    datasource_pages.c.last_modified,
                    datasource_pages.c.content_hash,
                    datasource_pages.c.links,
                ).where(
                    datasource_pages.c.datasource_id == datasource_id,
                    datasource_pages.c.removed_at.is_(None),
                    datasource_pages.c.content_hash.is_not(None),
                )
            )
            return {
                row.url: {
                    "etag": row.etag,
                    "last_modified": row.last_modified,
                    "content_hash": row.content_hash,
                    "links": row.links,
                }
                for row in rows
            }

    async def _live(self, crawl: Crawl) -> Crawl:
        """An open crawl with the counts of the pages it has so far."""
        if crawl.batch_id is None:
            return crawl
        async with self._store.read() as db:
            pages = await crawled_pages(db, crawl.batch_id, with_records=False)
            previous = await previous_pages(db, crawl.datasource_id)
        _, counts = changes([page for page, _ in pages], previous, finished=False)
        return replace(crawl, total_pages=len(pages), completed_pages=len(pages), counts=counts)

    async def end_crawl(
        self, crawl_id: str, status: CrawlStatus, error: str | None, live: Crawl | None = None
    ) -> None:
        now = utc_now()
        values: dict[str, Any] = {
            "status": status,
            "error_message": error,
            "completed_at": now,
            "updated_at": now,
        }
        if live is not None:
            values |= count_values(live.counts) | {
                "total_pages": live.total_pages,
                "completed_pages": live.completed_pages,
            }
        async with self._store.write() as db:
            ended = await db.execute(
                update(datasource_crawls)
                .where(
                    datasource_crawls.c.id == crawl_id,
                    datasource_crawls.c.status.in_(OPEN_CRAWL_STATUSES),
                )
                .values(**values)
            )
            if ended.rowcount == 1:
                await emit_crawl_end(db, crawl_id)

    async def _cancel_batch(self, key: ApiKey, batch_id: str) -> None:
        with contextlib.suppress(Conflict, NotFound):
            await self._batches.cancel(key, batch_id, BatchKind.CRAWL)

    async def _last_crawl(self, datasource_id: str) -> Crawl | None:
        async with self._store.read() as db:
            row = (
                await db.execute(
                    select(datasource_crawls)
                    .where(datasource_crawls.c.datasource_id == datasource_id)
                    .order_by(datasource_crawls.c.created_at.desc())
                    .limit(1)
                )
            ).first()
        return Crawl.from_row(row._mapping) if row else None

    def _check_interval(self, hours: float | None) -> None:
        if hours and hours < self._min_interval_hours:
            raise BadRequest(
                f"crawl_interval_hours must be at least {self._min_interval_hours:g} (or null: by hand only)"
            )


async def open_crawl_id(db: Connection, datasource_id: str) -> str | None:
    """The datasource's crawl under way, if any."""
    found: str | None = (
        await db.execute(
            select(datasource_crawls.c.id).where(
                datasource_crawls.c.datasource_id == datasource_id,
                datasource_crawls.c.status.in_(OPEN_CRAWL_STATUSES),
            )
        )
    ).scalar_one_or_none()
    return found


async def emit_crawl_end(db: Connection, crawl_id: str) -> None:
    """The webhook event of a crawl that just ended, to the datasource's webhook and the crawl's
    own: ``crawl.completed`` with what changed, ``crawl.failed`` with why, or ``crawl.cancelled``."""
    row = (await db.execute(select(datasource_crawls).where(datasource_crawls.c.id == crawl_id))).one()
    status = CrawlStatus(row.status)
    data = {
        "datasource_id": row.datasource_id,
        "crawl_id": row.id,
        "status": status.value,
        "total_pages": row.total_pages,
        "new_pages": row.new_pages,
        "updated_pages": row.updated_pages,
        "removed_pages": row.removed_pages,
        "unchanged_pages": row.unchanged_pages,
    }
    if status == CrawlStatus.COMPLETED:
        event = Event("completed", data)
    else:
        name = CANCELLED if status == CrawlStatus.CANCELLED else "failed"
        event = Event(name, data, success=False, error=row.error_message or status.value)
    await emit(db, row.datasource_id, [event], lifecycle=False)
    await emit(db, row.id, [event])


def count_values(counts: ChangeCounts) -> dict[str, int]:
    return {
        "new_pages": counts.new,
        "updated_pages": counts.updated,
        "unchanged_pages": counts.unchanged,
        "removed_pages": counts.removed,
    }


def _page(row: Any) -> DatasourcePage:
    return DatasourcePage(
        url=row["url"],
        change=Change(row["change"]),
        title=row["title"],
        status_code=row["status_code"],
        content_hash=row["content_hash"],
        error_message=row["error_message"],
        record=json.loads(row["record"]) if row["record"] else {},
        first_seen_at=row["first_seen_at"],
        changed_at=row["changed_at"],
        crawled_at=row["crawled_at"],
    )
