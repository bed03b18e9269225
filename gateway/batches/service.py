"""Batches: a list of URLs scraped into page records by the built-in ``batch`` spider, tracked as one.

A batch is stored with one row per accepted URL (its ``input_index`` kept), credits are reserved
for every page up front, and one scrapyd job per share of the URLs is started (a big batch uses
every core). Spider processes read the URLs over HTTP from the gateway with the batch's token;
their page records come back through the item feed (``gateway.jobs.feeds``) into ``batch_pages`` (facts)
and ``batch_records`` (records).
``gateway.batches.progress`` moves batches along as their jobs run and end, and deletes them after
retention.
"""

from __future__ import annotations

import logging
import math
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway.accounts.credits import hold_credits
from gateway.accounts.keys import ApiKey
from gateway.batches.models import (
    BATCH_MOVES,
    Batch,
    BatchKind,
    BatchPage,
    BatchStatus,
    PageCounts,
    PageStatus,
    PageWindow,
)
from gateway.batches.proxies import ProxyChoice, pick_pool
from gateway.batches.queries import PAGES_WITH_RECORDS
from gateway.batches.urls import MAX_URLS, InvalidUrl, ScreenedUrls, screen_urls
from gateway.catalog.deploy import BUILTIN_PROJECT
from gateway.catalog.spiders import SpiderCatalog
from gateway.clock import utc_now
from gateway.config import ProxyPool
from gateway.errors import (
    BadRequest,
    Conflict,
    GatewayError,
    Gone,
    NodeUnavailable,
    NotFound,
    PaymentRequired,
)
from gateway.jobs.queries import job_of_batch, jobs_of_batches
from gateway.jobs.service import JobService
from gateway.store import Store
from gateway.store.moves import move
from gateway.store.tables import batch_pages, batch_records, batch_screenshots, batches
from gateway.webhooks.models import WebhookTarget
from gateway.webhooks.outbox import subscribe
from node.secret_arguments import INPUTS_TOKEN
from spiders_project.addresses import AddressPolicy
from spiders_project.contract import Inputs
from spiders_project.pages import PageOptions
from spiders_project.site_scope import CrawlScope

log = logging.getLogger(__name__)

BATCH_SPIDER = "batch"
SITE_SPIDER = "site"
NEVER_STARTED_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class BatchPolicy:
    """What an operator decides about every batch."""

    gateway_url: str
    addresses: AddressPolicy
    retention: timedelta
    processes: int
    urls_per_process: int
    browser_pages: int = 4
    proxy_pools: tuple[ProxyPool, ...] = ()
    claim_patience_seconds: float = 90.0


