"""The catalog of deployed spiders, kept in step with what the scrapyd nodes hold."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from gateway.clock import utc_now
from gateway.errors import BadRequest, NotFound
from gateway.nodes.pool import NodePool
from gateway.nodes.scrapyd import NodeUnreachable, ScrapydError
from gateway.store import Store
from gateway.store.tables import eggs, spiders

log = logging.getLogger(__name__)

# Spider ids are derived from project and name, so they survive redeploys and gateway restarts.
SPIDER_ID_NAMESPACE = uuid.UUID("4f1c6b2e-8f0a-4c55-9a57-5b1a9d2f6e01")


def spider_id(project: str, name: str) -> str:
    return str(uuid.uuid5(SPIDER_ID_NAMESPACE, f"{project}/{name}"))


@dataclass(frozen=True)
class Spider:
    id: str
    project: str
    name: str
    version: str | None
    repo_path: str | None
    created_at: datetime
    updated_at: datetime


class SpiderCatalog:
    """Spiders of every deployed project; refreshed from scrapyd after each deploy and at start."""

    def __init__(self, store: Store, nodes: NodePool) -> None:
        self._store = store
        self._nodes = nodes

    async def refresh(self, project: str | None = None) -> None:
        """Read projects, versions and spider names from a node and make the catalog match.

        Raises ``NodeUnreachable`` or ``ScrapydError`` when no node can tell.
        """
        client = self._nodes.first
        projects = [project] if project else await client.list_projects()
        found: dict[tuple[str, str], tuple[str, str | None]] = {}
        for name in projects:
            versions = await client.list_versions(name)
            if not versions:
                continue
            latest = versions[-1]
            paths = await self._spider_paths(name, latest)
            for spider in await client.list_spiders(name):
                found[(name, spider)] = (latest, paths.get(spider))
        await self._save(found, projects if project else None)

    async def refresh_quietly(self, project: str | None = None) -> None:
        try:
            await self.refresh(project)
        except (NodeUnreachable, ScrapydError) as exc:
            log.warning("spider catalog not refreshed: %s", exc)

    async def search(self, name_contains: str | None = None, limit: int = 200) -> list[Spider]:
        query = select(spiders).order_by(spiders.c.project, spiders.c.name).limit(limit)
        if name_contains:
            query = query.where(func.lower(spiders.c.name).contains(name_contains.lower(), autoescape=True))
        async with self._store.read() as db:
            return [_spider(row._mapping) for row in await db.execute(query)]

    async def get(self, id_: str) -> Spider:
        async with self._store.read() as db:
            row = (await db.execute(select(spiders).where(spiders.c.id == id_))).first()
        if row is None:
            raise NotFound("Spider not found")
        return _spider(row._mapping)

    async def lookup(self, spider_id: str | None, name: str | None, project: str | None = None) -> Spider:
        """The spider by its id when given, else by name (and project); 404 if there is none."""
        if spider_id:
            return await self.get(spider_id)
        if not name:
            raise NotFound("Spider not found")
        return await self.find(name, project)

    async def find(self, name: str, project: str | None = None) -> Spider:
        """The spider called ``name`` (in ``project``, when several projects have one)."""
        query = select(spiders).where(spiders.c.name == name)
        if project:
            query = query.where(spiders.c.project == project)
        async with self._store.read() as db:
            rows = (await db.execute(query)).all()
        if not rows:
            raise NotFound("Spider not found")
        if len(rows) > 1:
            projects = ", ".join(sorted(row.project for row in rows))
            raise BadRequest(
                f"spider {name!r} exists in several projects ({projects}): give spider_id or project"
            )
        return _spider(rows[0]._mapping)

    async def _spider_paths(self, project: str, version: str) -> dict[str, str]:
        query = select(eggs.c.spider_paths).where(eggs.c.project == project, eggs.c.version == version)
        async with self._store.read() as db:
            paths = (await db.execute(query)).scalar_one_or_none()
        return dict(paths) if isinstance(paths, dict) else {}

    async def _save(
        self, found: dict[tuple[str, str], tuple[str, str | None]], projects: list[str] | None
    ) -> None:
        now = utc_now()
        async with self._store.write() as db:
            existing = {
                (row.project, row.name): row
                for row in await db.execute(
                    select(spiders.c.project, spiders.c.name, spiders.c.version, spiders.c.repo_path)
                )
            }
            for (project, name), (version, repo_path) in found.items():
                row = existing.get((project, name))
                if row is None:
                    await db.execute(
                        insert(spiders).values(
                            id=spider_id(project, name),
                            project=project,
                            name=name,
                            version=version,
                            repo_path=repo_path,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                elif (row.version, row.repo_path) != (version, repo_path or row.repo_path):
                    await db.execute(
                        update(spiders)
                        .where(spiders.c.id == spider_id(project, name))
                        .values(version=version, repo_path=repo_path or row.repo_path, updated_at=now)
                    )
            gone = [key for key in existing if key not in found and (projects is None or key[0] in projects)]
            for project, name in gone:
                await db.execute(delete(spiders).where(spiders.c.id == spider_id(project, name)))


def _spider(row: Any) -> Spider:
    return Spider(
        id=row["id"],
        project=row["project"],
        name=row["name"],
        version=row["version"],
        repo_path=row["repo_path"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
