"""Time, in one place: what "now" is for the gateway, and how every dialect writes a moment.

Background work that tests drive through time (the scheduler, the job sync) takes a ``Clock``;
``utc_now`` is the real one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: Any) -> str | None:
    """ISO 8601 in UTC with a 'Z', as every dialect renders times."""
    if moment is None:
        return None
    return str(moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
