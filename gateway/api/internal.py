"""Routes for the platform's own spider processes, authorised by a per-batch token, not an API key."""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api import platform_of
from gateway.http import query_int

INTERNAL_PREFIX = "/internal/"


async def batch_inputs(request: Request) -> JSONResponse:
    """The next URLs of a batch for one of its spiders (a crawl's scope and known pages), with the
    options and address policy."""
    token = request.query_params.get("token", "")
    claim = query_int(request, "claim", default=64, minimum=1, maximum=1000)
    job_id = request.query_params.get("job") or None
    platform = platform_of(request)
    inputs = await platform.batches.inputs(request.path_params["batch_id"], token, claim, job_id)
    if (inputs.crawl or {}).get("track_changes"):
        # A recrawl asks conditionally, and follows the known links of pages that did not change.
        inputs = replace(inputs, known=await platform.datasources.known_pages(inputs.batch_id))
    return JSONResponse(inputs.to_json())
