"""Firecrawl v2's one-page scrape (``POST /v2/scrape``), answered with the page's document, and
its read back (``GET /v2/scrape/{scrape_id}``) while the scrape is kept."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.api import platform_of
from gateway.api.models import firecrawl as models
from gateway.api.operations import FIRECRAWL, KEY_ERRORS, Operation
from gateway.api.page_documents import document, json_text, scrape_options, screenshots_at
from gateway.api.validation import parse_body
from gateway.batches.scrapes import Scrape
from gateway.clock import timestamp
from gateway.http import api_key_of


async def scrape(request: Request) -> Response:
    platform = platform_of(request)
    body = await parse_body(request, models.ScrapeBody)
    options, proxy = scrape_options(body)
    max_age_ms = models.DEFAULT_MAX_AGE_MS if body.maxAge is None else body.maxAge
    done = await platform.scrapes.scrape(
        api_key_of(request),
        "firecrawl",
        body.url,
        options,
        proxy=proxy,
        max_age=timedelta(milliseconds=max_age_ms),
        store_in_cache=body.storeInCache is not False,
    )
    return _answer(request, done)


async def stored_scrape(request: Request) -> Response:
    platform = platform_of(request)
    done = await platform.scrapes.get(api_key_of(request), request.path_params["scrape_id"])
    return _answer(request, done)


def _answer(request: Request, done: Scrape) -> Response:
    page, batch = done.page, done.batch
    doc: dict[str, Any] = document(page, screenshots_at(str(request.base_url), batch.id, page))
    doc["metadata"] |= {
        "scrapeId": batch.id,
        "proxyUsed": _proxy_used(request, batch.options.proxy_pool),
        "cacheState": "hit" if done.cache_hit else "miss",
        "cachedAt": timestamp(done.scraped_at),
        "creditsUsed": 1,
    }
    return Response(json_text({"success": True, "data": doc}), media_type="application/json")


def _proxy_used(request: Request, pool_name: str | None) -> str:
    """Firecrawl's names: "stealth" through a residential pool, "basic" otherwise."""
    pools = platform_of(request).settings.proxy_pools
    pool = next((pool for pool in pools if pool.name == pool_name), None)
    return "stealth" if pool is not None and pool.type == "residential" else "basic"


OPERATIONS = [
    Operation(
        "POST",
        "/v2/scrape",
        scrape,
        FIRECRAWL,
        "Scrape one page and answer with its document",
        body=models.ScrapeBody,
        response=models.ScrapeAnswer,
        # A scrape that outlives its timeout (408), an action that could not be done (422), a page
        # that got no answer (502).
        errors=(*KEY_ERRORS, 408, 422, 502),
    ),
    Operation(
        "GET",
        "/v2/scrape/{scrape_id}",
        stored_scrape,
        FIRECRAWL,
        "A scrape's document, while the scrape is kept",
        response=models.ScrapeAnswer,
    ),
]
