"""The job sync: a background loop that keeps every unsettled job in step with its scrapyd node.

Each tick it sends waiting jobs to a node, reads each node's ``listjobs.json`` once, moves jobs
along the state machine, ingests their feeds, kills cancelled jobs that outstay the grace period,
and settles ended jobs from the outcome their runner wrote at the end of the log. The store is the
source of truth, so a gateway restart resumes exactly where the last tick left off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from gateway.clock import Clock, utc_now
from gateway.jobs.events import ended_event, started_event
from gateway.jobs.feeds import FeedIngest, PageRecordSink
from gateway.jobs.models import JOB_MOVES, Job, JobStatus
from gateway.jobs.service import JobService
from gateway.nodes.pool import NodePool
from gateway.nodes.scrapyd import NodeJobs, NodeUnreachable, ScrapydClient, ScrapydError
from gateway.store import Store
from gateway.store.moves import compare_and_set, move
from gateway.store.tables import jobs
from gateway.webhooks.outbox import emit
from node.outcome import FAILED_CLOSE_REASONS, JobOutcome, parse_outcome

log = logging.getLogger(__name__)

LOG_TAIL_BYTES = 64 * 1024
# A dispatched job its node does not know, and has no log of, never started there: the node's
# launcher creates a job's log before its process and never starts a job whose log exists. It is
# sent again once it has been unknown this long (past the moment a job spends between scrapyd's
# queue and its launcher); should the first copy still arrive (a schedule call of a gateway that
# died), the node starts only one of them.
REDISPATCH_AFTER = timedelta(seconds=5)
# How long a job its node lost while it ran (scrapyd died) may take to close: its process stops
# with scrapyd (node/lifetime.py), gracefully (downloads under way finish), and its feed is read
# to the end once its log says it closed.
ORPHAN_CLOSE_SECONDS = 200.0  # past Scrapy's default download timeout (180 s)
# How often a job that no node accepted is offered again.
DISPATCH_RETRY_SECONDS = 2.0


# A node's listing is asked for again at least this often, whatever its counts say.
LISTING_MAX_AGE = timedelta(seconds=2)


@dataclass(frozen=True)
class _Listing:
    counts: tuple[int, ...]
    listed_at: datetime
    snapshot: NodeJobs


@dataclass(frozen=True)
class SyncPolicy:
    cancel_grace: timedelta = timedelta(seconds=10)
    node_lost_after: timedelta = timedelta(seconds=30)
    # The longest a job may run before it is stopped; None: no limit.
    max_run: timedelta | None = None


class JobSync:
    name = "job-sync"

    def __init__(
        self,
        store: Store,
        nodes: NodePool,
        job_service: JobService,
        policy: SyncPolicy,
        clock: Clock = utc_now,
        interval: float = 0.2,
        page_records: PageRecordSink | None = None,
    ) -> None:
        self.interval = interval
        self._store = store
        self._nodes = nodes
        self._job_service = job_service
        self._policy = policy
        self._clock = clock
        self._feeds = FeedIngest(store, page_records)
        self._unreachable_since: dict[str, float] = {}
        self._dispatch_tried: dict[str, float] = {}
        self._listings: dict[str, _Listing] = {}
        self._foreign_nodes: set[str] = set()
        self._lost_since: dict[str, float] = {}
        self._stalled_job: dict[str, str] = {}

    async def tick(self) -> None:
        unsettled = await self._unsettled()
        waiting = [job for job in unsettled if job.status == JobStatus.PENDING and job.dispatched_at is None]
        self._dispatch_tried = {job.id: self._dispatch_tried.get(job.id, 0.0) for job in waiting}
        for job in waiting:
            if time.monotonic() - self._dispatch_tried[job.id] >= DISPATCH_RETRY_SECONDS:
                self._dispatch_tried[job.id] = time.monotonic()
                await self._dispatch(job)
        by_node: dict[str, list[Job]] = defaultdict(list)
        for job in unsettled:
            if job.node is not None and job.dispatched_at is not None:
                by_node[job.node].append(job)
        work = []
        for name, node_jobs in by_node.items():
            client = self._nodes.get(name)
            if client is not None:
                work.append(self._sync_node(client, node_jobs))
            elif name not in self._foreign_nodes:
                # Another gateway on the same store may drive it: its jobs are that gateway's to settle.
                self._foreign_nodes.add(name)
                log.info("jobs on node %s are left to the gateway that drives it", name)
        await asyncio.gather(*work)

    async def _sync_node(self, client: ScrapydClient, node_jobs: list[Job]) -> None:
        asked_at = self._clock()
        asking_since = time.monotonic()
        try:
            snapshot, fresh = await self._snapshot(client, node_jobs, asked_at)
        except (NodeUnreachable, ScrapydError) as exc:
            await self._node_unreachable(client, node_jobs, exc, asking_since)
            return
        name = client.node.name
        self._unreachable_since.pop(name, None)
        # The job whose question failed last time goes last: one slow file cannot starve the rest.
        node_jobs = sorted(node_jobs, key=lambda job: job.id == self._stalled_job.get(name))
        for job in node_jobs:
            asking_since = time.monotonic()
            try:
                if fresh:
                    await self._sync_job(client, snapshot, asked_at, job)
                elif job.started_at is not None and snapshot.state_of(job.id) == "running":
                    # Between listings only running jobs are followed; every change of state
                    # waits for a fresh listing.
                    await self._follow_running(client, snapshot, job)
            except NodeUnreachable as exc:
                # A node that stops answering fails every job's question in turn, each after a
                # whole timeout: stop asking this tick. It counts as unreachable since that
                # question was asked, and is lost only if the next listing fails too.
                log.warning("job %s: %s", job.id, exc)
                self._unreachable_since.setdefault(name, asking_since)
                self._stalled_job[name] = job.id
                return
            except ScrapydError as exc:
                log.warning("job %s: %s", job.id, exc)
            except Exception:
                # One job's failure (a feed line the store refuses) must not stop the node's others.
                log.exception("job %s: its sync failed; the node's other jobs go on", job.id)
                self._stalled_job[name] = job.id

    async def _snapshot(
        self, client: ScrapydClient, node_jobs: list[Job], asked_at: datetime
    ) -> tuple[NodeJobs, bool]:
        """The node's job listing, and whether it is fresh.

        ``listjobs.json`` costs scrapyd more the more finished jobs it keeps (125 ms with 1,000), so
        it is asked for only when ``daemonstatus.json``'s counts moved, a job was sent since the last
        listing, or that listing is older than ``LISTING_MAX_AGE``; otherwise the last one serves.
        """
        name = client.node.name
        status = await client.daemon_status()
        counts = tuple(int(status.get(state, 0)) for state in ("pending", "running", "finished"))
        known = self._listings.get(name)
        if (
            known is not None
            and known.counts == counts
            and asked_at - known.listed_at < LISTING_MAX_AGE
            and not any(job.dispatched_at and job.dispatched_at >= known.listed_at for job in node_jobs)
        ):
            return known.snapshot, False
        snapshot = await client.list_jobs()
        self._listings[name] = _Listing(counts=counts, listed_at=asked_at, snapshot=snapshot)
        return snapshot, True

    async def _sync_job(
        self, client: ScrapydClient, snapshot: NodeJobs, asked_at: datetime, job: Job
    ) -> None:
        state = snapshot.state_of(job.id)
        if state == "pending":
            if job.cancel_requested_at is not None:
                # Cancelled while its node did not answer: drop it from the queue now.
                await client.cancel(job.project, job.id)
                await self._settle(job, JobOutcome(), None)
            return
        if state == "running":
            await self._follow_running(client, snapshot, job)
            return
        if state is None and job.started_at is None:
            await self._find_lost(client, asked_at, job)
            return
        # The process is gone: finished, or vanished with its node's memory (a scrapyd restart).
        await self._settle_ended(client, job, lost=state is None)

    async def _follow_running(self, client: ScrapydClient, snapshot: NodeJobs, job: Job) -> None:
        now = self._clock()
        if job.started_at is None:
            await self._update(job, started_at=now, pid=snapshot.running[job.id].pid)
            # Only a pending job becomes running: a cancel may have landed since this tick began.
            async with self._store.write() as db:
                if await move(db, jobs, job.id, JOB_MOVES, JobStatus.RUNNING, {"settled": False}):
                    await emit(db, job.id, [started_event(job.project, job.spider_name)])
        await self._feeds.ingest(client, job)
        if job.cancel_requested_at is None:
            await self._stop_if_over(job, now)
            return
        if job.kill_sent_at is not None:
            return
        if job.term_sent_at is None:
            await client.cancel(job.project, job.id, signal="TERM")
            await self._update(job, term_sent_at=now)
        elif now - job.term_sent_at >= self._policy.cancel_grace:
            log.info("job %s outlived its cancel grace period: killing it", job.id)
            await client.cancel(job.project, job.id, signal="KILL")
            await self._update(job, kill_sent_at=now)

    async def _stop_if_over(self, job: Job, now: datetime) -> None:
        """Stop a job whose key's credits ran out, or that ran past its limit (signalled next tick)."""
        if await self._feeds.out_of_credits(job):
            await self._job_service.stop(job, "stopped: the key's credits ran out")
            return
        limit = self._policy.max_run
        if limit is not None and job.started_at is not None and now - job.started_at > limit:
            seconds = int(limit.total_seconds())
            await self._job_service.stop(job, f"stopped: it ran longer than the {seconds} s a job may run")

    async def _settle_ended(self, client: ScrapydClient, job: Job, *, lost: bool) -> None:
        tail = await client.read_log_tail(job.project, job.spider_name, job.id, LOG_TAIL_BYTES)
        outcome = parse_outcome(tail or "")
        if lost and outcome.launcher_gone and outcome.close_reason is None:
            # Its process outlived the scrapyd that lost it and is closing: wait for the close, so
            # that every item it wrote is taken.
            since = self._lost_since.setdefault(job.id, time.monotonic())
            if time.monotonic() - since < ORPHAN_CLOSE_SECONDS:
                return
        self._lost_since.pop(job.id, None)
        await self._feeds.ingest(client, job)
        vanished = None
        if lost:
            vanished = f"node {client.node.name} lost the job (scrapyd restarted?)"
            if outcome.launcher_gone:
                vanished = f"node {client.node.name}'s scrapyd died while the job ran; its spider stopped"
        await self._settle(job, outcome, vanished)

    async def _find_lost(self, client: ScrapydClient, asked_at: datetime, job: Job) -> None:
        """A job its node does not know, and that the gateway never saw running."""
        if job.id in self._job_service.sending:
            return  # its schedule call is under way
        if await client.read_log_tail(job.project, job.spider_name, job.id, LOG_TAIL_BYTES) is not None:
            # It started. Unless a listing asked for now shows it (the listing this tick went by
            # may predate its arrival), it ran while nobody watched and its node forgot it since.
            if (await client.list_jobs()).state_of(job.id) is None:
                await self._settle_ended(client, job, lost=True)
            return
        if job.cancel_requested_at is not None:
            await self._settle(job, JobOutcome(), None)
            return
        if job.dispatched_at is None or job.dispatched_at > asked_at - REDISPATCH_AFTER:
            return
        # Only if nothing changed since the tick read it (a cancel, another gateway's re-send).
        if not await self._update(job, resend_of=job.dispatched_at, dispatched_at=self._clock()):
            return
        log.warning("job %s is unknown to node %s: sending it again", job.id, client.node.name)
        try:
            await self._job_service.send_to_node(client, job)
        except ScrapydError as exc:
            await self._settle(job, JobOutcome(), f"scrapyd refused the job: {exc.message}")

    async def _dispatch(self, job: Job) -> None:
        if not await self._job_service.has_room(job.tenant_id):
            return  # its tenant's share of the nodes is taken: it waits its turn
        try:
            client = await self._nodes.pick()
        except NodeUnreachable:
            return
        claimed = await self._update(
            job, guard_undispatched=True, node=client.node.name, dispatched_at=self._clock()
        )
        if claimed:
            try:
                await self._job_service.send_to_node(client, job)
            except ScrapydError as exc:
                await self._settle(job, JobOutcome(), f"scrapyd refused the job: {exc.message}")

    async def _node_unreachable(
        self, client: ScrapydClient, node_jobs: list[Job], exc: Exception, asking_since: float
    ) -> None:
        # Counted from when the first unanswered question was asked: a node that hangs takes a
        # whole timeout to fail each one.
        name = client.node.name
        since = self._unreachable_since.setdefault(name, asking_since)
        if time.monotonic() - since < self._policy.node_lost_after.total_seconds():
            return
        reason = f"node {name} has not answered for {int(time.monotonic() - since)} s: {exc}"
        for job in node_jobs:
            # Jobs that never started wait in the node's queue, which survives a restart.
            if job.started_at is not None:
                await self._settle(job, JobOutcome(), reason)

    async def _settle(self, job: Job, outcome: JobOutcome, vanished: str | None) -> None:
        """Give the job its final status; nothing about it changes afterwards."""
        now = self._clock()
        async with self._store.write() as db:
            # Read again inside the transaction: a cancel may have come in since the tick began.
            row = (
                await db.execute(
                    select(
                        jobs.c.cancel_requested_at,
                        jobs.c.started_at,
                        jobs.c.settled,
                        jobs.c.error,
                        jobs.c.items_scraped,
                    )
                    .where(jobs.c.id == job.id)
                    .with_for_update()
                )
            ).first()
            if row is None or row.settled:
                return
            status, error = _final_status(row.cancel_requested_at is not None, outcome, vanished)
            if status == JobStatus.CANCELLED:
                error = row.error  # why the platform stopped it, if it did
            moved = await move(
                db,
                jobs,
                job.id,
                JOB_MOVES,
                status,
                {"settled": False},
                error=error,
                close_reason=outcome.close_reason,
                exit_code=outcome.exit_code,
                started_at=row.started_at or (now if outcome.process_ended else None),
                finished_at=now,
                settled=True,
            )
            if moved:
                ended = ended_event(
                    status,
                    project=job.project,
                    spider=job.spider_name,
                    items_scraped=row.items_scraped,
                    error=error,
                )
                ran = row.started_at is not None or outcome.process_ended
                # A job that ran between two syncs was never seen running: its start comes first.
                await emit(
                    db, job.id, [started_event(job.project, job.spider_name), ended] if ran else [ended]
                )
        log.info("job %s %s%s", job.id, status.value, f": {error}" if error else "")

    async def _update(
        self,
        job: Job,
        *,
        guard_undispatched: bool = False,
        resend_of: datetime | None = None,
        **values: Any,
    ) -> bool:
        expected: dict[str, Any] = {"settled": False}
        if guard_undispatched:
            expected["dispatched_at"] = None
        if resend_of is not None:
            expected |= {"dispatched_at": resend_of, "cancel_requested_at": None}
        async with self._store.write() as db:
            return await compare_and_set(db, jobs, job.id, expected, **values)

    async def _unsettled(self) -> list[Job]:
        async with self._store.read() as db:
            rows = await db.execute(select(jobs).where(jobs.c.settled.is_(False)).order_by(jobs.c.created_at))
            return [Job.from_row(row._mapping) for row in rows]


def _final_status(cancelled: bool, outcome: JobOutcome, vanished: str | None) -> tuple[JobStatus, str | None]:
    if cancelled:
        return JobStatus.CANCELLED, None
    if outcome.spawn_error is not None:
        return JobStatus.ERROR, f"the spider process could not be started: {outcome.spawn_error}"
    if outcome.exit_code is None:
        return JobStatus.ERROR, vanished or "the spider process ended without an exit status (killed?)"
    if outcome.exit_code < 0:
        return JobStatus.ERROR, f"the spider process was killed by signal {-outcome.exit_code}"
    if outcome.exit_code != 0:
        return JobStatus.ERROR, f"the spider process exited with code {outcome.exit_code}"
    if outcome.close_reason == "shutdown":
        return JobStatus.ERROR, "the spider was stopped before it finished (its node shut down?)"
    if outcome.close_reason in FAILED_CLOSE_REASONS:
        return JobStatus.ERROR, f"the spider closed with reason {outcome.close_reason!r}"
    return JobStatus.FINISHED, None
