"""``GET /screenshots/<batch>/<input_index>.png``: a rendered page's screenshot, for the batch's owner;
``<input_index>-<n>.png`` its n-th screenshot action's (``.jpg`` for one taken with a quality)."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from gateway.api import platform_of
from gateway.api.operations import PLATFORM, Operation
from gateway.batches.documents import image_kind
from gateway.errors import NotFound
from gateway.http import api_key_of

_FILE_NAME = re.compile(r"(?P<index>[0-9]{1,9})(?:-(?P<position>[1-9][0-9]{0,2}))?\.(?P<extension>png|jpg)")
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg"}


async def page_screenshot(request: Request) -> Response:
    name = _FILE_NAME.fullmatch(request.path_params["file_name"])
    if name is None:
        raise NotFound("Screenshot not found")
    image = await platform_of(request).batches.screenshot(
        api_key_of(request),
        request.path_params["batch_id"],
        int(name["index"]),
        int(name["position"] or 0),
    )
    kind = image_kind(image)
    if kind != name["extension"]:
        raise NotFound("Screenshot not found")
    return Response(image, media_type=MEDIA_TYPES[kind], headers={"Cache-Control": "private, max-age=3600"})


OPERATIONS = [
    Operation(
        "GET",
        "/screenshots/{batch_id}/{file_name}",
        page_screenshot,
        PLATFORM,
        "A rendered page's screenshot (<input index>.png), or its n-th screenshot action's"
        " (<input index>-<n>.png; .jpg for one taken with a quality), for the batch's owner",
        response_media="image/png",
    )
]
