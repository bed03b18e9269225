"""The running platform: store, nodes, services and background loops, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx

from gateway.config import Settings
from gateway.deploy import Deployments
from gateway.embedded import EmbeddedNode
from gateway.errors import GatewayError
from gateway.jobs import JobService
from gateway.keys import ApiKeys
from gateway.nodes import NodePool
from gateway.ratelimit import RateLimiter
from gateway.scrapyd import Node, NodeUnreachable, ScrapydError
from gateway.spiders import SpiderCatalog
from gateway.store import Store
from gateway.sync import JobSync, SyncPolicy

log = logging.getLogger(__name__)


class Platform:
    def __init__(self, settings: Settings, on_ready: Callable[[Platform], None] | None = None) -> None:
        self.settings = settings
        self._on_ready = on_ready
        data_dir = settings.data_dir
        self.store = Store(settings.database)
        self.embedded: EmbeddedNode | None = None
        if settings.embedded_node:
            self.embedded = EmbeddedNode(data_dir / "scrapyd", settings.scrapyd_port)
            nodes = [self.embedded.node]
        else:
            nodes = [Node.from_url(url) for url in settings.scrapyd_urls]
        self.http = httpx.AsyncClient(limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))
        self.nodes = NodePool(nodes, self.http)
        self.keys = ApiKeys(self.store)
        self.limiter = RateLimiter()
        self.catalog = SpiderCatalog(self.store, self.nodes)
        self.deployments = Deployments(self.store, self.nodes, self.catalog, data_dir / "eggs")
        self.jobs = JobService(self.store, self.nodes, self.catalog)
        self.sync = JobSync(
            self.store,
            self.nodes,
            self.jobs,
            SyncPolicy(
                interval=settings.sync_interval,
                cancel_grace=timedelta(seconds=settings.cancel_grace_seconds),
                node_lost_after=timedelta(seconds=settings.node_lost_after_seconds),
            ),
        )
        self.first_admin_key: str | None = None
        self._sync_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            # Whatever did start (the local scrapyd above all) must not outlive a failed start.
            await self.stop()
            raise

    async def _start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.store.migrate()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.start)
        if self.settings.deploy_builtin_project:
            try:
                await self.deployments.deploy_builtin()
            except (GatewayError, NodeUnreachable, ScrapydError) as exc:
                log.error("the built-in spiders_project was not deployed: %s", exc)
        await self.catalog.refresh_quietly()
        if await self.keys.count() == 0:
            _, self.first_admin_key = await self.keys.create("admin", admin=True)
        self._sync_task = asyncio.create_task(self.sync.run(), name="job-sync")
        if self._on_ready is not None:
            self._on_ready(self)

    async def stop(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        await self.http.aclose()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
        await self.store.close()

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()
