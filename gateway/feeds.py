"""Reading a job's item feed from its node, by byte offset, into the store.

Only whole lines are taken. The new offset, the items and the credits they cost are written in one
transaction that only applies if the offset is still the one read, so an item is never counted twice.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import insert, update

from gateway.jobs import Job
from gateway.scrapyd import ScrapydClient
from gateway.store import Store
from gateway.store.tables import api_keys, items, jobs

log = logging.getLogger(__name__)

CHUNK_BYTES = 4 * 1024 * 1024
# One item larger than this stops the feed's ingestion (and is logged) rather than exhaust memory.
MAX_LINE_BYTES = 256 * 1024 * 1024


class FeedIngest:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def ingest(self, client: ScrapydClient, job: Job) -> int:
        """Take every complete line past the job's offset; returns how many items were added."""
        offset, seq, added = job.feed_offset, job.items_scraped, 0
        chunk = CHUNK_BYTES
        while True:
            data = await client.read_feed(job.project, job.spider_name, job.id, offset, chunk)
            end = data.rfind(b"\n")
            if end < 0:
                if len(data) < chunk:
                    return added
                if chunk >= MAX_LINE_BYTES:
                    log.error(
                        "job %s: feed line at offset %d is over %d bytes", job.id, offset, MAX_LINE_BYTES
                    )
                    return added
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

    async def _save(self, job: Job, offset: int, new_offset: int, seq: int, documents: list[str]) -> bool:
        async with self._store.write() as db:
            moved = await db.execute(
                update(jobs)
                .where(jobs.c.id == job.id, jobs.c.feed_offset == offset)
                .values(feed_offset=new_offset, items_scraped=jobs.c.items_scraped + len(documents))
            )
            if moved.rowcount != 1:
                return False
            if documents:
                await db.execute(
                    insert(items),
                    [
                        {"job_id": job.id, "seq": seq + index, "data": doc}
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


def _documents(block: bytes, job_id: str) -> list[str]:
    documents = []
    for line in block.split(b"\n"):
        text = line.strip().decode("utf-8", errors="replace")
        if not text:
            continue
        try:
            json.loads(text)
        except ValueError:
            log.warning("job %s: skipped a feed line that is not JSON: %.200s", job_id, text)
            continue
        documents.append(text)
    return documents
