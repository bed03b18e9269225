"""Cron times: five-field expressions (or ``@daily``-style names) read in an IANA time zone.

Daylight-saving changes follow cronie, through cronsim: a fixed time that falls in the hour a
spring change skips runs once when the clock jumps (02:30 → 03:00), a fixed time in the hour an
autumn change repeats runs once, and expressions with ``*`` or steps in the minute or hour field
follow the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from gateway.clock import utc_now
from gateway.errors import BadRequest

NAMED_EXPRESSIONS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELDS = "minute hour day-of-month month day-of-week"


@dataclass(frozen=True)
class CronTimes:
    """The times an expression names in a time zone, as UTC instants."""

    expression: str
    timezone: str

    @classmethod
    def parse(cls, expression: object, timezone: object = "UTC") -> CronTimes:
        """Checked: a 400 that says what is wrong with the expression or the time zone."""
        if not isinstance(expression, str) or not expression.strip():
            raise BadRequest(f"cron must be an expression of five fields ({FIELDS}) or a name like @daily")
        if not isinstance(timezone, str) or not timezone:
            raise BadRequest("timezone must be an IANA time zone name such as Europe/Berlin or UTC")
        expression = " ".join(expression.split())
        times = cls(expression, timezone)
        times.zone()
        standard = NAMED_EXPRESSIONS.get(expression.lower(), expression)
        if standard.startswith("@"):
            names = ", ".join(NAMED_EXPRESSIONS)
            raise BadRequest(f"cron {expression!r} is not valid: the names are {names}")
        if len(standard.split()) != 5:
            raise BadRequest(
                f"cron {expression!r} is not valid: it needs five fields ({FIELDS}), "
                f"not {len(standard.split())}"
            )
        try:
            CronSim(standard, utc_now())
        except CronSimError as exc:
            raise BadRequest(f"cron {expression!r} is not valid: {_reason(exc)}") from None
        return times

    @property
    def standard(self) -> str:
        return NAMED_EXPRESSIONS.get(self.expression.lower(), self.expression)

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise BadRequest(
                f"unknown time zone {self.timezone!r}: use an IANA name such as Europe/Berlin or UTC"
            ) from None

    def next_after(self, moment: datetime) -> datetime:
        """The first cron time strictly after ``moment``."""
        following = next(CronSim(self.standard, moment.astimezone(self.zone())))
        return following.astimezone(UTC)

    def latest_until(self, moment: datetime) -> datetime | None:
        """The last cron time at or before ``moment``, if there is one within a few years."""
        later = moment + timedelta(minutes=1)
        for earlier in CronSim(self.standard, later.astimezone(self.zone()), reverse=True):
            if earlier <= moment:
                return earlier.astimezone(UTC)
        return None

    def describe(self) -> str:
        """In words, e.g. "At 02:00 every day"."""
        return str(CronSim(self.standard, datetime.now(self.zone())).explain())


def _reason(error: CronSimError) -> str:
    message = str(error) or "it cannot be read"
    for field in ("minute", "hour", "day-of-month", "month", "day-of-week"):
        if field in message:
            return f"{message[0].lower()}{message[1:]} field"
    return message
