"""Reading a job's item feed from its node, by byte offset, into the store.

Only whole lines are taken. The new offset, the items and the credits they cost are written in one
transaction that only applies if the offset is still the one read, so an item is never counted twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, update

from gateway.accounts.credits import charge_credits, credits_spent
from gateway.jobs.models import Job
from gateway.metrics import FEEDS, ITEMS_INGESTED, PAGE_RECORDS_INGESTED
from gateway.nodes.scrapyd import ScrapydClient
from gateway.store import Connection, Store
from gateway.store.tables import items, jobs

log = logging.getLogger(__name__)

CHUNK_BYTES = 4 * 1024 * 1024
# An item larger than this is skipped (and logged) rather than read whole: ingestion goes on past it.
# The page spiders keep their records below it (spiders_project.pipelines.MAX_RECORD_BYTES).
MAX_LINE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Document:
    """One feed line: its text as exported, and its value."""

    text: str
    value: Any


# Where a batch job's feed lines go instead of ``items``: the batch's page records, written on the
# feed's transaction (``gateway.batches.records``).
PageRecordSink = Callable[[Connection, str, list[Document]], Awaitable[None]]


class FeedIngest:
    def __init__(self, store: Store, page_records: PageRecordSink | None = None) -> None:
        self._store = store
        self._page_records = page_records

    async def out_of_credits(self, job: Job) -> bool:
        """Whether the key that pays for this item job has spent its credits (batches pay up front)."""
        if job.batch_id is not None or job.api_key_id is None:
            return False
        async with self._store.read() as db:
            return await credits_spent(db, job.api_key_id)

    async def ingest(self, client: ScrapydClient, job: Job) -> int:
        """Take every complete line past the job's offset; returns how many items were added.

        Once the key's credits are spent, no more of an item job's feed is taken: the chunk that
        spent them is the most it can overrun by.
        """
        FEEDS.reading(job.id)
        offset, seq, added = job.feed_offset, job.items_scraped, 0
        chunk = CHUNK_BYTES
        while True:
            if await self.out_of_credits(job):
                return added
            data = await client.read_feed(job.project, job.spider_name, job.id, offset, chunk)
            end = data.rfind(b"\n")
            if end < 0:
                if len(data) < chunk:
                    FEEDS.caught_up(job.id)
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
            documents = feed_documents(data[:end], job.id)
            if not await self._save(job, offset, offset + end + 1, seq, documents):
                return added  # someone else took this stretch of the feed
            (PAGE_RECORDS_INGESTED if job.batch_id is not None else ITEMS_INGESTED).inc(len(documents))
            offset += end + 1
            seq += len(documents)
            added += len(documents)
            if len(data) < chunk:
                FEEDS.caught_up(job.id)
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
                if self._page_records is None:
                    raise RuntimeError("a batch job's feed needs a page record sink")
                await self._page_records(db, job.batch_id, documents)
                return True
            await db.execute(
                insert(items),
                [
                    {"job_id": job.id, "seq": seq + index, "data": doc.text}
                    for index, doc in enumerate(documents)
                ],
            )
            if job.api_key_id:
                await charge_credits(db, job.api_key_id, len(documents))
        return True


def feed_documents(block: bytes, job_id: str) -> list[Document]:
    documents = []
    for line in block.split(b"\n"):
        text = line.strip().decode("utf-8", errors="replace")
        if not text:
            continue
        constants: list[str] = []
        try:
            # NaN and Infinity, which Python writes and JSON has not, become null: a record is
            # served as JSON later, which cannot carry them.
            value = json.loads(text, parse_constant=constants.append)
        except ValueError:
            log.warning("job %s: skipped a feed line that is not JSON: %.200s", job_id, text)
            continue
        if constants:
            # ASCII, as an escaped lone surrogate ("\ud83d") stays escaped: the store takes no raw one.
            text = json.dumps(value)
        documents.append(Document(text, value))
    return documents
