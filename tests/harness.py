"""Real processes for the tests: scrapyd nodes and gateways on free loopback ports."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from gateway.accounts.keys import ApiKeys
from gateway.nodes.embedded import EmbeddedNode
from gateway.store import Store

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], T], timeout: float = 30.0, interval: float = 0.1, what: str = "") -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what or check}: last saw {last!r}"
            )
        time.sleep(interval)
        last = check()
    return last


class ScrapydNode:
    """A real scrapyd, started by the same launcher the gateway uses for its local node."""

    def __init__(
        self, directory: Path, *, max_proc: int | None = None, config: Mapping[str, str] | None = None
    ) -> None:
        overrides = dict(config or {}) | ({"max_proc": str(max_proc)} if max_proc else {})
        self._launcher = EmbeddedNode(directory, free_port(), overrides)

    @property
    def url(self) -> str:
        """The URL the gateway is given, credentials included."""
        node = self._launcher.node
        return f"http://{node.username}:{node.password}@127.0.0.1:{self._launcher.port}/"

    @property
    def directory(self) -> Path:
        return self._launcher.node_dir

    def start(self) -> ScrapydNode:
        self._launcher.start()
        return self

    def stop(self) -> None:
        self._launcher.stop()

    def kill(self) -> None:
        """Kill scrapyd and its spider processes at once, as a crash of the machine would."""
        self._launcher.kill()

    @property
    def scrapyd_process(self) -> subprocess.Popen[bytes]:
        """scrapyd's own process (its runners are its children)."""
        process = self._launcher._process
        assert process is not None
        return process

    def kill_scrapyd_alone(self) -> None:
        """SIGKILL scrapyd's own process, not its runners': they outlive it, as after an OOM kill."""
        self.scrapyd_process.kill()
        self.scrapyd_process.wait()

    def runner_pids(self) -> set[int]:
        """Every runner process of this node's scrapyd, idle or running a job: the ``node.runner``
        processes started in its directory."""
        pids = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\x00")
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if b"node.runner" in argv and cwd == str(self.directory):
                pids.add(int(entry.name))
        return pids


class Gateway:
    """``python -m gateway serve`` in a child process, as an operator runs it."""

    def __init__(
        self,
        data_dir: Path,
        node: ScrapydNode | None = None,
        env: Mapping[str, str] | None = None,
        scrapyd_port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.node = node
        self.port = free_port()
        self.scrapyd_port = scrapyd_port
        self.env = {
            "GATEWAY_SYNC_INTERVAL": "0.2",
            "GATEWAY_CANCEL_GRACE_SECONDS": "3",
            "GATEWAY_NODE_LOST_AFTER_SECONDS": "5",
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "100000",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.output = data_dir / "gateway.out"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "gateway", "serve", "--data-dir", str(self.data_dir)]
        command += ["--port", str(self.port)]
        if self.node is not None:
            command += ["--scrapyd", self.node.url]
        if self.scrapyd_port is not None:
            command += ["--scrapyd-port", str(self.scrapyd_port)]
        return command

    def start(self, timeout: float = 90.0) -> Gateway:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        with self.output.open("ab") as output:
            self.process = subprocess.Popen(
                self.command(),
                cwd=REPO,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_until(self._ready, timeout=timeout, interval=0.2, what=f"gateway on port {self.port}")
        return self

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def printed(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def admin_key(self) -> str:
        match = re.search(r"^\s+(spk_\S+)\s*$", self.printed(), re.MULTILINE)
        assert match, f"no admin key in the gateway's output:\n{self.printed()}"
        return match.group(1)

    def create_key(self, name: str, **options: Any) -> str:
        """A new key (a new tenant unless ``tenant_id`` is given), created in the gateway's own store."""

        async def create() -> str:
            store = Store(f"sqlite+aiosqlite:///{(self.data_dir / 'gateway.sqlite3').resolve()}")
            try:
                _, plaintext = await ApiKeys(store).create(name, **options)
            finally:
                await store.close()
            return plaintext

        return asyncio.run(create())

    def client(self, key: str | None = None, header: str = "bearer") -> httpx.Client:
        headers = {}
        if key is not None:
            headers = {"bearer": {"Authorization": f"Bearer {key}"}, "x-api-key": {"X-Api-Key": key}}.get(
                header, {"x-api-token": key}
            )
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"gateway exited with {self.process.returncode}:\n{self.printed()}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False


def gateway_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m gateway <args> --data-dir <data_dir>``, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args, "--data-dir", str(data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def job_of(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def wait_for_status(
    client: httpx.Client, job_id: str, *statuses: str, timeout: float = 60.0
) -> dict[str, Any]:
    return wait_until(
        lambda: (job := job_of(client, job_id))["status"] in statuses and job,
        timeout=timeout,
        what=f"job {job_id} to be {' or '.join(statuses)}",
    )


def start_job(client: httpx.Client, spider: str, project: str | None = None, **arguments: Any) -> str:
    body: dict[str, Any] = {"spider_name": spider, "arguments": arguments}
    if project:
        body["project"] = project
    response = client.post("/api/v1/jobs", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "pending"
    job_id: str = response.json()["jobId"]
    return job_id


def parent_of(pid: int) -> int | None:
    """The parent process of ``pid``, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; it only waits for its parent to read its status.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
