"""The platform's own routes: health."""

from __future__ import annotations

from gateway.api.models.common import Model


class StoreHealth(Model):
    ok: bool


class NodeHealth(Model):
    name: str
    url: str
    ok: bool
    pending: int
    running: int
    finished: int
    error: str | None


class Health(Model):
    status: str
    store: StoreHealth
    nodes: list[NodeHealth]
