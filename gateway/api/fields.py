"""Checks of body fields that several dialects share, each with the same 400 in every dialect."""

from __future__ import annotations

from typing import Any

from gateway.errors import BadRequest


def optional_flag(body: dict[str, Any], name: str) -> bool | None:
    """``true``, ``false``, or absent (or null): None."""
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false")
    return value


def flag(body: dict[str, Any], name: str, default: bool) -> bool:
    """``true`` or ``false``, ``default`` when absent; null is refused like any other non-boolean."""
    if name in body and body[name] is None:
        raise BadRequest(f"{name} must be true or false")
    value = optional_flag(body, name)
    return default if value is None else value