class BatchService:
    def __init__(
        self, store: Store, job_service: JobService, catalog: SpiderCatalog, policy: BatchPolicy
    ) -> None:
        self._store = store
        self._jobs = job_service
        self._catalog = catalog
        self._policy = policy

    async def create(
        self,
        key: ApiKey,
        dialect: str,
        urls: Sequence[Any],
        options: PageOptions,
        *,
        proxy: ProxyChoice | None = None,
        ignore_invalid: bool = True,
        idempotency_key: str | None = None,
        webhook: WebhookTarget | None = None,
        webhook_type: str = "batch_scrape",
        kind: BatchKind = BatchKind.URLS,
        cache_key: str | None = None,
    ) -> tuple[Batch, list[InvalidUrl]]:
        """Store and start a batch (or a one-page scrape: ``kind``, and its ``cache_key``); returns
        it with the URLs that were refused."""
        pool = self._pool(urls, proxy)
        options = replace(options, proxy_pool=pool.name if pool else None)
        if idempotency_key is not None:
            existing = await self._by_idempotency_key(key, idempotency_key)
            if existing is not None:
                return existing, [_invalid(entry) for entry in existing.invalid_urls]
        screened = await self._screen(urls, ignore_invalid)
        await self._spider(BATCH_SPIDER)
        batch_id = str(uuid.uuid4())
        existing = await self._insert(
            key,
            batch_id,
            dialect,
            options,
            screened.accepted,
            screened.invalid,
            idempotency_key,
            credits=len(screened.accepted),
            kind=kind,
            cache_key=cache_key,
            webhook=(webhook, webhook_type) if webhook else None,
        )
        if existing is not None:
            return existing, [_invalid(entry) for entry in existing.invalid_urls]
        processes = math.ceil(len(screened.accepted) / self._policy.urls_per_process)
        await self.start_jobs(key, batch_id, max(1, min(self._policy.processes, processes)))
        return await self._load(batch_id), screened.invalid

    async def check(
        self, urls: Sequence[Any], *, proxy: ProxyChoice | None = None, ignore_invalid: bool = True
    ) -> None:
        """Refuse now, with the same 400, what ``create`` would refuse for these URLs and proxy."""
        self._pool(urls, proxy)
        await self._screen(urls, ignore_invalid)

    def _pool(self, urls: Sequence[Any], proxy: ProxyChoice | None) -> ProxyPool | None:
        if not 1 <= len(urls) <= MAX_URLS:
            raise BadRequest(f"a batch takes 1 to {MAX_URLS} URLs, not {len(urls)}")
        return pick_pool(self._policy.proxy_pools, proxy)

    async def _screen(self, urls: Sequence[Any], ignore_invalid: bool) -> ScreenedUrls:
        screened = await screen_urls(urls, self._policy.addresses)
        if screened.invalid and not ignore_invalid:
            listed = "; ".join(f"{item.url} ({item.reason})" for item in screened.invalid[:50])
            raise BadRequest(f"invalid URLs: {listed}")
        if not screened.accepted:
            raise BadRequest(
                "none of the URLs can be scraped: " + "; ".join(i.reason for i in screened.invalid[:5])
            )
        return screened

    async def create_crawl(
        self,
        key: ApiKey,
        dialect: str,
        scope: CrawlScope,
        options: PageOptions,
        *,
        proxy: ProxyChoice | None = None,
        idempotency_key: str | None = None,
        webhook: WebhookTarget | None = None,
        webhook_type: str = "crawl",
    ) -> Batch:
        """Store and start a site crawl (or a map: ``scope.listing``): one ``site`` spider discovers
        its pages from ``scope.url``.

        Credits are held for the pages it may fetch (``page_limit``, or a map's ``fetch_limit``) and
        those not fetched are given back at the end.
        """
        pool = pick_pool(self._policy.proxy_pools, proxy)
        options = replace(options, proxy_pool=pool.name if pool else None)
        if idempotency_key is not None:
            existing = await self._by_idempotency_key(key, idempotency_key)
            if existing is not None:
                return existing
        scope = replace(scope, url=await self.crawlable(scope.url))
        await self._spider(SITE_SPIDER)
        batch_id = str(uuid.uuid4())
        existing = await self._insert(
            key,
            batch_id,
            dialect,
            options,
            [],
            [],
            idempotency_key,
            credits=scope.fetch_limit if scope.listing else scope.page_limit,
            kind=BatchKind.MAP if scope.listing else BatchKind.CRAWL,
            crawl=scope,
            webhook=(webhook, webhook_type) if webhook else None,
        )
        if existing is not None:
            return existing
        await self.start_jobs(key, batch_id, 1)
        return await self._load(batch_id)

    async def crawlable(self, url: str) -> str:
        """``url`` as a crawl starts from it, or a 400 saying why no crawl may (form, address policy)."""
        screened = await screen_urls([url], self._policy.addresses)
        if screened.invalid:
            raise BadRequest(f"the URL cannot be crawled: {screened.invalid[0].reason}")
        return str(screened.accepted[0][1])

    async def get(self, key: ApiKey, batch_id: str, kind: BatchKind | None = BatchKind.URLS) -> Batch:
        """The tenant's batch (or crawl); another tenant's, an expired one, or one of another kind
        is not found."""
        mine = {"batch_id": batch_id, "tenant_id": key.tenant_id, "now": utc_now()}
        query = _TENANT_BATCH
        if kind is not None:
            query, mine["kind"] = _TENANT_BATCH_OF_KIND, kind.value
        async with self._store.read() as db:
            row = (await db.execute(query, mine)).first()
        if row is None:
            raise NotFound("Crawl not found" if kind == BatchKind.CRAWL else "Batch not found")
        return Batch.from_row(row._mapping)

    async def census(self) -> list[tuple[str, int]]:
        """(status, pages) over the pages of every batch and crawl kept: what the metrics report
        (off the event loop)."""
        async with self._store.scan() as db:
            rows = await db.execute(select(batch_pages.c.status, func.count()).group_by(batch_pages.c.status))
            return [(str(status), int(count)) for status, count in rows]

    async def counts(self, batch_id: str) -> PageCounts:
        async with self._store.read() as db:
            rows = (await db.execute(_PAGE_COUNTS, {"batch_id": batch_id})).all()
        found = {status: int(count) for status, count, _ in rows}
        return PageCounts(
            **{status.value: found.get(status.value, 0) for status in PageStatus},
            fetched=sum(int(fetched) for _, _, fetched in rows),
        )

    async def pages(self, window: PageWindow) -> list[BatchPage]:
        """The window's pages with their records, in one list (for windows known to be small)."""
        return [page async for chunk in self.window_pages(window) for page in chunk]

    async def window(
        self,
        batch_id: str,
        *,
        statuses: Sequence[PageStatus] = (),
        offset: int = 0,
        limit: int | None = None,
        max_bytes: int | None = None,
        by_completion: bool = False,
    ) -> PageWindow:
        """Which pages a read shows, without their records.

        ``offset`` counts pages of the given statuses. With ``max_bytes``, the window ends before the
        records would pass that size (one page at least).
        """
        sizes, _ = _page_window_queries(bool(statuses), by_completion)
        where = {
            "batch_id": batch_id,
            "statuses": [status.value for status in statuses],
            "offset": offset,
            "limit": limit + 1 if limit is not None else -1,
        }
        async with self._store.read() as db:
            candidates = (await db.execute(sizes, where)).all()
        chosen: list[int] = []
        total = 0
        for index, size in candidates[:limit]:
            if max_bytes is not None and chosen and total + size > max_bytes:
                break
            chosen.append(index)
            total += size
        return PageWindow(batch_id, chosen, total, len(candidates) > len(chosen), by_completion)

    async def window_pages(self, window: PageWindow, chunk: int = 32) -> AsyncIterator[list[BatchPage]]:
        """The window's pages with their records, ``chunk`` pages a read, so that a window of many
        megabytes never sits in memory whole. A page deleted meanwhile (the batch expired) is left out."""
        _, records = _page_window_queries(False, window.by_completion)
        for start in range(0, len(window.indexes), chunk):
            chosen = window.indexes[start : start + chunk]
            async with self._store.read() as db:
                rows = await db.execute(records, {"batch_id": window.batch_id, "chosen": chosen})
                found = [BatchPage.from_row(row._mapping) for row in rows]
            yield found

    async def search(
        self, key: ApiKey, *, offset: int, limit: int, status: BatchStatus | None = None
    ) -> tuple[list[Batch], int]:
        """The tenant's live batches, newest first, and how many there are in all."""
        where = and_(batches.c.tenant_id == key.tenant_id, batches.c.kind == BatchKind.URLS, _live())
        if status is not None:
            where = and_(where, batches.c.status == status.value)
        async with self._store.read() as db:
            rows = await db.execute(
                select(batches).where(where).order_by(batches.c.created_at.desc()).offset(offset).limit(limit)
            )
            found = [Batch.from_row(row._mapping) for row in rows]
            total = (await db.execute(select(func.count()).select_from(batches).where(where))).scalar_one()
        return found, int(total)

    async def ongoing_crawls(self, key: ApiKey, dialect: str) -> list[Batch]:
        """The tenant's site crawls of ``dialect`` that are queued or running, oldest first."""
        async with self._store.read() as db:
            rows = await db.execute(
                select(batches)
                .where(
                    batches.c.tenant_id == key.tenant_id,
                    batches.c.kind == BatchKind.CRAWL,
                    batches.c.dialect == dialect,
                    batches.c.status.in_((BatchStatus.QUEUED, BatchStatus.RUNNING)),
                )
                .order_by(batches.c.created_at, batches.c.id)
            )
            return [Batch.from_row(row._mapping) for row in rows]

    async def cancel(self, key: ApiKey, batch_id: str, kind: BatchKind = BatchKind.URLS) -> tuple[Batch, int]:
        """Stop the batch: its jobs are cancelled and pages not fetched end as cancelled.

        Returns the batch and how many of its pages were still to fetch.
        """
        batch = await self.get(key, batch_id, kind)
        if batch.ended:
            raise Conflict(f"Batch already {batch.status.value}")
        async with self._store.write() as db:
            changed = await move(
                db, batches, batch.id, BATCH_MOVES, BatchStatus.CANCELLED, {"completed_at": None}
            )
        if not changed:
            raise Conflict("Batch already ended")
        async with self._store.read() as db:
            job_ids = [job.public_id for job in await jobs_of_batches(db, [batch.id])]
        for job_id in job_ids:
            try:
                await self._jobs.cancel(key, job_id)
            except (Conflict, NotFound):
                continue
        in_flight = (await self.counts(batch.id)).pending
        return await self._load(batch.id), in_flight

    async def inputs(self, batch_id: str, token: str, claim: int, job_id: str | None = None) -> Inputs:
        """The next ``claim`` URLs of the batch nobody took yet, with its options and address policy.

        The batch's spider processes ask for their work this way, so however many share a batch,
        each page is handed out once and a fast process simply takes more.
        """
        # The token is checked before any write: a wrong one costs a read, never a write lock.
        async with self._store.read() as db:
            row = (await db.execute(select(batches).where(batches.c.id == batch_id))).first()
        if row is None or not secrets.compare_digest(row.inputs_token, token):
            raise NotFound("Batch not found")
        if job_id is not None:
            await self._check_claimant(batch_id, job_id)
        async with self._store.write() as db:
            unclaimed = (
                select(batch_pages.c.input_index)
                .where(
                    batch_pages.c.batch_id == batch_id,
                    batch_pages.c.status == PageStatus.PENDING,
                    batch_pages.c.claimed_at.is_(None),
                )
                .order_by(batch_pages.c.input_index)
                .limit(claim)
            )
            claimed: Sequence[Any] = ()
            if row.status != BatchStatus.CANCELLED:
                claimed = (
                    await db.execute(
                        update(batch_pages)
                        .where(batch_pages.c.batch_id == batch_id, batch_pages.c.input_index.in_(unclaimed))
                        .values(claimed_at=utc_now(), claimed_by=job_id)
                        .returning(batch_pages.c.input_index, batch_pages.c.url)
                    )
                ).all()
        return Inputs(
            batch_id=batch_id,
            pages=sorted((page.input_index, page.url) for page in claimed),
            options=row.options,
            crawl=row.crawl,
            proxies=self._proxy_urls(PageOptions.from_json(row.options)),
        )

    async def _check_claimant(self, batch_id: str, job_id: str) -> None:
        """A job the gateway has settled (its node lost it, say) or asked to stop gets no more URLs,
        and its process is told to close. A settled job's unfetched claims go back to the batch at
        once; one asked to stop may still be fetching its own, which go back once it is settled."""
        async with self._store.read() as db:
            job = await job_of_batch(db, batch_id, job_id)
        if job is None or not (job.settled or job.cancel_requested):
            return
        if not job.settled:
            raise Gone("this spider's job is being stopped: close")
        async with self._store.write() as db:
            await db.execute(
                update(batch_pages)
                .where(
                    batch_pages.c.batch_id == batch_id,
                    batch_pages.c.claimed_by == job_id,
                    batch_pages.c.status == PageStatus.PENDING,
                )
                .values(claimed_at=None, claimed_by=None)
            )
        raise Gone("this spider's job is over: close")

    async def screenshot(self, key: ApiKey, batch_id: str, input_index: int, position: int = 0) -> bytes:
        """A screenshot of a page of the tenant's batch or crawl, while it lives: the page's own
        (position 0) or its actions' (1, 2, ...)."""
        batch = await self.get(key, batch_id, kind=None)
        async with self._store.read() as db:
            png = (
                await db.execute(
                    select(batch_screenshots.c.png).where(
                        batch_screenshots.c.batch_id == batch.id,
                        batch_screenshots.c.input_index == input_index,
                        batch_screenshots.c.position == position,
                    )
                )
            ).scalar_one_or_none()
        if png is None:
            raise NotFound("Screenshot not found")
        return bytes(png)

    def _proxy_urls(self, options: PageOptions) -> list[str]:
        """The proxies of the batch's pool; they go only to its spiders, never into a response."""
        if options.proxy_pool is None:
            return []
        for pool in self._policy.proxy_pools:
            if pool.name == options.proxy_pool:
                return list(pool.urls)
        raise Conflict(f"proxy pool {options.proxy_pool!r} is no longer configured")

    async def _insert(
        self,
        key: ApiKey,
        batch_id: str,
        dialect: str,
        options: PageOptions,
        accepted: list[tuple[int, str]],
        invalid: list[InvalidUrl],
        idempotency_key: str | None,
        *,
        credits: int,
        kind: BatchKind = BatchKind.URLS,
        cache_key: str | None = None,
        crawl: CrawlScope | None = None,
        webhook: tuple[WebhookTarget, str] | None = None,
    ) -> Batch | None:
        """Store the batch and hold its credits; returns the batch stored before under the same
        idempotency key instead, if another request got there first."""
        try:
            now = utc_now()
            reserved = credits if key.credits_limit is not None else 0
            async with self._store.write() as db:
                if reserved and not await hold_credits(db, key.id, reserved):
                    raise PaymentRequired()
                await db.execute(
                    insert(batches).values(
                        id=batch_id,
                        tenant_id=key.tenant_id,
                        api_key_id=key.id,
                        dialect=dialect,
                        kind=kind,
                        crawl=crawl.to_json() if crawl else None,
                        status=BatchStatus.QUEUED,
                        options=options.to_json(),
                        total_urls=len(accepted),
                        invalid_urls=[{"index": i.index, "url": i.url, "reason": i.reason} for i in invalid],
                        credits_reserved=reserved,
                        restarts=0,
                        credits_used=0,
                        inputs_token=secrets.token_urlsafe(32),
                        idempotency_key=idempotency_key,
                        cache_key=cache_key,
                        created_at=now,
                        expires_at=now + self._policy.retention,
                    )
                )
                if accepted:
                    await db.execute(
                        insert(batch_pages),
                        [
                            {
                                "batch_id": batch_id,
                                "input_index": index,
                                "url": url,
                                "status": PageStatus.PENDING,
                                "record_bytes": 0,
                            }
                            for index, url in accepted
                        ],
                    )
                if webhook is not None:
                    target, resource_type = webhook
                    await subscribe(db, key.tenant_id, batch_id, resource_type, target)
        except IntegrityError:
            existing = await self._by_idempotency_key(key, idempotency_key or "")
            if existing is None:
                raise
            return existing
        return None

    async def start_jobs(self, key: ApiKey, batch_id: str, count: int) -> int:
        """Start ``count`` spider processes for the batch; returns how many started.

        Raises only when none did (the batch then ends as failed); fewer than asked is still a batch.
        """
        async with self._store.read() as db:
            row = (
                await db.execute(
                    select(batches.c.inputs_token, batches.c.options, batches.c.crawl).where(
                        batches.c.id == batch_id
                    )
                )
            ).one()
        spider = await self._spider(SITE_SPIDER if row.crawl else BATCH_SPIDER)
        options = PageOptions.from_json(row.options)
        # The token travels apart, as a secret argument: the node hands it to the process alone.
        arguments = {
            "inputs_url": f"{self._policy.gateway_url}/internal/batches/{batch_id}/inputs",
            INPUTS_TOKEN: row.inputs_token,
        }
        settings = {"BATCH_CLAIM_PATIENCE": str(self._policy.claim_patience_seconds)}
        if options.rendered:
            settings |= {"BATCH_RENDERING": "True", "BROWSER_PAGES": str(self._policy.browser_pages)}
        if row.crawl:
            settings |= _crawl_settings(CrawlScope.from_json(row.crawl))
        started = 0
        for _ in range(count):
            try:
                await self._jobs.start(key, spider, arguments, settings=settings, batch_id=batch_id)
            except GatewayError as exc:
                log.warning("batch %s: a spider process did not start: %s", batch_id, exc.message)
                if not started:
                    await self._set_error(batch_id, f"the batch could not be started: {exc.message}")
                    raise
                break
            started += 1
        return started

    async def _spider(self, name: str) -> Any:
        try:
            return await self._catalog.find(name, BUILTIN_PROJECT)
        except NotFound:
            raise NodeUnavailable(f"The {name} spider is not deployed yet; try again in a moment.") from None

    async def _by_idempotency_key(self, key: ApiKey, idempotency_key: str) -> Batch | None:
        async with self._store.read() as db:
            row = (
                await db.execute(
                    select(batches).where(
                        batches.c.tenant_id == key.tenant_id, batches.c.idempotency_key == idempotency_key
                    )
                )
            ).first()
        return Batch.from_row(row._mapping) if row else None

    async def _set_error(self, batch_id: str, error: str) -> None:
        async with self._store.write() as db:
            await db.execute(update(batches).where(batches.c.id == batch_id).values(error=error))

    async def _load(self, batch_id: str) -> Batch:
        async with self._store.read() as db:
            row = (await db.execute(select(batches).where(batches.c.id == batch_id))).one()
        return Batch.from_row(row._mapping)


