"""A schedule's webhook events: each run's (``schedule.run.started|failed|skipped``), and, when the
schedule's webhook names them, the events of what each run starts (``job.finished``,
``batch_scrape.page``, ``crawl.completed``...), sent to the same webhook."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from gateway.batches.models import BATCH_EVENTS
from gateway.datasources.service import CRAWL_EVENTS
from gateway.errors import BadRequest
from gateway.jobs.events import JOB_EVENTS
from gateway.schedules.models import RunOutcome, Schedule, ScheduleRun, ScheduleTarget
from gateway.webhooks.models import Dialect, WebhookTarget
from gateway.webhooks.outbox import Event

RESOURCE_TYPE = "schedule"
RUN_STARTED = "run.started"
RUN_FAILED = "run.failed"
RUN_SKIPPED = "run.skipped"
RUN_EVENTS = frozenset({RUN_STARTED, RUN_FAILED, RUN_SKIPPED})
# A schedule's webhook that names no events is told of the runs that went wrong.
DEFAULT_EVENTS = frozenset({RUN_FAILED, RUN_SKIPPED})
_RUN_EVENT_OF = {
    RunOutcome.STARTED: RUN_STARTED,
    RunOutcome.FAILED: RUN_FAILED,
    RunOutcome.SKIPPED: RUN_SKIPPED,
}

# Each target's events, by the prefix of their type, and whose conventions their webhook follows
# (a batch is a Firecrawl batch scrape).
TARGET_EVENTS: dict[ScheduleTarget, tuple[str, frozenset[str], Dialect]] = {
    ScheduleTarget.SPIDER: ("job", JOB_EVENTS, Dialect.PLATFORM),
    ScheduleTarget.BATCH: ("batch_scrape", BATCH_EVENTS, Dialect.FIRECRAWL),
    ScheduleTarget.DATASOURCE: ("crawl", CRAWL_EVENTS, Dialect.PLATFORM),
}
KNOWN_EVENTS = RUN_EVENTS | {
    f"{prefix}.{name}" for prefix, names, _ in TARGET_EVENTS.values() for name in names
}


def check_events(target: ScheduleTarget, events: Collection[str]) -> None:
    """A 400 for an event of another target than the schedule's (``job.finished`` on a batch)."""
    prefix = TARGET_EVENTS[target][0]
    foreign = sorted(
        event for event in events if event not in RUN_EVENTS and not event.startswith(f"{prefix}.")
    )
    if foreign:
        raise BadRequest(
            f"webhook: {', '.join(foreign)} are not events of what this schedule starts (a "
            f"{target.value}): its own are {prefix}.<event>, besides {', '.join(sorted(RUN_EVENTS))}"
        )


def target_webhook(target: ScheduleTarget, webhook: WebhookTarget) -> WebhookTarget | None:
    """The webhook a run gives what it starts: the schedule's, for the target's events it names."""
    prefix, _, dialect = TARGET_EVENTS[target]
    wanted = frozenset(
        event.removeprefix(f"{prefix}.") for event in webhook.events or () if event.startswith(f"{prefix}.")
    )
    if not wanted:
        return None
    return WebhookTarget(
        url=webhook.url, headers=webhook.headers, metadata=webhook.metadata, events=wanted, dialect=dialect
    )


def run_event(schedule: Schedule, run: ScheduleRun) -> Event | None:
    """The event of a run that started its target, or failed or was skipped (none while starting)."""
    name = _RUN_EVENT_OF.get(run.outcome)
    if name is None:
        return None
    data: dict[str, Any] = {
        "schedule_id": schedule.id,
        "schedule_name": schedule.name,
        "target": schedule.target.value,
        "run": run.to_json(),
    }
    started = run.outcome == RunOutcome.STARTED
    return Event(name, data, success=started, error=None if started else (run.message or run.outcome.value))
