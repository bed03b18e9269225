"""HTTP client for one scrapyd node: its JSON API, and the item feeds and logs it serves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

# scrapyd runs `scrapy list` inside addversion.json before it answers, which takes a while.
DEPLOY_TIMEOUT = httpx.Timeout(180.0, connect=5.0)
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=3.0)
# daemonstatus.json answers from memory at once: a node that takes longer hangs.
STATUS_TIMEOUT = httpx.Timeout(5.0, connect=3.0)


class ScrapydError(Exception):
    """scrapyd answered, and said no; ``message`` is its own words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NodeUnreachable(Exception):
    """The node did not answer (refused, timed out, or not speaking HTTP)."""


@dataclass(frozen=True)
class Node:
    """A scrapyd daemon the gateway sends jobs to."""

    name: str
    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str, name: str | None = None) -> Node:
        """``http://user:password@host:port`` → a node named ``host:port`` (credentials kept apart)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not a scrapyd URL: {url!r}")
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/", "", ""))
        return cls(name=name or netloc, url=base, username=parts.username, password=parts.password)


@dataclass(frozen=True)
class RunningJob:
    pid: int | None
    start_time: str | None


@dataclass(frozen=True)
class NodeJobs:
    """One snapshot of ``listjobs.json``: which job ids the node knows, in which state."""

    pending: frozenset[str]
    running: Mapping[str, RunningJob]
    finished: frozenset[str]

    def state_of(self, job_id: str) -> str | None:
        # Running and finished first: a second copy of a job still queued never runs (node/launcher.py).
        if job_id in self.running:
            return "running"
        if job_id in self.finished:
            return "finished"
        if job_id in self.pending:
            return "pending"
        return None


class ScrapydClient:
    """Speaks to one node. Every call raises ``NodeUnreachable`` or ``ScrapydError`` on failure."""

    def __init__(self, node: Node, http: httpx.AsyncClient) -> None:
        self.node = node
        self._http = http
        self._auth = httpx.BasicAuth(node.username or "", node.password or "") if node.username else None

    async def daemon_status(self) -> dict[str, Any]:
        return await self._call("GET", "daemonstatus.json", limits=STATUS_TIMEOUT)

    async def add_version(self, project: str, version: str, egg: bytes) -> int:
        answer = await self._call(
            "POST",
            "addversion.json",
            data={"project": project, "version": version},
            files={"egg": ("project.egg", egg, "application/octet-stream")},
            limits=DEPLOY_TIMEOUT,
        )
        return int(answer.get("spiders", 0))

    async def list_projects(self) -> list[str]:
        return list((await self._call("GET", "listprojects.json"))["projects"])

    async def list_versions(self, project: str) -> list[str]:
        return list((await self._call("GET", "listversions.json", params={"project": project}))["versions"])

    async def list_spiders(self, project: str, version: str | None = None) -> list[str]:
        params = {"project": project} | ({"_version": version} if version else {})
        answer = await self._call("GET", "listspiders.json", params=params, limits=DEPLOY_TIMEOUT)
        return list(answer["spiders"])

    async def delete_version(self, project: str, version: str) -> None:
        await self._call("POST", "delversion.json", data={"project": project, "version": version})

    async def delete_project(self, project: str) -> None:
        await self._call("POST", "delproject.json", data={"project": project})

    async def schedule(
        self,
        *,
        project: str,
        spider: str,
        job_id: str,
        arguments: Mapping[str, str],
        settings: Mapping[str, str],
        version: str | None = None,
        priority: float = 0.0,
    ) -> None:
        form: dict[str, Any] = dict(arguments)
        form |= {"project": project, "spider": spider, "jobid": job_id, "priority": str(priority)}
        if version:
            form["_version"] = version
        if settings:
            form["setting"] = [f"{name}={value}" for name, value in settings.items()]
        await self._call("POST", "schedule.json", data=form, limits=DEPLOY_TIMEOUT)

    async def cancel(self, project: str, job_id: str, signal: str = "TERM") -> str | None:
        """Signal a running job (or drop a pending one); returns its state before: pending, running, None."""
        answer = await self._call(
            "POST", "cancel.json", data={"project": project, "job": job_id, "signal": signal}
        )
        prevstate = answer.get("prevstate")
        return str(prevstate) if prevstate else None

    async def list_jobs(self) -> NodeJobs:
        answer = await self._call("GET", "listjobs.json")
        return NodeJobs(
            pending=frozenset(job["id"] for job in answer.get("pending", [])),
            running={
                job["id"]: RunningJob(pid=job.get("pid"), start_time=job.get("start_time"))
                for job in answer.get("running", [])
            },
            finished=frozenset(job["id"] for job in answer.get("finished", [])),
        )

    async def read_feed(self, project: str, spider: str, job_id: str, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes of the job's item feed from ``offset``; empty if there are none (yet)."""
        headers = {"Range": f"bytes={offset}-{offset + limit - 1}"}
        response = await self._get_file(_job_path("items", project, spider, job_id, "jl"), headers)
        if response is None:
            return b""
        if response.status_code == 200:  # the node ignored the range
            return response.content[offset : offset + limit]
        return response.content

    async def read_log_tail(self, project: str, spider: str, job_id: str, size: int) -> str | None:
        """The last ``size`` bytes of the job's log, or None if the node has no log for it."""
        path = _job_path("logs", project, spider, job_id, "log")
        length = await self._file_size(path)
        if length is None:
            return None
        if length == 0:
            return ""
        # A suffix range (bytes=-N) longer than the file makes Twisted answer 500, so ask by offset.
        response = await self._get_file(path, {"Range": f"bytes={max(0, length - size)}-"})
        if response is None:
            return None
        return response.content[-size:].decode("utf-8", errors="replace")

    async def open_log(self, project: str, spider: str, job_id: str) -> httpx.Response | None:
        """The job's log as a streamed response (close it when done), or None if there is none."""
        request = self._http.build_request(
            "GET", self.node.url + _job_path("logs", project, spider, job_id, "log"), timeout=DEFAULT_TIMEOUT
        )
        try:
            response = await self._http.send(
                request, auth=self._auth or httpx.USE_CLIENT_DEFAULT, stream=True
            )
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"{self.node.name}: {str(exc) or type(exc).__name__}") from exc
        if response.status_code == 200:
            return response
        await response.aclose()
        if response.status_code == 404:
            return None
        raise ScrapydError(f"scrapyd answered {response.status_code} for the log")

    async def _file_size(self, path: str) -> int | None:
        try:
            response = await self._http.head(
                self.node.url + path, auth=self._auth or httpx.USE_CLIENT_DEFAULT, timeout=DEFAULT_TIMEOUT
            )
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"{self.node.name}: {str(exc) or type(exc).__name__}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ScrapydError(f"scrapyd answered {response.status_code} for {path}")
        return int(response.headers.get("content-length", 0))

    async def _get_file(self, path: str, headers: Mapping[str, str]) -> httpx.Response | None:
        try:
            response = await self._http.get(
                self.node.url + path,
                headers=headers,
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                timeout=DEFAULT_TIMEOUT,
            )
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"{self.node.name}: {str(exc) or type(exc).__name__}") from exc
        if response.status_code in (404, 416):  # no such file yet, or nothing past the offset
            return None
        if response.status_code not in (200, 206):
            raise ScrapydError(f"scrapyd answered {response.status_code} for {path}")
        return response

    async def _call(
        self,
        method: str,
        endpoint: str,
        *,
        limits: httpx.Timeout = DEFAULT_TIMEOUT,
        **request: Any,
    ) -> dict[str, Any]:
        try:
            response = await self._http.request(
                method,
                self.node.url + endpoint,
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                timeout=limits,
                **request,
            )
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"{self.node.name}: {str(exc) or type(exc).__name__}") from exc
        if response.status_code == 401:
            raise ScrapydError(f"scrapyd node {self.node.name} rejected the gateway's credentials")
        try:
            answer = response.json()
        except ValueError as exc:
            raise NodeUnreachable(f"{self.node.name}: not a scrapyd answer ({response.status_code})") from exc
        if not isinstance(answer, dict):
            raise NodeUnreachable(f"{self.node.name}: not a scrapyd answer")
        if answer.get("status") != "ok":
            raise ScrapydError(str(answer.get("message") or f"scrapyd answered {response.status_code}"))
        return answer


def _job_path(kind: str, project: str, spider: str, job_id: str, extension: str) -> str:
    return "/".join(quote(part, safe="") for part in (kind, project, spider, f"{job_id}.{extension}"))


async def iterate_body(response: httpx.Response) -> AsyncIterator[bytes]:
    """Stream a response's body, and close it however the stream ends."""
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    finally:
        await response.aclose()
