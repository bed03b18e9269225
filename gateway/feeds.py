"""Reading a job's item feed from its node, by byte offset, into the store.

Only whole lines are taken. The new offset, the items and the credits they cost are written in one
transaction that only applies if the offset is still the one read, so an item is never counted twice.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.jobs import Job
from gateway.scrapyd import ScrapydClient
from gateway.store import Store
from gateway.store.tables import api_keys, batch_pages, batch_records, batch_screenshots, batches, items, jobs

log = logging.getLogger(__name__)

CHUNK_BYTES = 4 * 1024 * 1024
# An item larger than this is skipped (and logged) rather than read whole: ingestion goes on past it.
# The page spiders keep their records below it (spiders_project.pipelines.MAX_RECORD_BYTES).
MAX_LINE_BYTES = 64 * 1024 * 1024


class FeedIngest:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def out_of_credits(self, job: Job) -> bool:
        """Whether the key that pays for this item job has spent its credits (batches pay up front)."""
        if job.batch_id is not None or job.api_key_id is None:
            return False
        query = select(api_keys.c.credits_limit, api_keys.c.credits_used).where(
            api_keys.c.id == job.api_key_id
        )
        async with self._store.read() as db:
            row = (await db.execute(query)).first()
        return row is not None and row.credits_limit is not None and row.credits_used >= row.credits_limit

    async def ingest(self, client: ScrapydClient, job: Job) -> int:
        """Take every complete line past the job's offset; returns how many items were added.

        Once the key's credits are spent, no more of an item job's feed is taken: the chunk that
        spent them is the most it can overrun by.
        """
        offset, seq, added = job.feed_offset, job.items_scraped, 0
        chunk = CHUNK_BYTES
        while True:
            if await self.out_of_credits(job):
                return added
            data = await client.read_feed(job.project, job.spider_name, job.id, offset, chunk)
            end = data.rfind(b"\n")
            if end < 0:
                if len(data) < chunk:
                    return added
                if chunk >= MAX_LINE_BYTES:
                    end_of_line = await self._end_of_line(client, job, offset + len(data))
                    if end_of_line is None:
                        return added  # the line is not complete yet
                    log.error(
                        "job %s: skipped a feed line of over %d bytes at %d", job.id, MAX_LINE_BYTES, offset
                    )
                    if not await self._save(job, offset, end_of_line + 1, seq, []):
                        return added
                    offset, chunk = end_of_line + 1, CHUNK_BYTES
                    continue
                chunk *= 2
                continue
            documents = _documents(data[:end], job.id)
            if not await self._save(job, offset, offset + end + 1, seq, documents):
                return added  # someone else took this stretch of the feed
            offset += end + 1
            seq += len(documents)
            added += len(documents)
            if len(data) < chunk:
                return added

    async def _end_of_line(self, client: ScrapydClient, job: Job, position: int) -> int | None:
        """The offset of the first newline at or after ``position``, read a chunk at a time."""
        while True:
            data = await client.read_feed(job.project, job.spider_name, job.id, position, CHUNK_BYTES)
            found = data.find(b"\n")
            if found >= 0:
                return position + found
            if len(data) < CHUNK_BYTES:
                return None
            position += len(data)

    async def _save(
        self, job: Job, offset: int, new_offset: int, seq: int, documents: list[Document]
    ) -> bool:
        async with self._store.write() as db:
            moved = await db.execute(
                update(jobs)
                .where(jobs.c.id == job.id, jobs.c.feed_offset == offset)
                .values(feed_offset=new_offset, items_scraped=jobs.c.items_scraped + len(documents))
            )
            if moved.rowcount != 1:
                return False
            if not documents:
                return True
            if job.batch_id is not None:
                await _save_pages(db, job.batch_id, documents)
                return True
            await db.execute(
                insert(items),
                [
                    {"job_id": job.id, "seq": seq + index, "data": doc.text}
                    for index, doc in enumerate(documents)
                ],
            )
            if job.api_key_id:
                await db.execute(
                    update(api_keys)
                    .where(api_keys.c.id == job.api_key_id)
                    .values(credits_used=api_keys.c.credits_used + len(documents))
                )
        return True


@dataclass(frozen=True)
class Document:
    """One feed line: its text as exported, and its value."""

    text: str
    value: Any


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


async def _save_pages(db: AsyncConnection, batch_id: str, documents: list[Document]) -> None:
    now = datetime.now(UTC)
    pages, records, screenshots = [], [], []
    for doc in documents:
        value = doc.value
        if not isinstance(value, dict) or not isinstance(value.get("input_index"), int):
            log.warning("batch %s: skipped a feed line that is not a page record", batch_id)
            continue
        if isinstance(value.get("screenshot"), str):
            # The PNG is kept apart and served by URL; the record only says it has one.
            try:
                png = base64.b64decode(value["screenshot"], validate=True)
            except ValueError:
                png = b""
            value["screenshot"] = bool(png)
            if png:
                screenshots.append({"batch_id": batch_id, "input_index": value["input_index"], "png": png})
            doc = Document(json.dumps(value, ensure_ascii=False), value)
        pages.append(
            {
                "page_batch": batch_id,
                "page_index": value["input_index"],
                "page_url": value.get("url"),
                "page_status": "failed" if value.get("status") == "failed" else "completed",
                "page_status_code": value.get("status_code"),
                "page_error_code": value.get("error_code"),
                "page_error": value.get("error"),
                "page_duration": value.get("duration_ms"),
                "page_retries": value.get("retry_count"),
                "page_content_hash": value.get("content_hash"),
                "page_record_bytes": len(doc.text.encode()),
                "page_finished": now,
            }
        )
        # The line as exported is the record: its fields beyond the formats do no harm.
        records.append({"batch_id": batch_id, "input_index": value["input_index"], "record": doc.text})
    if not pages:
        return
    await _add_discovered_pages(db, batch_id, pages)
    if screenshots:
        indexes = [shot["input_index"] for shot in screenshots]
        await db.execute(
            delete(batch_screenshots).where(
                batch_screenshots.c.batch_id == batch_id, batch_screenshots.c.input_index.in_(indexes)
            )
        )
        await db.execute(insert(batch_screenshots), screenshots)
    updated = await db.execute(_PAGE_UPDATE, pages)
    if updated.rowcount == len(pages):
        await db.execute(insert(batch_records), records)
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


async def _add_discovered_pages(db: AsyncConnection, batch_id: str, pages: list[dict[str, Any]]) -> None:
    """A site crawl's pages are found as it goes: each gets its row when its record arrives."""
    kind = (await db.execute(select(batches.c.kind).where(batches.c.id == batch_id))).scalar_one_or_none()
    if kind != "crawl":
        return
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


def _documents(block: bytes, job_id: str) -> list[Document]:
    documents = []
    for line in block.split(b"\n"):
        text = line.strip().decode("utf-8", errors="replace")
        if not text:
            continue
        try:
            value = json.loads(text)
        except ValueError:
            log.warning("job %s: skipped a feed line that is not JSON: %.200s", job_id, text)
            continue
        documents.append(Document(text, value))
    return documents
