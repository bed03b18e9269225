"""A batch's page records, as its spiders export them, filling the batch's pages.

Written on the connection of the feed ingestion that read them (``gateway.jobs.feeds``), so a
record, its page's facts and the feed offset move together.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update

from gateway.batches.changes import track_changes
from gateway.batches.documents import image_kind, page_document
from gateway.batches.models import BatchKind
from gateway.clock import utc_now
from gateway.jobs.feeds import Document
from gateway.store import Connection
from gateway.store.tables import batch_pages, batch_records, batch_screenshots, batches
from gateway.webhooks.models import PAGE
from gateway.webhooks.outbox import Event, emit
from spiders_project.contract import ACTIONS, SCREENSHOT, PageFacts, RecordStatus
from spiders_project.pages import PageOptions

log = logging.getLogger(__name__)


_BATCH = select(batches.c.kind, batches.c.tenant_id, batches.c.options).where(
    batches.c.id == bindparam("batch_id")
)
# A batch page record, as the batch spider's record pipeline exports it, fills its page's row.
_PAGE_UPDATE = (
    update(batch_pages)
    .where(
        batch_pages.c.batch_id == bindparam("page_batch"),
        batch_pages.c.input_index == bindparam("page_index"),
        batch_pages.c.status == "pending",
    )
    .values(
        status=bindparam("page_status"),
        status_code=bindparam("page_status_code"),
        error_code=bindparam("page_error_code"),
        error_message=bindparam("page_error"),
        duration_ms=bindparam("page_duration"),
        retry_count=bindparam("page_retries"),
        content_hash=bindparam("page_content_hash"),
        record_bytes=bindparam("page_record_bytes"),
        finished_at=bindparam("page_finished"),
    )
)


async def save_page_records(db: Connection, batch_id: str, documents: list[Document]) -> None:
    now = utc_now()
    pages: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    screenshots: list[dict[str, Any]] = []
    recorded: dict[int, tuple[PageFacts, dict[str, Any]]] = {}
    for doc in documents:
        value = doc.value
        facts = PageFacts.of_record(value)
        if facts is None:
            log.warning("batch %s: skipped a feed line that is not a page record", batch_id)
            continue
        images = _keep_images_apart(value)
        if images:
            screenshots += [
                {"batch_id": batch_id, "input_index": facts.input_index, "position": position, "png": image}
                for position, image in images
            ]
            doc = Document(json.dumps(value, ensure_ascii=False), value)
        pages.append(
            {
                "page_batch": batch_id,
                "page_index": facts.input_index,
                "page_url": facts.url,
                "page_status": facts.status.value,
                "page_status_code": facts.status_code,
                "page_error_code": facts.error_code,
                "page_error": facts.error,
                "page_duration": facts.duration_ms,
                "page_retries": facts.retry_count,
                "page_content_hash": facts.content_hash,
                "page_record_bytes": len(doc.text.encode()),
                "page_finished": now,
            }
        )
        recorded[facts.input_index] = (facts, value)
        # The line as exported is the record: its fields beyond the formats do no harm.
        records.append({"batch_id": batch_id, "input_index": facts.input_index, "record": doc.text})
    if not pages:
        return
    batch = (await db.execute(_BATCH, {"batch_id": batch_id})).first()
    if batch is None:
        return  # gone (expired) while its spider still wrote
    if BatchKind(batch.kind).discovers:
        await _add_discovered_pages(db, batch_id, pages)
        await _count_found_pages(db, batch_id, recorded)
    options = PageOptions.from_json(batch.options)
    if options.track_changes:
        tracked = await track_changes(db, batch.tenant_id, options, list(recorded.values()), now)
        if tracked:
            _rewrite(records, pages, {id(value) for value in tracked}, recorded)
    if screenshots:
        indexes = list({shot["input_index"] for shot in screenshots})
        await db.execute(
            delete(batch_screenshots).where(
                batch_screenshots.c.batch_id == batch_id, batch_screenshots.c.input_index.in_(indexes)
            )
        )
        await db.execute(insert(batch_screenshots), screenshots)
    updated = await db.execute(_PAGE_UPDATE, pages)
    if updated.rowcount == len(pages):
        await db.execute(insert(batch_records), records)
        await emit(db, batch_id, (_page_event(*recorded[int(record["input_index"])]) for record in records))
        return
    # Some pages had their record already (a page fetched twice): keep the first of each.
    known = {
        row.input_index
        for row in await db.execute(
            select(batch_records.c.input_index).where(
                batch_records.c.batch_id == batch_id,
                batch_records.c.input_index.in_([record["input_index"] for record in records]),
            )
        )
    }
    fresh = [record for record in records if record["input_index"] not in known]
    if fresh:
        await db.execute(insert(batch_records), fresh)
        await emit(db, batch_id, (_page_event(*recorded[int(record["input_index"])]) for record in fresh))


def _keep_images_apart(record: dict[str, Any]) -> list[tuple[int, bytes]]:
    """The screenshots of a record as its spider wrote it (in base64): the page's own at position
    0, its actions' from 1. Each is kept apart and served by URL; the record keeps its kind."""
    images: list[tuple[int, bytes]] = []
    if isinstance(record.get(SCREENSHOT), str):
        image = _decoded(record[SCREENSHOT])
        record[SCREENSHOT] = image_kind(image) if image else False
        if image:
            images.append((0, image))
    actions = record.get(ACTIONS)
    if isinstance(actions, dict) and isinstance(actions.get("screenshots"), list):
        kinds: list[str] = []
        for position, encoded in enumerate(actions["screenshots"], start=1):
            image = _decoded(encoded) if isinstance(encoded, str) else b""
            kinds.append(image_kind(image) if image else "")
            if image:
                images.append((position, image))
        actions["screenshots"] = kinds
    return images


