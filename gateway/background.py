"""Background work: loops that each do one pass (``tick``) every ``interval`` seconds, run together.

Every loop of the platform (the job sync, batch and crawl progress, batch expiry, the scheduler) has
this one shape, and one runner starts and stops them all. A caller that waits on a loop's work (a
one-page scrape waiting for its spider's record) can ``wake`` it: its next pass starts at once
instead of at the end of its interval, and wakes that come during a pass make one more pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from gateway.metrics import LOOP_DURATION, LOOP_FAILURES

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
        self._wakes: dict[str, asyncio.Event] = {}

    def start(self) -> None:
        self._wakes = {loop.name: asyncio.Event() for loop in self.loops}
        self._tasks = [
            asyncio.create_task(_every(loop, self._wakes[loop.name]), name=loop.name) for loop in self.loops
        ]

    def wake(self, name: str) -> None:
        """Start the loop's next pass now (or right after the one under way); a loop not running
        ignores it."""
        wake = self._wakes.get(name)
        if wake is not None:
            wake.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []


async def _every(loop: Loop, wake: asyncio.Event) -> None:
    while True:
        started = time.monotonic()
        wake.clear()
        try:
            await loop.tick()
        except asyncio.CancelledError:
            raise
        except Exception:
            LOOP_FAILURES.labels(loop.name).inc()
            log.exception("a pass of %s failed", loop.name)
        LOOP_DURATION.labels(loop.name).observe(time.monotonic() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), max(0.0, loop.interval - (time.monotonic() - started)))
