"""The running platform: store, nodes, services and background loops, started and stopped together."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from gateway.accounts.keys import ApiKeys
from gateway.accounts.ratelimit import RateLimiter
from gateway.background import Background
from gateway.batches.maps import MapService
from gateway.batches.progress import BatchExpiry, BatchProgress
from gateway.batches.records import save_page_records
from gateway.batches.scrapes import ScrapeService
from gateway.batches.service import BatchPolicy, BatchService
from gateway.catalog.deploy import Deployments
from gateway.catalog.spiders import SpiderCatalog
from gateway.config import Settings
from gateway.datasources.progress import DatasourceProgress
from gateway.datasources.service import DatasourceService
from gateway.errors import GatewayError
from gateway.jobs.service import JobService
from gateway.jobs.sync import JobSync, SyncPolicy
from gateway.nodes.embedded import EmbeddedNode
from gateway.nodes.pool import NodePool, load_picker
from gateway.nodes.scrapyd import Node, NodeUnreachable, ScrapydError
from gateway.schedules.runs import ScheduleRunner
from gateway.schedules.scheduler import Scheduler
from gateway.schedules.service import ScheduleService
from gateway.store import Store
from gateway.webhooks.delivery import WebhookDelivery
from gateway.webhooks.resolver import Resolver
from gateway.webhooks.service import WebhookService
from node.egress import POLICY_SETTING
from spiders_project.addresses import AddressPolicy, default_port, normal_host

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
        picker = load_picker(settings.node_picker) if settings.node_picker else None
        self.nodes = NodePool(nodes, self.http, picker)
        self.keys = ApiKeys(self.store)
        self.limiter = RateLimiter()
        self.catalog = SpiderCatalog(self.store, self.nodes)
        self.deployments = Deployments(self.store, self.nodes, self.catalog, data_dir / "eggs")
        batch_policy = _batch_policy(settings, nodes)
        # Webhooks reach what batches may (the operator's allowlist), never the platform's own
        # services nor the proxy pools.
        webhook_policy = replace(
            batch_policy.addresses, proxy_endpoints=frozenset(_proxy_endpoints(settings))
        )
        self._webhook_resolver = webhook_resolver = Resolver()
        self.webhooks = WebhookService(
            self.store, webhook_policy, settings.webhook_retry_seconds, webhook_resolver
        )
        self.webhook_delivery = WebhookDelivery(
            self.store,
            self.webhooks.secrets,
            webhook_policy,
            resolver=webhook_resolver,
            retry_delays=settings.webhook_retry_seconds,
            attempt_seconds=settings.webhook_attempt_seconds,
        )
        self.jobs = JobService(
            self.store,
            self.nodes,
            self.catalog,
            job_settings=_egress_settings(settings, batch_policy),
            max_jobs_per_tenant=settings.max_jobs_per_tenant,
        )
        self.batches = BatchService(self.store, self.jobs, self.catalog, batch_policy)
        self.batch_progress = BatchProgress(
            self.store, self.batches, self.keys, batch_policy, interval=settings.sync_interval
        )
        self.datasources = DatasourceService(
            self.store, self.batches, self.keys, min_interval_hours=settings.crawl_interval_min_hours
        )
        self.datasource_progress = DatasourceProgress(
            self.store, self.datasources, self.keys, interval=settings.sync_interval
        )
        self.schedule_runner = ScheduleRunner(
            self.store, self.keys, self.catalog, self.jobs, self.batches, self.datasources
        )
        self.schedules = ScheduleService(
            self.store, self.catalog, self.batches, self.datasources, self.schedule_runner
        )
        self.scheduler = Scheduler(
            self.store, self.schedule_runner, grace=timedelta(seconds=settings.schedule_grace_seconds)
        )
        self.sync = JobSync(
            self.store,
            self.nodes,
            self.jobs,
            SyncPolicy(
                cancel_grace=timedelta(seconds=settings.cancel_grace_seconds),
                node_lost_after=timedelta(seconds=settings.node_lost_after_seconds),
                max_run=timedelta(seconds=settings.max_job_seconds) if settings.max_job_seconds else None,
            ),
            interval=settings.sync_interval,
            page_records=save_page_records,
        )
        self.scrapes = ScrapeService(
            self.store, self.batches, wake_sync=lambda: self.background.wake(self.sync.name)
        )
        self.maps = MapService(self.batches, wake=self._wake_for_answers)
        self.batch_expiry = BatchExpiry(self.store, batch_policy.retention)
        self.background = Background(
            [
                self.sync,
                self.batch_progress,
                self.datasource_progress,
                self.scheduler,
                self.batch_expiry,
                self.webhook_delivery,
            ]
        )
        self.first_admin_key: str | None = None

    def _wake_for_answers(self) -> None:
        """A caller waits for work to end (a map): the job sync and the batch progress pass now."""
        self.background.wake(self.sync.name)
        self.background.wake(self.batch_progress.name)

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            # Whatever did start (the local scrapyd above all) must not outlive a failed start.
            await self.stop()
            raise

    async def _start(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
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
        self.background.start()
        if self._on_ready is not None:
            self._on_ready(self)

    async def stop(self) -> None:
        await self.background.stop()
        await self.webhook_delivery.close()
        self._webhook_resolver.close()
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


def _batch_policy(settings: Settings, nodes: list[Node]) -> BatchPolicy:
    """Batches may reach what the operator allows, and never the platform's own services."""
    own = [_endpoint(node.url) for node in nodes] + [_endpoint(settings.gateway_url)]
    if settings.host in ("0.0.0.0", "::", ""):
        own += [(address, settings.port) for address in _local_addresses()]
    denied = {f"{host}:{port}" for host, port in own}
    # By address too: a batch may name the same service by any of its addresses.
    for host, port in own:
        denied |= {f"{address}:{port}" for address in _resolve(host)}
    return BatchPolicy(
        gateway_url=settings.gateway_url,
        addresses=AddressPolicy.from_entries(allowed=settings.allowed_addresses, denied=sorted(denied)),
        retention=timedelta(hours=settings.batch_retention_hours),
        processes=settings.batch_processes,
        urls_per_process=settings.batch_urls_per_process,
        browser_pages=settings.browser_pages,
        proxy_pools=settings.proxy_pools,
        claim_patience_seconds=settings.batch_claim_patience_seconds,
    )


def _egress_settings(settings: Settings, policy: BatchPolicy) -> dict[str, str]:
    """What every job's spider process is given for its egress guard (``node.egress``): the batch
    policy, and the proxies of the pools, which spiders connect to but no URL may lead to."""
    entries = policy.addresses.to_entries()
    entries["proxies"] = sorted(f"{host}:{port}" for host, port in _proxy_endpoints(settings))
    return {POLICY_SETTING: json.dumps(entries, separators=(",", ":"))}


def _proxy_endpoints(settings: Settings) -> set[tuple[str, int]]:
    endpoints = (_endpoint(url) for pool in settings.proxy_pools for url in pool.urls)
    return {(normal_host(host), port) for host, port in endpoints}


def _endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or default_port(parts.scheme)


def _resolve(host: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError):
        return set()


def _local_addresses() -> set[str]:
    """Addresses this machine answers on, as far as its own name resolves."""
    return {"127.0.0.1", "::1"} | _resolve(socket.gethostname())
