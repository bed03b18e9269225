"""One module per public API dialect. A dialect only translates shapes: parse, call a service, render."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

if TYPE_CHECKING:
    from gateway.platform import Platform


def platform_of(request: Request) -> Platform:
    """The services behind every route."""
    platform: Platform = request.app.state.platform
    return platform
