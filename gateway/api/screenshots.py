"""``GET /screenshots/<batch>/<input_index>.png``: a rendered page's screenshot, for the batch's owner."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.api import platform_of
from gateway.api.operations import PLATFORM, Operation
from gateway.errors import NotFound
from gateway.http import api_key_of


async def page_screenshot(request: Request) -> Response:
    name: str = request.path_params["file_name"]
    index = name.removesuffix(".png")
    if not name.endswith(".png") or not index.isascii() or not index.isdigit() or len(index) > 9:
        raise NotFound("Screenshot not found")
    png = await platform_of(request).batches.screenshot(
        api_key_of(request), request.path_params["batch_id"], int(index)
    )
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


OPERATIONS = [
    Operation(
        "GET",
        "/screenshots/{batch_id}/{file_name}",
        page_screenshot,
        PLATFORM,
        "A rendered page's screenshot (<input index>.png), for the batch's owner",
        response_media="image/png",
    )
]
