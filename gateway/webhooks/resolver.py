"""Name lookups for webhooks, which a tenant's stalling name server cannot turn against others.

``getaddrinfo`` cannot be cancelled: a lookup whose name server never answers holds its thread
until the system's resolver gives up (``resolv.conf``'s timeout times its attempts). So lookups run
in threads of webhooks' own; a tenant holds at most ``per_tenant`` of them, until each is truly
done, not only timed out; concurrent lookups of one host share one thread; and a lookup that finds
no address within ``seconds`` answers none (refused: a delivery retries later, a submission is a
400). A tenant whose hosts stall waits on its own lookups; everyone else's go on, unless
``threads / per_tenant`` tenants (32) all stall at once, each for as long as the system's resolver
takes to give up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

LOOKUP_SECONDS = 5.0
THREADS = 128
PER_TENANT = 4

GetAddrInfo = Callable[[str, int], list[str]]


def system_lookup(host: str, port: int) -> list[str]:
    """The addresses the system's resolver gives for ``host`` (none when it fails)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Resolver:
    def __init__(
        self,
        *,
        seconds: float = LOOKUP_SECONDS,
        threads: int = THREADS,
        per_tenant: int = PER_TENANT,
        getaddrinfo: GetAddrInfo = system_lookup,
    ) -> None:
        self._seconds = seconds
        self._per_tenant = per_tenant
        self._getaddrinfo = getaddrinfo
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhook-dns")
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._in_flight: dict[str, concurrent.futures.Future[list[str]]] = {}

    async def lookup(self, host: str, port: int, tenant_id: str) -> list[str]:
        """The addresses ``host`` resolves to, or none if that takes longer than ``seconds``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._seconds):
                shared = self._in_flight.get(host)
                if shared is None:
                    shared = await self._start(host, port, tenant_id)
                # Shielded: a waiter that times out leaves the lookup to the others sharing it.
                return await asyncio.shield(asyncio.wrap_future(shared))
        return []

    async def _start(self, host: str, port: int, tenant_id: str) -> concurrent.futures.Future[list[str]]:
        slots = self._slots.get(tenant_id)
        if slots is None:
            slots = self._slots[tenant_id] = asyncio.Semaphore(self._per_tenant)
        await slots.acquire()
        shared = self._in_flight.get(host)
        if shared is not None:  # started while this one waited for its slot
            slots.release()
            return shared
        loop = asyncio.get_running_loop()
        future = self._executor.submit(self._getaddrinfo, host, port)
        self._in_flight[host] = future

        def done(_: concurrent.futures.Future[list[str]]) -> None:
            # In the lookup's thread: its slot is free, and its host looked up afresh next time.
            try:
                loop.call_soon_threadsafe(self._finished, host, future, slots)
            except RuntimeError:  # the loop has closed, and its semaphores with it
                if self._in_flight.get(host) is future:
                    del self._in_flight[host]

        future.add_done_callback(done)
        return future

    def _finished(
        self, host: str, future: concurrent.futures.Future[list[str]], slots: asyncio.Semaphore
    ) -> None:
        if self._in_flight.get(host) is future:
            del self._in_flight[host]
        slots.release()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