def _crawl_settings(scope: CrawlScope) -> dict[str, str]:
    """The Scrapy settings a crawl's own rules ask of its spider: robots.txt, pace, concurrency."""
    settings = {}
    if not scope.obey_robots:
        settings["ROBOTSTXT_OBEY"] = "False"
    if scope.delay_seconds:
        settings |= {"DOWNLOAD_DELAY": str(scope.delay_seconds), "RANDOMIZE_DOWNLOAD_DELAY": "False"}
    if scope.max_concurrency:
        concurrency = str(scope.max_concurrency)
        settings |= {"CONCURRENT_REQUESTS": concurrency, "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency}
    return settings


def _invalid(entry: dict[str, Any]) -> InvalidUrl:
    return InvalidUrl(index=int(entry["index"]), url=str(entry["url"]), reason=str(entry["reason"]))


def _live(now: Any = None) -> Any:
    """Batches still running, or finished and within their retention (at ``now``: a time or a
    bound parameter; the present when not given)."""
    return or_(batches.c.completed_at.is_(None), batches.c.expires_at > (utc_now() if now is None else now))


# The reads a status poll makes, built once (building a statement costs more than running it).
_TENANT_BATCH = select(batches).where(
    batches.c.id == bindparam("batch_id"),
    batches.c.tenant_id == bindparam("tenant_id"),
    _live(bindparam("now")),
)
_TENANT_BATCH_OF_KIND = _TENANT_BATCH.where(batches.c.kind == bindparam("kind"))
_PAGE_COUNTS = (
    select(batch_pages.c.status, func.count(), func.count(batch_pages.c.status_code))
    .where(batch_pages.c.batch_id == bindparam("batch_id"))
    .group_by(batch_pages.c.status)
)


@cache
def _page_window_queries(with_statuses: bool, by_completion: bool) -> tuple[Any, Any]:
    """The two reads of a window of pages: their record sizes, then the chosen pages' records."""
    of_batch = batch_pages.c.batch_id == bindparam("batch_id")
    if with_statuses:
        of_batch = and_(of_batch, batch_pages.c.status.in_(bindparam("statuses", expanding=True)))
    order = (
        (batch_pages.c.finished_at, batch_pages.c.input_index)
        if by_completion
        else (batch_pages.c.input_index,)
    )
    sizes = (
        select(batch_pages.c.input_index, batch_pages.c.record_bytes)
        .where(of_batch)
        .order_by(*order)
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
    )
    records = (
        select(batch_pages, batch_records.c.record)
        .select_from(PAGES_WITH_RECORDS)
        .where(
            batch_pages.c.batch_id == bindparam("batch_id"),
            batch_pages.c.input_index.in_(bindparam("chosen", expanding=True)),
        )
        .order_by(*order)
    )
    return sizes, records
