"""Background work: loops that each do one pass (``tick``) every ``interval`` seconds, run together.

Every loop of the platform (the job sync, batch and crawl progress, batch expiry, the scheduler) has
this one shape, and one runner starts and stops them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Protocol

log = logging.getLogger(__name__)


class Loop(Protocol):
    """Work done again and again; a pass must be safe to repeat and to stop at any await."""

    name: str
    interval: float

    async def tick(self) -> None: ...


class Background:
    """Runs each loop every ``interval`` seconds until stopped; a failed pass is logged and the next
    one tries again."""

    def __init__(self, loops: Sequence[Loop]) -> None:
        self.loops = list(loops)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(_every(loop), name=loop.name) for loop in self.loops]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []


async def _every(loop: Loop) -> None:
    while True:
        started = time.monotonic()
        try:
            await loop.tick()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("a pass of %s failed", loop.name)
        await asyncio.sleep(max(0.0, loop.interval - (time.monotonic() - started)))
