"""Firecrawl's scrape options and page documents, which Firecrawl v2 and Scrapeless share."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.api import platform_of
from gateway.api.models.actions import actions_json
from gateway.api.models.firecrawl import BatchScrapeBody, ScrapeOptions
from gateway.batches.documents import page_document, screenshot_file_url
from gateway.batches.models import Batch, BatchPage, BatchStatus, PageCounts, PageWindow
from gateway.batches.proxies import ProxyChoice
from spiders_project.contract import SCREENSHOT
from spiders_project.pages import PageOptions

# Records of more than this are streamed page by page rather than answered from one string: a
# 10 MiB status page built whole costs several times its size in dicts and strings.
STREAM_FROM_BYTES = 1024 * 1024

# Both SDKs poll while the status is "scraping" and stop on anything else: never say "queued".
STATUS = {
    BatchStatus.QUEUED: "scraping",
    BatchStatus.RUNNING: "scraping",
    BatchStatus.COMPLETED: "completed",
    BatchStatus.FAILED: "failed",
    BatchStatus.CANCELLED: "cancelled",
}


def ignores_invalid(body: BatchScrapeBody) -> bool:
    """``ignoreInvalidURLs``: true unless false."""
    return body.ignoreInvalidURLs is not False


def scrape_options(
    body: ScrapeOptions, *, main_content_default: bool = True, country: str | None = None
) -> tuple[PageOptions, ProxyChoice | None]:
    """PageOptions (and the proxy asked for) from Firecrawl's scrape options; ``country`` is a
    proxy country given elsewhere (Scrapeless' ``browserOptions.proxy_country``)."""
    formats, screenshot, tracking = {"markdown"}, None, None
    quality, viewport = None, None
    if body.formats is not None:
        formats = {entry.type for entry in body.formats}
        shots = [entry for entry in body.formats if entry.type == "screenshot"]
        if shots:
            screenshot = "full_page" if any(entry.fullPage for entry in shots) else "viewport"
            quality = next((entry.quality for entry in shots if entry.quality is not None), None)
            size = next((entry.viewport for entry in shots if entry.viewport is not None), None)
            viewport = (size.width, size.height) if size else None
        tracking = next((entry for entry in body.formats if entry.type == "changeTracking"), None)
    headers = dict(body.headers or {})
    languages = body.location.languages if body.location else None
    if languages and not any(name.lower() == "accept-language" for name in headers):
        headers["Accept-Language"] = ", ".join(languages)
    country = country or (body.location.country if body.location else None)
    only_main = body.onlyMainContent
    wait_ms = body.waitFor or None
    return (
        PageOptions(
            formats=frozenset(formats),
            only_main_content=main_content_default if only_main is None else only_main,
            include_tags=tuple(body.includeTags or ()),
            exclude_tags=tuple(body.excludeTags or ()),
            headers=headers,
            timeout_ms=body.timeout,
            render=wait_ms is not None,
            wait_ms=wait_ms,
            screenshot=screenshot,
            screenshot_quality=quality,
            viewport=viewport,
            actions=actions_json(body.actions or []),
            track_changes=tracking is not None,
            change_tag=(tracking.tag or "") if tracking else "",
            change_diff=tracking is not None and "git-diff" in (tracking.modes or ()),
        ),
        proxy_choice(body.proxy, country),
    )


def proxy_choice(kind: str | None, country: str | None) -> ProxyChoice | None:
    """Firecrawl's ``proxy`` ("stealth": residential) and a country, when either asks for a pool."""
    if kind != "stealth" and country is None:
        return None
    return ProxyChoice(type="residential" if kind == "stealth" else None, country=country)


def document(page: BatchPage, screenshots_at: str | None = None) -> dict[str, Any]:
    """A page as a Firecrawl document: the formats asked for and metadata (string values only)."""
    return page_document(
        page.record,
        url=page.url,
        status_code=page.status_code,
        error=page.error_message,
        screenshots_at=screenshots_at,
    )


async def documents_answer(
    request: Request, batch: Batch, head: dict[str, Any], window: PageWindow, next_url: str | None
) -> Response:
    """``head``, then ``data``: the window's pages as documents, then ``next`` when given; JSON
    exactly as a JSON response would render it, streamed when the records are large."""
    base_url = str(request.base_url)
    pages = platform_of(request).batches.window_pages(window)

    async def body() -> AsyncIterator[bytes]:
        opening = json_text(head)
        yield (opening[:-1] + ("," if head else "") + '"data":[').encode()
        separator = ""
        async for chunk in pages:
            parts = [json_text(document(page, screenshots_at(base_url, batch.id, page))) for page in chunk]
            if parts:
                yield (separator + ",".join(parts)).encode()
                separator = ","
        yield ("]" + (f',"next":{json_text(next_url)}' if next_url is not None else "") + "}").encode()

    if window.record_bytes > STREAM_FROM_BYTES:
        return StreamingResponse(body(), media_type="application/json")
    return Response(b"".join([part async for part in body()]), media_type="application/json")


def json_text(value: Any) -> str:
    # As Starlette's JSONResponse renders.
    return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


def credits_used(batch: Batch, counts: PageCounts) -> int:
    """What the batch costs: its settled charge once over, the pages fetched so far until then."""
    return batch.credits_used if batch.completed_at else counts.fetched


def screenshots_at(base_url: str, batch_id: str, page: BatchPage) -> str:
    """Where a page's screenshots are served (to the batch's owner), without their extension."""
    return f"{base_url.rstrip('/')}/screenshots/{batch_id}/{page.input_index}"


def screenshot_url(base_url: str, batch_id: str, page: BatchPage) -> str:
    """Where the page's screenshot format is served."""
    return screenshot_file_url(screenshots_at(base_url, batch_id, page), 0, page.record.get(SCREENSHOT))
