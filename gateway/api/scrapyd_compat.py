"""scrapyd's JSON API at the host root, so scrapyd-deploy, scrapydweb and scrapyd clients work unchanged.

Answers keep scrapyd's shape (``"status": "ok"``, ``node_name``, its field names); errors answer 4xx,
because scrapyd-deploy only looks at the HTTP status. Jobs go through the platform's own job service,
so they are owned by the caller's tenant, counted and ingested like any other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from gateway.api import platform_of
from gateway.api.models import scrapyd as models
from gateway.api.models.common import ErrorBody, Model
from gateway.api.operations import FORM, MULTIPART, SCRAPYD, Endpoint, Operation
from gateway.catalog.eggs import MAX_EGG_BYTES
from gateway.errors import BadRequest, Conflict, Forbidden, NodeUnavailable, NotFound
from gateway.http import NODE_NAME, api_key_of, read_body
from gateway.jobs.models import Job, JobStatus
from gateway.nodes.scrapyd import NodeUnreachable, ScrapydError, iterate_body

Params = dict[str, list[Any]]
# Every form but an egg upload is small: its fields are names, ids and spider arguments.
MAX_FORM_BYTES = 1024 * 1024
_OWN_SCHEDULE_FIELDS = ("project", "spider", "_version", "jobid", "priority", "setting")
ITEMS_PAGE = 1000


def _ok(**fields: Any) -> JSONResponse:
    return JSONResponse({"node_name": NODE_NAME, "status": "ok", **fields})


async def daemon_status(request: Request) -> JSONResponse:
    totals = {"pending": 0, "running": 0, "finished": 0}
    for node in await platform_of(request).nodes.health():
        if not node.ok:
            raise NodeUnavailable(f"scrapyd node {node.name} is unreachable: {node.error}")
        totals["pending"] += node.pending
        totals["running"] += node.running
        totals["finished"] += node.finished
    return _ok(**totals)


async def add_version(request: Request) -> JSONResponse:
    _require_admin(request)
    params = await _params(request, egg=True)
    project, version = _text(params, "project"), _text(params, "version")
    egg = _first(params, "egg")
    if isinstance(egg, str):
        egg = egg.encode("latin-1", errors="replace")
    spiders = await platform_of(request).deployments.add_version(project, version, egg)
    return _ok(project=project, version=version, spiders=spiders)


async def list_projects(request: Request) -> JSONResponse:
    projects = await _ask_node(request, lambda client: client.list_projects())
    return _ok(projects=projects)


async def list_versions(request: Request) -> JSONResponse:
    project = _text(await _params(request), "project")
    return _ok(versions=await _ask_node(request, lambda client: client.list_versions(project)))


async def list_spiders(request: Request) -> JSONResponse:
    params = await _params(request)
    project, version = _text(params, "project"), _text(params, "_version", required=False)
    return _ok(spiders=await _ask_node(request, lambda client: client.list_spiders(project, version or None)))


async def delete_version(request: Request) -> JSONResponse:
    _require_admin(request)
    params = await _params(request)
    await platform_of(request).deployments.delete_version(_text(params, "project"), _text(params, "version"))
    return _ok()


async def delete_project(request: Request) -> JSONResponse:
    _require_admin(request)
    await platform_of(request).deployments.delete_project(_text(await _params(request), "project"))
    return _ok()


async def schedule(request: Request) -> JSONResponse:
    platform = platform_of(request)
    params = await _params(request)
    project, spider_name = _text(params, "project"), _text(params, "spider")
    try:
        priority = float(_text(params, "priority", required=False) or 0)
    except (ValueError, OverflowError):
        raise BadRequest("priority is invalid: it must be a number") from None
    settings = {}
    for setting in params.get("setting", []):
        name, sep, value = str(setting).partition("=")
        if not sep:
            raise BadRequest(f"setting {setting!r} is invalid: use NAME=VALUE")
        settings[name] = value
    arguments = {name: str(values[0]) for name, values in params.items() if name not in _OWN_SCHEDULE_FIELDS}
    try:
        spider = await platform.catalog.find(spider_name, project)
    except NotFound:
        raise NotFound(f"spider '{spider_name}' not found in project '{project}'") from None
    job = await platform.jobs.start(
        api_key_of(request),
        spider,
        arguments,
        settings=settings,
        version=_text(params, "_version", required=False) or None,
        priority=priority,
        job_id=_text(params, "jobid", required=False) or None,
    )
    return _ok(jobid=job.public_id)


async def cancel(request: Request) -> JSONResponse:
    params = await _params(request)
    _text(params, "project")
    try:
        _, prevstate = await platform_of(request).jobs.cancel(api_key_of(request), _text(params, "job"))
    except (NotFound, Conflict):
        prevstate = None  # scrapyd's answer for a job that is unknown or over
    return _ok(prevstate=prevstate)


async def list_jobs(request: Request) -> JSONResponse:
    platform = platform_of(request)
    project = _text(await _params(request), "project", required=False) or None
    jobs = await platform.jobs.search(api_key_of(request), project=project, limit=1000)
    listed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for job in reversed(jobs):
        listed[_scrapyd_state(job)].append(_listed_job(job))
    return _ok(pending=listed["pending"], running=listed["running"], finished=listed["finished"])


async def job_status(request: Request) -> JSONResponse:
    params = await _params(request)
    try:
        job = await platform_of(request).jobs.get(api_key_of(request), _text(params, "job"))
    except NotFound:
        return _ok(currstate=None)
    return _ok(currstate=_scrapyd_state(job))


async def job_log(request: Request) -> StreamingResponse:
    """``/logs/<project>/<spider>/<job>.log``, where scrapydweb and scrapyd clients look for a log."""
    job = await _job_from_path(request, ".log")
    response = await platform_of(request).jobs.open_log(api_key_of(request), job.public_id)
    return StreamingResponse(iterate_body(response), media_type="text/plain; charset=utf-8")


async def job_items(request: Request) -> StreamingResponse:
    """``/items/<project>/<spider>/<job>.jl``: every item of the job, as the feed had them."""
    job = await _job_from_path(request, ".jl")
    platform, key = platform_of(request), api_key_of(request)

    async def lines() -> AsyncIterator[bytes]:
        offset = 0
        while True:
            page = await platform.jobs.item_page(key, job.public_id, offset, ITEMS_PAGE)
            if page.items:
                yield "".join(f"{item}\n" for item in page.items).encode()
            if len(page.items) < ITEMS_PAGE:
                return
            offset += len(page.items)

    return StreamingResponse(lines(), media_type="application/x-ndjson")


async def _job_from_path(request: Request, extension: str) -> Job:
    file_name: str = request.path_params["file_name"]
    if not file_name.endswith(extension):
        raise NotFound()
    job = await platform_of(request).jobs.get(api_key_of(request), file_name.removesuffix(extension))
    if (job.project, job.spider_name) != (request.path_params["project"], request.path_params["spider"]):
        raise NotFound()
    return job


def _scrapyd_state(job: Job) -> str:
    if job.status.ended:
        return "finished"
    return "running" if job.status == JobStatus.RUNNING else "pending"


def _listed_job(job: Job) -> dict[str, Any]:
    listed: dict[str, Any] = {"id": job.public_id, "project": job.project, "spider": job.spider_name}
    if job.status == JobStatus.PENDING:
        return listed | {"version": job.version, "settings": job.settings, "args": job.public_arguments}
    listed |= {
        "pid": job.pid,
        # A job cancelled before it started has no start: scrapyd clients expect a time all the same.
        "start_time": _scrapyd_time(job.started_at or job.finished_at or job.created_at),
        "log_url": f"/logs/{quote(job.project)}/{quote(job.spider_name)}/{job.public_id}.log",
        "items_url": f"/items/{quote(job.project)}/{quote(job.spider_name)}/{job.public_id}.jl",
    }
    if job.status.ended:
        listed.pop("pid")
        listed["end_time"] = _scrapyd_time(job.finished_at)
        listed["status"] = job.status.value
    return listed


def _scrapyd_time(moment: datetime | None) -> str | None:
    return str(moment.astimezone(UTC).replace(tzinfo=None)) if moment else None


def _require_admin(request: Request) -> None:
    if not api_key_of(request).is_admin:
        raise Forbidden("Only admin API keys may deploy or delete projects.")


async def _ask_node(request: Request, question: Any) -> Any:
    client = platform_of(request).nodes.first
    try:
        return await question(client)
    except ScrapydError as exc:
        raise BadRequest(exc.message) from exc
    except NodeUnreachable as exc:
        raise NodeUnavailable(f"scrapyd node {client.node.name} is unreachable: {exc}") from exc


async def _params(request: Request, *, egg: bool = False) -> Params:
    """scrapyd's request arguments: the query string, plus a form body (multipart or url-encoded).

    The body is small unless it carries an ``egg`` (an admin's upload): then an egg's size, or
    three times that url-encoded, which takes up to three bytes for each of the egg's own.
    """
    params: Params = defaultdict(list)
    for name, text in request.query_params.multi_items():
        params[name].append(text)
    content_type = request.headers.get("content-type", "")
    multipart = content_type.startswith("multipart/form-data")
    limit = MAX_FORM_BYTES
    if egg:
        limit = MAX_EGG_BYTES + MAX_FORM_BYTES if multipart else 3 * MAX_EGG_BYTES
    if request.method == "POST" and multipart:
        # Read within the limit first: Starlette would spool any size of upload before a check.
        request._body = await read_body(request, limit=limit)
        form = await request.form(max_files=4, max_fields=1000)
        for name, field in form.multi_items():
            params[name].append(await _upload_bytes(field) if isinstance(field, UploadFile) else field)
    elif request.method == "POST":
        body = await read_body(request, limit=limit)
        for name, raw in _urlencoded(body):
            params[name].append(raw if name == "egg" else raw.decode("utf-8", errors="replace"))
    return params


async def _upload_bytes(upload: UploadFile) -> bytes:
    data = await upload.read(MAX_EGG_BYTES + 1)
    if len(data) > MAX_EGG_BYTES:
        raise BadRequest(f"egg is larger than {MAX_EGG_BYTES // (1024 * 1024)} MiB")
    return data


def _urlencoded(body: bytes) -> list[tuple[str, bytes]]:
    """Form fields with their raw bytes: an url-encoded egg is binary, not text."""
    fields = []
    for pair in body.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        decoded_name = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", errors="replace")
        fields.append((decoded_name, unquote_to_bytes(value.replace(b"+", b" "))))
    return fields


def _first(params: Params, name: str) -> Any:
    values = params.get(name)
    if not values:
        raise BadRequest(f"'{name}' parameter is required")
    return values[0]


def _text(params: Params, name: str, *, required: bool = True) -> str:
    if not required and not params.get(name):
        return ""
    value = _first(params, name)
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _form(
    path: str, endpoint: Endpoint, summary: str, body: type[Model], answer: type[Model], **more: Any
) -> Operation:
    """A POST that takes scrapyd's form fields."""
    return Operation(
        "POST", path, endpoint, SCRAPYD, summary, body=body, body_media=(FORM,), response=answer, **more
    )


OPERATIONS = [
    Operation(
        "GET",
        "/daemonstatus.json",
        daemon_status,
        SCRAPYD,
        "Job counts of the nodes",
        response=models.DaemonStatus,
    ),
    Operation(
        "POST",
        "/addversion.json",
        add_version,
        SCRAPYD,
        "Deploy an egg (admin keys)",
        body=models.AddVersionForm,
        body_media=(MULTIPART,),
        response=models.AddedVersion,
    ),
    Operation(
        "GET", "/listprojects.json", list_projects, SCRAPYD, "Deployed projects", response=models.Projects
    ),
    Operation(
        "GET",
        "/listversions.json",
        list_versions,
        SCRAPYD,
        "A project's versions",
        query=models.ProjectForm,
        response=models.Versions,
    ),
    Operation(
        "GET",
        "/listspiders.json",
        list_spiders,
        SCRAPYD,
        "A project's spiders",
        query=models.SpidersQuery,
        response=models.Spiders,
    ),
    _form(
        "/delversion.json",
        delete_version,
        "Delete a version (admin keys)",
        models.VersionForm,
        models.ScrapydAnswer,
    ),
    _form(
        "/delproject.json",
        delete_project,
        "Delete a project (admin keys)",
        models.ProjectForm,
        models.ScrapydAnswer,
    ),
    _form("/schedule.json", schedule, "Start a job", models.ScheduleForm, models.Scheduled),
    _form("/cancel.json", cancel, "Cancel a job", models.CancelForm, models.Cancelled),
    Operation(
        "GET",
        "/listjobs.json",
        list_jobs,
        SCRAPYD,
        "The tenant's jobs, by state",
        query=models.JobsQuery,
        response=models.JobList,
    ),
    Operation(
        "GET",
        "/status.json",
        job_status,
        SCRAPYD,
        "A job's state",
        query=models.StatusQuery,
        response=models.JobState,
    ),
    Operation(
        "GET",
        "/logs/{project}/{spider}/{file_name}",
        job_log,
        SCRAPYD,
        "A job's log (<job>.log)",
        response_media="text/plain",
        error=ErrorBody,
    ),
    Operation(
        "GET",
        "/items/{project}/{spider}/{file_name}",
        job_items,
        SCRAPYD,
        "A job's items (<job>.jl)",
        response_media="application/x-ndjson",
        error=ErrorBody,
    ),
]
