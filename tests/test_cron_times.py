"""Cron times in time zones: the syntax a schedule takes, and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.errors import BadRequest
from gateway.schedules.cron import CronTimes

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def following(times: CronTimes, start: datetime, count: int) -> list[str]:
    moments, moment = [], start
    for _ in range(count):
        moment = times.next_after(moment)
        moments.append(moment.astimezone(times.zone()).isoformat())
    return moments


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 2 * * *", ["2026-06-02T02:00:00+02:00", "2026-06-03T02:00:00+02:00"]),
        ("*/15 9-10 * * mon-fri", ["2026-06-01T09:15:00+02:00", "2026-06-01T09:30:00+02:00"]),
        ("0 0 1,15 * *", ["2026-06-15T00:00:00+02:00", "2026-07-01T00:00:00+02:00"]),
        ("30 8 * jan,jun sun", ["2026-06-07T08:30:00+02:00", "2026-06-14T08:30:00+02:00"]),
        ("@daily", ["2026-06-02T00:00:00+02:00", "2026-06-03T00:00:00+02:00"]),
        ("@hourly", ["2026-06-01T10:00:00+02:00", "2026-06-01T11:00:00+02:00"]),
        ("@weekly", ["2026-06-07T00:00:00+02:00", "2026-06-14T00:00:00+02:00"]),
        ("@monthly", ["2026-07-01T00:00:00+02:00", "2026-08-01T00:00:00+02:00"]),
    ],
)
def test_lists_ranges_steps_names_and_named_shortcuts(expression: str, expected: list[str]) -> None:
    # Monday 1 June 2026, 09:05 in Berlin.
    start = datetime(2026, 6, 1, 9, 5, tzinfo=BERLIN)

    assert following(CronTimes.parse(expression, "Europe/Berlin"), start, 2) == expected


def test_a_fixed_time_in_the_hour_spring_skips_runs_once_when_the_clock_jumps() -> None:
    times = CronTimes.parse("30 2 * * *", "Europe/Berlin")

    # 29 March 2026: 02:00 becomes 03:00.
    assert following(times, datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN), 3) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_a_fixed_time_in_the_hour_autumn_repeats_runs_once() -> None:
    times = CronTimes.parse("30 1 * * *", "America/New_York")

    # 1 November 2026: 02:00 EDT becomes 01:00 EST, so 01:30 happens twice on the wall clock.
    moments = following(times, datetime(2026, 10, 31, 12, 0, tzinfo=NEW_YORK), 3)

    assert moments == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00", "2026-11-03T01:30:00-05:00"]


def test_an_hourly_schedule_follows_the_wall_clock_through_both_changes() -> None:
    times = CronTimes.parse("0 * * * *", "Europe/Berlin")

    spring = following(times, datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN), 3)
    autumn = following(times, datetime(2026, 10, 25, 0, 30, tzinfo=BERLIN), 4)

    # Spring: no 02:00 exists. Autumn: 02:00 exists twice, an hour apart, and both fire.
    assert spring == ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"]
    assert autumn == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_the_same_cron_in_two_zones_fires_at_different_instants() -> None:
    start = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)

    berlin = CronTimes.parse("0 9 * * *", "Europe/Berlin").next_after(start)
    new_york = CronTimes.parse("0 9 * * *", "America/New_York").next_after(start)

    assert berlin == datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
    assert new_york == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)


def test_the_latest_time_at_or_before_a_moment() -> None:
    times = CronTimes.parse("0 */6 * * *", "UTC")

    assert times.latest_until(datetime(2026, 6, 1, 13, 59, tzinfo=UTC)) == datetime(
        2026, 6, 1, 12, 0, tzinfo=UTC
    )
    assert times.latest_until(datetime(2026, 6, 1, 12, 0, tzinfo=UTC)) == datetime(
        2026, 6, 1, 12, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("expression", "timezone", "message"),
    [
        ("61 * * * *", "UTC", "cron '61 * * * *' is not valid: bad minute field"),
        ("0 25 * * *", "UTC", "cron '0 25 * * *' is not valid: bad hour field"),
        ("* * *", "UTC", "it needs five fields (minute hour day-of-month month day-of-week), not 3"),
        ("0 0 * * * 2026", "UTC", "not 6"),
        ("0 0 31 2 *", "UTC", "bad day-of-month field"),
        ("@fortnightly", "UTC", "the names are @yearly"),
        ("every day", "UTC", "not 2"),
        ("0 2 * * *", "Mars/Olympus_Mons", "unknown time zone 'Mars/Olympus_Mons'"),
        ("0 2 * * *", "", "timezone must be an IANA time zone name"),
        ("", "UTC", "cron must be an expression of five fields"),
    ],
)
def test_invalid_expressions_and_zones_say_what_is_wrong(
    expression: str, timezone: str, message: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        CronTimes.parse(expression, timezone)

    assert message in refused.value.message


def test_a_schedule_describes_itself_in_words() -> None:
    assert CronTimes.parse("0 2 * * *", "UTC").describe() == "At 02:00 every day"
