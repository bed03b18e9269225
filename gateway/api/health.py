"""``GET /healthz``: does the store answer, and does every scrapyd node?"""

from __future__ import annotations

from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api import platform_of
from gateway.api.models.platform import Health
from gateway.api.operations import PLATFORM, Operation


async def healthz(request: Request) -> JSONResponse:
    platform = platform_of(request)
    store_ok = await platform.store.ping()
    nodes = await platform.nodes.health()
    healthy = store_ok and all(node.ok for node in nodes)
    body = {
        "status": "ok" if healthy else "degraded",
        "store": {"ok": store_ok},
        "nodes": [asdict(node) for node in nodes],
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


OPERATIONS = [
    Operation(
        "GET",
        "/healthz",
        healthz,
        PLATFORM,
        "Whether the store and every node answer",
        response=Health,
        other_responses={503: Health},
        errors=(429, 500),
        public=True,
    )
]