def _decoded(encoded: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError:
        return b""


def _page_event(facts: PageFacts, record: dict[str, Any]) -> Event:
    """A page's webhook event: its document, or for a failed page its URL and status code."""
    if facts.status == RecordStatus.COMPLETED:
        document = page_document(record, url=facts.url, status_code=facts.status_code, error=None)
        return Event(PAGE, [document])
    failed = {"metadata": {"sourceURL": facts.url, "statusCode": facts.status_code}}
    return Event(PAGE, [failed], success=False, error=facts.error or facts.error_code or "failed")


def _rewrite(
    records: list[dict[str, Any]],
    pages: list[dict[str, Any]],
    changed: set[int],
    recorded: dict[int, tuple[PageFacts, dict[str, Any]]],
) -> None:
    """The stored text (and size) of the records change tracking added to."""
    by_index = {page["page_index"]: page for page in pages}
    for record in records:
        index = int(record["input_index"])
        value = recorded[index][1]
        if id(value) in changed:
            record["record"] = json.dumps(value, ensure_ascii=False)
            by_index[index]["page_record_bytes"] = len(record["record"].encode())


async def _count_found_pages(
    db: Connection, batch_id: str, recorded: dict[int, tuple[PageFacts, dict[str, Any]]]
) -> None:
    """A crawl's pages found so far: those recorded and those its spider's last record says wait in
    its frontier (under the limit), kept in ``total_urls``."""
    last = max(recorded)
    frontier = recorded[last][1].get("frontier")
    if isinstance(frontier, int) and not isinstance(frontier, bool) and frontier >= 0:
        found = last + 1 + frontier
        await db.execute(update(batches).where(batches.c.id == batch_id).values(total_urls=found))


async def _add_discovered_pages(db: Connection, batch_id: str, pages: list[dict[str, Any]]) -> None:
    """A site crawl's (or map's) pages are found as it goes: each gets its row when its record arrives."""
    indexes = [page["page_index"] for page in pages]
    known = {
        row.input_index
        for row in await db.execute(
            select(batch_pages.c.input_index).where(
                batch_pages.c.batch_id == batch_id, batch_pages.c.input_index.in_(indexes)
            )
        )
    }
    fresh = {
        page["page_index"]: page["page_url"]
        for page in pages
        if page["page_index"] not in known and isinstance(page["page_url"], str)
    }
    if fresh:
        await db.execute(
            insert(batch_pages),
            [
                {
                    "batch_id": batch_id,
                    "input_index": index,
                    "url": url,
                    "status": "pending",
                    "record_bytes": 0,
                }
                for index, url in fresh.items()
            ],
        )
