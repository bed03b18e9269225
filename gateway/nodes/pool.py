"""The scrapyd nodes a gateway drives, and how it picks one for a new job."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from gateway.config import ConfigError
from gateway.nodes.scrapyd import Node, NodeUnreachable, ScrapydClient, ScrapydError


class NodePicker(Protocol):
    async def pick(self, clients: Sequence[ScrapydClient]) -> ScrapydClient: ...


def load_picker(path: str) -> NodePicker:
    """A picker by its ``module:Class`` (or ``module.Class``) path, made with no arguments."""
    module_name, _, name = path.replace(":", ".").rpartition(".")
    try:
        picker = getattr(importlib.import_module(module_name), name)()
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        raise ConfigError(f"node_picker {path!r} is not a class that can be made: {exc}") from None
    if not callable(getattr(picker, "pick", None)):
        raise ConfigError(f"node_picker {path!r} has no pick method")
    return picker  # type: ignore[no-any-return]


class OnlyNode:
    """One node: it gets every job, and no question is asked."""

    async def pick(self, clients: Sequence[ScrapydClient]) -> ScrapydClient:
        return clients[0]


class LeastLoaded:
    """The reachable node with the fewest pending and running jobs (``daemonstatus.json``)."""

    async def pick(self, clients: Sequence[ScrapydClient]) -> ScrapydClient:
        statuses = await asyncio.gather(
            *(client.daemon_status() for client in clients), return_exceptions=True
        )
        loads = [
            (int(status.get("pending", 0)) + int(status.get("running", 0)), index)
            for index, status in enumerate(statuses)
            if isinstance(status, dict)
        ]
        if not loads:
            raise NodeUnreachable("no scrapyd node answered")
        return clients[min(loads)[1]]


class NodePool:
    """Clients for every configured node, by name."""

    def __init__(
        self, nodes: Sequence[Node], http: httpx.AsyncClient, picker: NodePicker | None = None
    ) -> None:
        if not nodes:
            raise ValueError("a gateway needs at least one scrapyd node")
        self._clients = {node.name: ScrapydClient(node, http) for node in nodes}
        self._picker: NodePicker = picker or (OnlyNode() if len(nodes) == 1 else LeastLoaded())

    def __iter__(self) -> Iterator[ScrapydClient]:
        return iter(self._clients.values())

    def __len__(self) -> int:
        return len(self._clients)

    def get(self, name: str) -> ScrapydClient | None:
        return self._clients.get(name)

    @property
    def first(self) -> ScrapydClient:
        return next(iter(self._clients.values()))

    async def pick(self) -> ScrapydClient:
        return await self._picker.pick(list(self._clients.values()))

    async def health(self) -> list[NodeHealth]:
        """Each node's ``daemonstatus.json``, or why it did not answer."""

        async def one(client: ScrapydClient) -> NodeHealth:
            node = client.node
            try:
                answer = await client.daemon_status()
            except (NodeUnreachable, ScrapydError) as exc:
                return NodeHealth(name=node.name, url=node.url, ok=False, error=str(exc))
            return NodeHealth(
                name=node.name,
                url=node.url,
                ok=True,
                pending=int(answer.get("pending", 0)),
                running=int(answer.get("running", 0)),
                finished=int(answer.get("finished", 0)),
            )

        return list(await asyncio.gather(*(one(client) for client in self)))


@dataclass(frozen=True)
class NodeHealth:
    name: str
    url: str
    ok: bool
    pending: int = 0
    running: int = 0
    finished: int = 0
    error: str | None = None
