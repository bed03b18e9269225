"""One-page scrapes answered while the caller waits (Firecrawl's ``/v2/scrape``).

A scrape is a batch of one page (kind ``scrape``): the same screening, spider, pipeline, address
policy, credits and retention as any batch. Its caller waits for the page's record, not for the
batch to be marked completed, and wakes the job sync while it waits, so neither the dispatch of the
spider nor the ingestion of its feed waits for the sync's next pass.

A scrape stored with a cache key serves later scrapes of the same page with the same options, by
the same tenant, that accept a copy no older than their ``maxAge``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select

from gateway.accounts.credits import hold_credits
from gateway.accounts.keys import ApiKey
from gateway.batches.models import Batch, BatchKind, BatchPage, PageStatus
from gateway.batches.proxies import ProxyChoice
from gateway.batches.service import BatchService
from gateway.clock import utc_now
from gateway.errors import Conflict, GatewayError, NotFound, PaymentRequired
from gateway.store import Store
from gateway.store.tables import batch_pages, batches
from spiders_project.actions import ACTION_FAILED, actions_seconds
from spiders_project.pages import PageOptions

# How often a waiting scrape looks for its page's record (and wakes the sync).
POLL_SECONDS = 0.03
# Beyond the page's own timeout: time for its spider process to start and its record to arrive.
START_MARGIN_SECONDS = 10.0
DEFAULT_TIMEOUT_SECONDS = 60.0

_CACHED = (
    select(batches.c.id)
    .join(batch_pages, batch_pages.c.batch_id == batches.c.id)
    .where(
        batches.c.tenant_id == bindparam("tenant_id"),
        batches.c.cache_key == bindparam("cache_key"),
        batches.c.kind == BatchKind.SCRAPE.value,
        batches.c.created_at >= bindparam("since"),
        batches.c.expires_at > bindparam("now"),
        batch_pages.c.status == PageStatus.COMPLETED.value,
    )
    .order_by(batches.c.created_at.desc())
    .limit(1)
)
_PAGE_STATUS = select(batch_pages.c.status).where(batch_pages.c.batch_id == bindparam("batch_id"))


class ScrapeTimeout(GatewayError):
    status_code = 408
    code = "SCRAPE_TIMEOUT"
    default_message = "The scrape did not finish within its timeout."


class ScrapeFailed(GatewayError):
    """The page got no answer (refused, unreachable, timed out on the wire): the site's failure,
    not the request's nor the platform's. A page that answered with an error status is no failure
    of the scrape: its document says the status."""

    status_code = 502

    def __init__(self, page: BatchPage) -> None:
        super().__init__(
            f"The page could not be scraped: {page.error_message or page.error_code or 'failed'}"
        )
        self.code = page.error_code or "SCRAPE_FAILED"
        if self.code == ACTION_FAILED:
            # The page answered, but not as the scrape's actions expected (a selector, a key).
            self.status_code = 422


@dataclass(frozen=True)
class Scrape:
    batch: Batch
    page: BatchPage
    # Served from an earlier scrape (that scrape's batch and page) rather than fetched now.
    cache_hit: bool

    @property
    def scraped_at(self) -> datetime:
        return self.page.finished_at or self.batch.created_at


def cache_key(url: str, options: PageOptions, proxy: ProxyChoice | None) -> str:
    """What makes two scrapes the same: the URL as given, every page option, the proxy asked for."""
    proxy_part = None if proxy is None else {"type": proxy.type, "country": proxy.country}
    text = json.dumps([url, options.to_json(), proxy_part], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class ScrapeService:
    def __init__(self, store: Store, batch_service: BatchService, wake_sync: Callable[[], None]) -> None:
        self._store = store
        self._batches = batch_service
        self._wake_sync = wake_sync

    async def scrape(
        self,
        key: ApiKey,
        dialect: str,
        url: str,
        options: PageOptions,
        *,
        proxy: ProxyChoice | None = None,
        max_age: timedelta | None = None,
        store_in_cache: bool = True,
    ) -> Scrape:
        """The page, scraped now or (within ``max_age``) from the tenant's copy of the same scrape.

        Raises ScrapeFailed when the page could not be fetched and ScrapeTimeout when it took
        longer than its timeout (the scrape is then cancelled and its credit given back)."""
        # The proxy pool a scrape would get is part of what it asked for: the pool's name is not.
        fingerprint = cache_key(url, options, proxy)
        if options.track_changes:
            # A copy would say what changed since a scrape before it: tracked scrapes always fetch.
            max_age, store_in_cache = None, False
        if max_age:
            cached = await self._cached(key, fingerprint, max_age)
            if cached is not None:
                return cached
        page_seconds = options.timeout_ms / 1000 if options.timeout_ms else DEFAULT_TIMEOUT_SECONDS
        timeout = page_seconds + actions_seconds(options.actions) + START_MARGIN_SECONDS
        batch, _ = await self._batches.create(
            key,
            dialect,
            [url],
            options,
            proxy=proxy,
            ignore_invalid=False,
            kind=BatchKind.SCRAPE,
            cache_key=fingerprint if store_in_cache else None,
        )
        page = await self._wait_for_page(batch, timeout)
        if page is None:
            with contextlib.suppress(Conflict, NotFound):
                await self._batches.cancel(key, batch.id, BatchKind.SCRAPE)
            raise ScrapeTimeout(f"The scrape did not finish within {timeout:.0f} s.")
        return _answered(Scrape(batch, page, cache_hit=False))

    async def get(self, key: ApiKey, scrape_id: str) -> Scrape:
        """A stored scrape of the tenant, while its batch is kept."""
        batch = await self._batches.get(key, scrape_id, BatchKind.SCRAPE)
        page = await self._page(batch.id)
        if page is None or page.status == PageStatus.PENDING:
            raise Conflict("The scrape is still under way.")
        return _answered(Scrape(batch, page, cache_hit=False))

    async def _cached(self, key: ApiKey, fingerprint: str, max_age: timedelta) -> Scrape | None:
        now = utc_now()
        where = {"tenant_id": key.tenant_id, "cache_key": fingerprint, "since": now - max_age, "now": now}
        async with self._store.read() as db:
            batch_id = (await db.execute(_CACHED, where)).scalar_one_or_none()
        if batch_id is None:
            return None
        batch = await self._batches.get(key, batch_id, BatchKind.SCRAPE)
        page = await self._page(batch_id)
        if page is None:
            return None  # expired meanwhile
        # A copy costs what a fetch does: one credit.
        if key.credits_limit is not None:
            async with self._store.write() as db:
                if not await hold_credits(db, key.id, 1):
                    raise PaymentRequired()
        return Scrape(batch, page, cache_hit=True)

    async def _wait_for_page(self, batch: Batch, seconds: float) -> BatchPage | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            self._wake_sync()
            async with self._store.read() as db:
                status = (await db.execute(_PAGE_STATUS, {"batch_id": batch.id})).scalar_one_or_none()
            if status is None:
                return None  # the batch is gone (expired, or its jobs could not start)
            if status != PageStatus.PENDING.value:
                # Its record, or its end without one (the batch failed: every page left fails).
                return await self._page(batch.id)
            await asyncio.sleep(POLL_SECONDS)
        return None

    async def _page(self, batch_id: str) -> BatchPage | None:
        window = await self._batches.window(batch_id, limit=1)
        pages = await self._batches.pages(window)
        return pages[0] if pages else None


def _answered(scrape: Scrape) -> Scrape:
    """The scrape, if its page got an HTTP answer (whatever its status); ScrapeFailed if none."""
    if scrape.page.status == PageStatus.COMPLETED or scrape.page.status_code is not None:
        return scrape
    raise ScrapeFailed(scrape.page)
