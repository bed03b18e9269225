"""A site's map (Firecrawl's ``/v2/map``): its URLs, answered while the caller waits.

A map is a site crawl of kind ``map`` whose spider lists every URL it finds in the sitemaps and on
the pages it fetches (at most ``MAP_FETCH_PAGES``, read for their links and head only, never
converted), within the crawl's scope rules. The caller waits for the crawl to end, waking the job
sync and the batch progress meanwhile, then reads the URLs with the titles and descriptions of the
pages that were fetched.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from gateway.accounts.keys import ApiKey
from gateway.batches.models import BatchKind, PageStatus
from gateway.batches.proxies import ProxyChoice
from gateway.batches.service import BatchService
from gateway.errors import Conflict, NotFound
from spiders_project.pages import PageOptions
from spiders_project.site_scope import CrawlScope

# Pages a map fetches to find links beyond the sitemaps; each costs a credit, as a crawl's page.
MAP_FETCH_PAGES = 100
DEFAULT_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.05
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class MappedUrl:
    url: str
    title: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class SiteMap:
    id: str
    links: list[MappedUrl]
    # The map ran out of time and lists what it had found by then.
    partial: bool


class MapService:
    def __init__(self, batch_service: BatchService, wake: Callable[[], None]) -> None:
        self._batches = batch_service
        self._wake = wake

    async def map_site(
        self,
        key: ApiKey,
        dialect: str,
        scope: CrawlScope,
        headers: dict[str, str],
        *,
        proxy: ProxyChoice | None = None,
        search: str | None = None,
        seconds: float | None = None,
    ) -> SiteMap:
        """The site's URLs in the order found (by relevance to ``search`` when given)."""
        fetch_limit = 0 if scope.sitemap == "only" else min(scope.page_limit, MAP_FETCH_PAGES)
        scope = replace(scope, listing=True, fetch_limit=fetch_limit)
        options = PageOptions(formats=frozenset({"links"}), headers=headers, listing=True)
        batch = await self._batches.create_crawl(key, dialect, scope, options, proxy=proxy)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (seconds or DEFAULT_TIMEOUT_SECONDS)
        partial = False
        while not (await self._batches.get(key, batch.id, BatchKind.MAP)).ended:
            if loop.time() >= deadline:
                partial = True
                with contextlib.suppress(Conflict, NotFound):
                    await self._batches.cancel(key, batch.id, BatchKind.MAP)
                break
            self._wake()
            await asyncio.sleep(POLL_SECONDS)
        window = await self._batches.window(batch.id, statuses=[PageStatus.COMPLETED], limit=scope.page_limit)
        links = [
            MappedUrl(page.url, _text(page.record, "title"), _text(page.record, "description"))
            for page in await self._batches.pages(window)
        ]
        return SiteMap(batch.id, by_relevance(links, search) if search else links, partial)


def by_relevance(links: list[MappedUrl], search: str) -> list[MappedUrl]:
    """The links, those that match more of the search's words (in URL, title or description) first;
    links that match equally keep their order."""
    words = {word.lower() for word in _WORD.findall(search)}
    if not words:
        return links

    def score(link: MappedUrl) -> int:
        found = {
            word.lower()
            for word in _WORD.findall(" ".join(filter(None, (link.url, link.title, link.description))))
        }
        return len(words & found)

    return sorted(links, key=score, reverse=True)


def _text(record: dict[str, object], name: str) -> str | None:
    metadata = record.get("metadata")
    value = metadata.get(name) if isinstance(metadata, dict) else None
    return value if isinstance(value, str) else None
