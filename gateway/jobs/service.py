"""Jobs: one run of one spider on one scrapyd node, owned by one tenant.

State machine: pending → running → finished | cancelled | error. ``JobService`` starts, reads and
cancels jobs for every API dialect; ``gateway.jobs.sync`` moves them along as scrapyd reports.
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
from sqlalchemy import bindparam, delete, func, insert, select, update

from gateway.accounts.keys import ApiKey
from gateway.catalog.spiders import Spider, SpiderCatalog
from gateway.clock import utc_now
from gateway.errors import BadRequest, Conflict, NodeUnavailable, NotFound, PaymentRequired
from gateway.jobs.events import ended_event
from gateway.jobs.models import ItemPage, Job, JobStatus
from gateway.jobs.queries import TenantQueue, public_id_taken, tenant_queue
from gateway.nodes.pool import NodePool
from gateway.nodes.scrapyd import NodeUnreachable, ScrapydClient, ScrapydError
from gateway.store import Store
from gateway.store.tables import items, jobs
from gateway.webhooks.models import WebhookTarget
from gateway.webhooks.outbox import emit, subscribe, unsubscribe
from node.secret_arguments import SECRET_ARGUMENTS

log = logging.getLogger(__name__)
# Built once: status polls run it many times a second.
_TENANT_JOB = select(jobs).where(
    jobs.c.public_id == bindparam("public_id"), jobs.c.tenant_id == bindparam("tenant_id")
)

# scrapyd's schedule.json takes these form fields for itself; as spider arguments they would vanish.
RESERVED_ARGUMENTS = frozenset({"project", "spider", "jobid", "priority", "setting", "name", "settings"})
_ARGUMENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}")
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SETTING_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,99}")
# Built-in spiders the gateway starts itself, never on a client's request.
INTERNAL_SPIDERS = frozenset({("spiders_project", "batch"), ("spiders_project", "site")})
# Linux caps one argv string at 128 KiB; arguments and settings travel to the spider as argv.
MAX_ARGUMENT_BYTES = 64 * 1024
MAX_SETTING_BYTES = 4 * 1024
# scrapyd's queue takes any number; user keys get a small whole one, admins any finite one.
USER_PRIORITIES = range(-100, 101)


def encode_arguments(arguments: Mapping[str, Any], *, internal: bool = False) -> dict[str, str]:
    """Spider arguments as scrapyd passes them (``-a name=value``): strings as is, the rest as JSON.

    ``internal``: a job of the platform's own, which may carry ``SECRET_ARGUMENTS``.
    """
    encoded: dict[str, str] = {}
    for name, value in arguments.items():
        if internal and name in SECRET_ARGUMENTS:
            encoded[name] = str(value)
            continue
        if not isinstance(name, str) or not _ARGUMENT_NAME.fullmatch(name):
            raise BadRequest(
                f"invalid argument name {name!r}: start with a letter, then letters, digits or '_'"
            )
        if name in RESERVED_ARGUMENTS:
            raise BadRequest(f"argument name {name!r} is reserved by scrapyd; rename the spider argument")
        encoded[name] = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        check_text(encoded[name], f"argument {name!r}")
    if sum(len(name) + len(value.encode()) for name, value in encoded.items()) > MAX_ARGUMENT_BYTES:
        raise BadRequest(f"arguments are larger than {MAX_ARGUMENT_BYTES // 1024} KiB in all")
    return encoded


# Scrapy settings a user key may give a job: they change how a spider crawls, not which code runs,
# where files go or how items are exported. Admin keys, which deploy code anyway, may set any.
USER_SETTINGS = frozenset(
    {
        "AUTOTHROTTLE_ENABLED",
        "AUTOTHROTTLE_MAX_DELAY",
        "AUTOTHROTTLE_START_DELAY",
        "AUTOTHROTTLE_TARGET_CONCURRENCY",
        "CLOSESPIDER_ERRORCOUNT",
        "CLOSESPIDER_ITEMCOUNT",
        "CLOSESPIDER_PAGECOUNT",
        "CLOSESPIDER_TIMEOUT",
        "CLOSESPIDER_TIMEOUT_NO_ITEM",
        "CONCURRENT_ITEMS",
        "CONCURRENT_REQUESTS",
        "CONCURRENT_REQUESTS_PER_DOMAIN",
        "COOKIES_ENABLED",
        "DEPTH_LIMIT",
        "DEPTH_PRIORITY",
        "DOWNLOAD_DELAY",
        "DOWNLOAD_MAXSIZE",
        "DOWNLOAD_TIMEOUT",
        "DOWNLOAD_WARNSIZE",
        "LOG_LEVEL",
        "RANDOMIZE_DOWNLOAD_DELAY",
        "REDIRECT_ENABLED",
        "REDIRECT_MAX_TIMES",
        "RETRY_ENABLED",
        "RETRY_TIMES",
        "ROBOTSTXT_OBEY",
        "USER_AGENT",
    }
)


# Numeric settings a user key may give, and the range each must stay in, so that no job takes more
# of a shared node than the platform's own spiders would (0 means "no limit" to Scrapy for some).
USER_SETTING_RANGES: dict[str, tuple[float, float]] = {
    "CONCURRENT_ITEMS": (1, 200),
    "CONCURRENT_REQUESTS": (1, 64),
    "CONCURRENT_REQUESTS_PER_DOMAIN": (1, 64),
    "DOWNLOAD_MAXSIZE": (1, 10 * 1024 * 1024),
    "DOWNLOAD_WARNSIZE": (0, 10 * 1024 * 1024),
    "DOWNLOAD_TIMEOUT": (1, 600),
    "DOWNLOAD_DELAY": (0, 3600),
    "AUTOTHROTTLE_MAX_DELAY": (0, 3600),
    "AUTOTHROTTLE_START_DELAY": (0, 3600),
    "AUTOTHROTTLE_TARGET_CONCURRENCY": (0.1, 64),
    "REDIRECT_MAX_TIMES": (0, 20),
    "RETRY_TIMES": (0, 10),
    "CLOSESPIDER_TIMEOUT": (0, 86400),
    "CLOSESPIDER_TIMEOUT_NO_ITEM": (0, 86400),
}


def _check_user_setting(name: str, value: str) -> None:
    bounds = USER_SETTING_RANGES.get(name)
    if bounds is None:
        return
    low, high = bounds
    try:
        number = float(value)
    except ValueError:
        raise BadRequest(f"setting {name} must be a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise BadRequest(f"setting {name} must be from {low:g} to {high:g} for user keys")


def check_text(value: str, what: str) -> None:
    """A value that reaches a spider's argv: no NUL (the kernel would cut it there), valid UTF-8."""
    if "\x00" in value:
        raise BadRequest(f"{what} holds a NUL byte")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{what} is not valid Unicode (a lone surrogate?)") from None


