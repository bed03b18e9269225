"""Compare-and-set on a real store: of two movers that saw the same row, one wins."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from gateway.jobs.models import JOB_MOVES, JobStatus
from gateway.store import Store
from gateway.store.moves import compare_and_set
from gateway.store.tables import schedules, tenants


def test_of_two_claims_on_what_both_saw_one_wins(tmp_path: Path) -> None:
    async def claims() -> tuple[bool, bool, datetime | None]:
        store = Store(f"sqlite+aiosqlite:///{tmp_path / 'moves.sqlite3'}")
        await store.migrate()
        seen = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
        try:
            async with store.write() as db:
                await db.execute(insert(tenants).values(id="t", name="t", created_at=seen))
                await db.execute(
                    insert(schedules).values(
                        id="s",
                        tenant_id="t",
                        name="s",
                        cron="* * * * *",
                        timezone="UTC",
                        target="spider",
                        arguments={},
                        enabled=True,
                        overlap="skip",
                        next_run_at=seen,
                        created_at=seen,
                        updated_at=seen,
                    )
                )
            results = []
            for following in (
                datetime(2026, 6, 1, 10, 1, tzinfo=UTC),
                datetime(2026, 6, 1, 10, 2, tzinfo=UTC),
            ):
                async with store.write() as db:
                    results.append(
                        await compare_and_set(
                            db, schedules, "s", {"next_run_at": seen}, next_run_at=following
                        )
                    )
            async with store.read() as db:
                stored = (await db.execute(select(schedules.c.next_run_at))).scalar_one()
        finally:
            await store.close()
        return results[0], results[1], stored

    first, second, stored = asyncio.run(claims())
    assert (first, second) == (True, False)
    assert stored is not None
    assert stored.minute == 1


def test_a_job_never_moves_out_of_an_end() -> None:
    for end in (JobStatus.FINISHED, JobStatus.ERROR):
        assert not any(JOB_MOVES.allows(end, target) for target in JobStatus)
    # A cancelled job waits for its process to stop, and is settled cancelled whatever its exit.
    assert [target for target in JobStatus if JOB_MOVES.allows(JobStatus.CANCELLED, target)] == [
        JobStatus.CANCELLED
    ]
    assert JOB_MOVES.sources(JobStatus.RUNNING) == [JobStatus.PENDING]
