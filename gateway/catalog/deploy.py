"""Deploying eggs: to every node, with a copy kept by the gateway, and the spider catalog refreshed."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import delete, insert, select

import spiders_project
from gateway.catalog.eggs import build_egg, read_egg
from gateway.catalog.spiders import SpiderCatalog
from gateway.clock import utc_now
from gateway.errors import BadRequest, NodeUnavailable, NotFound
from gateway.nodes.pool import NodePool
from gateway.nodes.scrapyd import NodeUnreachable, ScrapydClient, ScrapydError
from gateway.store import Store
from gateway.store.tables import eggs

log = logging.getLogger(__name__)

BUILTIN_PROJECT = "spiders_project"
_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_VERSION = re.compile(r"[A-Za-z0-9_.+-]{1,200}")


class Deployments:
    """Add and delete egg versions on every node."""

    def __init__(self, store: Store, nodes: NodePool, catalog: SpiderCatalog, eggs_dir: Path) -> None:
        self._store = store
        self._nodes = nodes
        self._catalog = catalog
        self._eggs_dir = eggs_dir

    async def add_version(self, project: str, version: str, egg: bytes) -> int:
        """Deploy ``egg`` as ``project`` ``version``; returns how many spiders it holds."""
        _check_name(project, version)
        contents = read_egg(egg)
        spider_count = 0
        for client in self._nodes:
            try:
                spider_count = await client.add_version(project, version, egg)
            except ScrapydError as exc:
                raise BadRequest(exc.message) from exc
            except NodeUnreachable as exc:
                raise NodeUnavailable(f"scrapyd node {client.node.name} is unreachable: {exc}") from exc
        path = self._egg_path(project, version)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(egg)
        async with self._store.write() as db:
            await db.execute(delete(eggs).where(eggs.c.project == project, eggs.c.version == version))
            await db.execute(
                insert(eggs).values(
                    project=project,
                    version=version,
                    sha256=contents.sha256,
                    size=len(egg),
                    spider_paths=contents.spider_paths,
                    uploaded_at=utc_now(),
                )
            )
        await self._catalog.refresh_quietly(project)
        return spider_count

    async def delete_version(self, project: str, version: str) -> None:
        _check_name(project, version)
        await self._on_every_node(lambda client: client.delete_version(project, version))
        self._egg_path(project, version).unlink(missing_ok=True)
        async with self._store.write() as db:
            await db.execute(delete(eggs).where(eggs.c.project == project, eggs.c.version == version))
        await self._catalog.refresh_quietly(project)

    async def delete_project(self, project: str) -> None:
        _check_name(project)
        await self._on_every_node(lambda client: client.delete_project(project))
        for path in (self._eggs_dir / project).glob("*.egg"):
            path.unlink(missing_ok=True)
        async with self._store.write() as db:
            await db.execute(delete(eggs).where(eggs.c.project == project))
        await self._catalog.refresh_quietly(project)

    async def deploy_builtin(self) -> str | None:
        """Deploy the platform's own project unless its newest version already has these sources and
        this gateway's store knows it (another gateway may have deployed it to a shared node)."""
        package_dir = Path(spiders_project.__file__).parent
        egg = build_egg(package_dir, f"{BUILTIN_PROJECT}.settings")
        fingerprint = read_egg(egg).sha256[:12]
        versions = await self._nodes.first.list_versions(BUILTIN_PROJECT)
        if (
            versions
            and versions[-1].endswith(fingerprint)
            and await self._stored(BUILTIN_PROJECT, versions[-1])
        ):
            await self._catalog.refresh_quietly(BUILTIN_PROJECT)
            return None
        # Time first, so scrapyd's "newest version" ordering matches deployment order.
        version = f"{int(time.time())}-{fingerprint}"
        await self.add_version(BUILTIN_PROJECT, version, egg)
        log.info("deployed %s version %s", BUILTIN_PROJECT, version)
        return version

    async def _stored(self, project: str, version: str) -> bool:
        query = select(eggs.c.version).where(eggs.c.project == project, eggs.c.version == version)
        async with self._store.read() as db:
            return (await db.execute(query)).first() is not None

    async def _on_every_node(self, action: Callable[[ScrapydClient], Awaitable[None]]) -> None:
        found_anywhere = False
        last_error = "not found"
        for client in self._nodes:
            try:
                await action(client)
                found_anywhere = True
            except ScrapydError as exc:
                last_error = exc.message
            except NodeUnreachable as exc:
                raise NodeUnavailable(f"scrapyd node {client.node.name} is unreachable: {exc}") from exc
        if not found_anywhere:
            raise NotFound(last_error)

    def _egg_path(self, project: str, version: str) -> Path:
        return self._eggs_dir / project / f"{version}.egg"


def _check_name(project: str, version: str | None = None) -> None:
    if not _PROJECT_NAME.fullmatch(project):
        raise BadRequest(f"invalid project name {project!r}: use letters, digits, '_', '.' and '-'")
    if version is not None and not _VERSION.fullmatch(version):
        raise BadRequest(f"invalid version {version!r}: use letters, digits, '_', '.', '+' and '-'")
