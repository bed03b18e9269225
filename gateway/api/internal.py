"""Routes for the platform's own spider processes, authorised by a per-batch token, not an API key."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api import platform_of

INTERNAL_PREFIX = "/internal/"


async def batch_inputs(request: Request) -> JSONResponse:
    """A batch's URLs still to fetch, its options and address policy, for its batch spiders."""
    token = request.query_params.get("token", "")
    inputs = await platform_of(request).batches.inputs(request.path_params["batch_id"], token)
    return JSONResponse(inputs)
