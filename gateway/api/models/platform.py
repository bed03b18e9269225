"""The platform's own routes: health, and the inputs its batch spiders ask for."""

from __future__ import annotations

from pydantic import Field

from gateway.api.models.common import Model
from gateway.api.models.fields import Query


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


class BatchInputsQuery(Query):
    """A batch spider's ask for its next URLs (internal: authorised by the batch's token)."""

    token: str = ""
    claim: int = Field(64, ge=1, le=1000)
    job: str | None = None
