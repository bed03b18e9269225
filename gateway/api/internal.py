"""Routes for the platform's own spider processes, authorised by a per-batch token, not an API key."""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api import platform_of
from gateway.api.models.platform import BatchInputsQuery
from gateway.api.validation import parse_query

INTERNAL_PREFIX = "/internal/"


async def batch_inputs(request: Request) -> JSONResponse:
    """The next URLs of a batch for one of its spiders (a crawl's scope and known pages), with the
    options and address policy."""
    query = parse_query(request, BatchInputsQuery)
    platform = platform_of(request)
    inputs = await platform.batches.inputs(
        request.path_params["batch_id"], query.token, query.claim, query.job
    )
    if (inputs.crawl or {}).get("track_changes"):
        # A recrawl asks conditionally, and follows the known links of pages that did not change.
        inputs = replace(inputs, known=await platform.datasources.known_pages(inputs.batch_id))
    return JSONResponse(inputs.to_json())