def check_settings(settings: Mapping[str, str], *, admin: bool) -> dict[str, str]:
    for name, value in settings.items():
        if not isinstance(name, str) or not _SETTING_NAME.fullmatch(name):
            raise BadRequest(f"invalid Scrapy setting name {name!r}")
        if not admin and name not in USER_SETTINGS:
            raise BadRequest(f"only admin keys may set {name}; see USER_SETTINGS in gateway/jobs/service.py")
        if not isinstance(value, str):
            raise BadRequest(f"setting {name} must be a string")
        check_text(value, f"setting {name}")
        if len(value.encode("utf-8")) > MAX_SETTING_BYTES:
            raise BadRequest(f"setting {name} is longer than {MAX_SETTING_BYTES // 1024} KiB")
        if not admin:
            _check_user_setting(name, value)
    return dict(settings)


def check_priority(priority: float, *, admin: bool) -> float:
    if not math.isfinite(priority):
        raise BadRequest("priority must be a finite number")
    if not admin and (priority != int(priority) or int(priority) not in USER_PRIORITIES):
        raise BadRequest(
            f"priority must be a whole number from {USER_PRIORITIES.start} to {USER_PRIORITIES.stop - 1}"
        )
    return priority


class JobService:
    """Starts, reads and cancels jobs on behalf of an API key."""

    def __init__(
        self,
        store: Store,
        nodes: NodePool,
        catalog: SpiderCatalog,
        job_settings: Mapping[str, str] | None = None,
        max_jobs_per_tenant: int | None = None,
    ) -> None:
        self._store = store
        self._nodes = nodes
        self._catalog = catalog
        # Settings every job's process gets from the platform, over the job's own (the egress policy).
        self._job_settings = dict(job_settings or {})
        self._max_jobs_per_tenant = max_jobs_per_tenant
        # Ids of jobs whose schedule call is under way in this process.
        self.sending: set[str] = set()

    async def census(self) -> list[tuple[str, str, int]]:
        """(status, spider name, jobs) over every job kept: what the metrics report (off the event loop)."""
        async with self._store.scan() as db:
            rows = await db.execute(
                select(jobs.c.status, jobs.c.spider_name, func.count()).group_by(
                    jobs.c.status, jobs.c.spider_name
                )
            )
            return [(str(status), str(spider), int(count)) for status, spider, count in rows]

    async def start(
        self,
        key: ApiKey,
        spider: Spider,
        arguments: Mapping[str, Any],
        *,
        settings: Mapping[str, str] | None = None,
        version: str | None = None,
        priority: float = 0.0,
        job_id: str | None = None,
        batch_id: str | None = None,
        schedule_id: str | None = None,
        webhook: WebhookTarget | None = None,
    ) -> Job:
        """Record a pending job and put it in a node's queue (or leave it for the sync when none answers).

        A batch's jobs are paid by the batch, which holds credits for its pages up front.
        """
        if batch_id is None and key.out_of_credits:
            raise PaymentRequired()
        if batch_id is None and (spider.project, spider.name) in INTERNAL_SPIDERS:
            # Its inputs (and the addresses it may reach) come from the batch the gateway stored.
            raise BadRequest(f"the {spider.name} spider runs only through the batch and crawl APIs")
        encode_arguments(arguments, internal=batch_id is not None)
        # A batch's jobs carry settings the gateway chose, not the client.
        settings = check_settings(settings or {}, admin=key.is_admin or batch_id is not None)
        priority = check_priority(priority, admin=key.is_admin)
        if job_id is not None and not _JOB_ID.fullmatch(job_id):
            raise BadRequest("jobid must be 1 to 64 letters, digits, '_' or '-'")
        public_id = job_id or uuid.uuid4().hex
        client = await self._pick_node()
        now = utc_now()
        async with self._store.write() as db:
            if await public_id_taken(db, key.tenant_id, public_id):
                raise Conflict(f"a job with id {public_id} exists already")
            # A chosen id is the tenant's alone: on the store and the node the job has a fresh one,
            # so nothing there (its log's or its feed's name) tells whether another tenant chose it.
            job_id = uuid.uuid4().hex if job_id is not None else public_id
            # Beyond its tenant's share of the nodes a job waits, undispatched, for the sync to send
            # it; counted in the write transaction, so concurrent starts cannot all squeeze in.
            if client is not None and not await self._has_room(db, key.tenant_id):
                client = None
            await db.execute(
                insert(jobs).values(
                    id=job_id,
                    public_id=public_id,
                    tenant_id=key.tenant_id,
                    api_key_id=key.id,
                    spider_id=spider.id,
                    project=spider.project,
                    spider_name=spider.name,
                    version=version,
                    arguments=dict(arguments),
                    settings=settings,
                    priority=priority,
                    node=client.node.name if client else None,
                    dispatched_at=now if client else None,
                    status=JobStatus.PENDING,
                    created_at=now,
                    items_scraped=0,
                    feed_offset=0,
                    settled=False,
                    batch_id=batch_id,
                    schedule_id=schedule_id,
                )
            )
            if webhook is not None:
                await subscribe(db, key.tenant_id, job_id, "job", webhook, public_id=public_id)
        job = await self._load(job_id)
        if client is not None:
            try:
                await self.send_to_node(client, job)
            except ScrapydError as exc:
                async with self._store.write() as db:
                    await db.execute(delete(jobs).where(jobs.c.id == job_id))
                    await unsubscribe(db, job_id)
                await self._catalog.refresh_quietly(spider.project)
                if "not found" in exc.message:
                    raise NotFound(f"Spider not found: {exc.message}") from exc
                raise BadRequest(exc.message) from exc
        return await self._load(job_id)

    async def send_to_node(self, client: ScrapydClient, job: Job) -> None:
        """Schedule ``job`` on ``client``'s node. If the node surely did not get it, mark it undispatched."""
        self.sending.add(job.id)
        try:
            await client.schedule(
                project=job.project,
                spider=job.spider_name,
                job_id=job.id,
                arguments=encode_arguments(job.arguments, internal=job.batch_id is not None),
                settings={**job.settings, **self._job_settings},
                version=job.version,
                priority=job.priority,
            )
        except NodeUnreachable as exc:
            log.warning("job %s waits for a node: %s", job.id, exc)
            if isinstance(exc.__cause__, httpx.ConnectError):
                async with self._store.write() as db:
                    await db.execute(update(jobs).where(jobs.c.id == job.id).values(dispatched_at=None))
        finally:
            self.sending.discard(job.id)

    async def has_room(self, tenant_id: str) -> bool:
        """Whether the tenant has fewer jobs on nodes than ``max_jobs_per_tenant``."""
        async with self._store.read() as db:
            return await self._has_room(db, tenant_id)

    async def queue(self, tenant_id: str) -> TenantQueue:
        """The tenant's spider processes running and waiting (its batches' included)."""
        async with self._store.read() as db:
            return await tenant_queue(db, tenant_id)

    async def _has_room(self, db: Any, tenant_id: str) -> bool:
        if self._max_jobs_per_tenant is None:
            return True
        query = (
            select(func.count())
            .select_from(jobs)
            .where(jobs.c.tenant_id == tenant_id, jobs.c.settled.is_(False))
            .where(jobs.c.dispatched_at.is_not(None))
        )
        return int((await db.execute(query)).scalar_one()) < self._max_jobs_per_tenant

    async def stop(self, job: Job, reason: str) -> bool:
        """Stop a job the platform will not let go on (credits spent, run time over): the normal
        cancel path (a graceful signal, then a kill), ending as ``cancelled`` with ``reason`` as its
        error. False if it ended, or a cancel came, first."""
        async with self._store.write() as db:
            result = await db.execute(
                update(jobs)
                .where(jobs.c.id == job.id, jobs.c.settled.is_(False), jobs.c.cancel_requested_at.is_(None))
                .values(cancel_requested_at=utc_now(), error=reason)
            )
        if result.rowcount == 1:
            log.info("job %s stopped: %s", job.id, reason)
        return bool(result.rowcount == 1)

    async def get(self, key: ApiKey, job_id: str) -> Job:
        """The key's tenant's job by the id the tenant knows; another tenant's job is not found,
        exactly like a missing one."""
        async with self._store.read() as db:
            mine = {"public_id": job_id, "tenant_id": key.tenant_id}
            row = (await db.execute(_TENANT_JOB, mine)).first()
        if row is None:
            raise NotFound("Job not found")
        return Job.from_row(row._mapping)

    async def search(
        self,
        key: ApiKey,
        *,
        status: JobStatus | None = None,
        spider_id: str | None = None,
        project: str | None = None,
        schedule_id: str | None = None,
        limit: int = 50,
    ) -> list[Job]:
        """The tenant's jobs, newest first."""
        query = (
            select(jobs)
            .where(jobs.c.tenant_id == key.tenant_id)
            .order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(jobs.c.status == status)
        if spider_id is not None:
            query = query.where(jobs.c.spider_id == spider_id)
        if project is not None:
            query = query.where(jobs.c.project == project)
        if schedule_id is not None:
            query = query.where(jobs.c.schedule_id == schedule_id)
        async with self._store.read() as db:
            return [Job.from_row(row._mapping) for row in await db.execute(query)]

    async def cancel(self, key: ApiKey, job_id: str) -> tuple[Job, str | None]:
        """Stop the job: dropped from its queue if pending, signalled if running (killed after a grace).

        Returns the job and the state it was in on its node (pending, running, or None).
        """
        job = await self.get(key, job_id)
        if job.status.ended:
            raise Conflict(f"Job already {job.status.value}")
        now = utc_now()
        values: dict[str, Any] = {"status": JobStatus.CANCELLED, "cancel_requested_at": now}
        settled = {"finished_at": now, "settled": True}
        client = self._nodes.get(job.node) if job.node else None
        prevstate: str | None = None
        query = update(jobs).where(jobs.c.id == job.id, jobs.c.settled.is_(False))
        if client is None or job.dispatched_at is None:
            # It never reached a node: nothing runs and nothing will, unless the sync sends it first.
            values |= settled
            query = query.where(jobs.c.dispatched_at.is_(None))
        else:
            try:
                prevstate = await client.cancel(job.project, job.id)
            except NodeUnreachable:
                log.warning("job %s cancelled while its node is unreachable: the sync will tell it", job.id)
            except ScrapydError as exc:
                log.warning("cancel of job %s: scrapyd said %s", job.id, exc.message)
                values |= settled
            else:
                if prevstate == "running":
                    values["term_sent_at"] = now
                elif prevstate == "pending":
                    values |= settled
                elif await self._finished_on_node(client, job):
                    raise Conflict("Job already finished")
                # Otherwise the node does not know it (yet): the sync settles it, or stops it if it shows up.
        async with self._store.write() as db:
            result = await db.execute(query.values(**values))
            if result.rowcount == 1 and values.get("settled"):
                cancelled = ended_event(
                    JobStatus.CANCELLED,
                    project=job.project,
                    spider=job.spider_name,
                    items_scraped=job.items_scraped,
                    error=None,
                )
                await emit(db, job.id, [cancelled])
        if result.rowcount != 1:
            # The job ended, or was sent to a node, in the meantime: look again.
            return await self.cancel(key, job_id)
        return await self._load(job.id), prevstate

    async def item_page(self, key: ApiKey, job_id: str, offset: int, limit: int) -> ItemPage:
        """Items of the job in the order they were scraped, as the JSON documents the spider exported."""
        job = await self.get(key, job_id)
        query = (
            select(items.c.data)
            .where(items.c.job_id == job.id, items.c.seq >= offset)
            .order_by(items.c.seq)
            .limit(limit)
        )
        async with self._store.scan() as db:
            page = [row.data for row in await db.execute(query)]
            total = (
                await db.execute(select(func.count()).select_from(items).where(items.c.job_id == job.id))
            ).scalar_one()
        return ItemPage(items=page, total=int(total), offset=offset)

    async def open_log(self, key: ApiKey, job_id: str) -> httpx.Response:
        """The job's log, streamed from the node that ran it (close the response when done)."""
        job = await self.get(key, job_id)
        client = self._nodes.get(job.node) if job.node else None
        if client is None or job.dispatched_at is None:
            raise NotFound("No log yet: the job has not reached a node")
        try:
            response = await client.open_log(job.project, job.spider_name, job.id)
        except NodeUnreachable as exc:
            raise NodeUnavailable(f"The log is on node {client.node.name}, which does not answer.") from exc
        except ScrapydError as exc:
            raise NodeUnavailable(f"Node {client.node.name} did not give the log: {exc.message}") from exc
        if response is None:
            raise NotFound(
                "No log yet: the job has not started" if job.status == JobStatus.PENDING else "Log not found"
            )
        return response

    async def _pick_node(self) -> ScrapydClient | None:
        try:
            return await self._nodes.pick()
        except NodeUnreachable:
            return None

    async def _finished_on_node(self, client: ScrapydClient, job: Job) -> bool:
        try:
            return (await client.list_jobs()).state_of(job.id) == "finished"
        except (NodeUnreachable, ScrapydError):
            return False

    async def _load(self, job_id: str) -> Job:
        async with self._store.read() as db:
            row = (await db.execute(select(jobs).where(jobs.c.id == job_id))).first()
        if row is None:
            raise NotFound("Job not found")
        return Job.from_row(row._mapping)
