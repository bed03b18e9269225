"""The local scrapyd node a gateway starts when no node is configured: one command runs everything."""

from __future__ import annotations

import configparser
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import httpx

from gateway.nodes.scrapyd import Node

USERNAME = "platform"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
# Variables that would make every egg load the same project; and the gateway's own settings (proxy
# credentials, database URL), which scrapyd has no use for.
_UNINHERITED = ("SCRAPY_SETTINGS_MODULE", "SCRAPY_PROJECT", "SCRAPYD_EGG_VERSION")
_UNINHERITED_PREFIXES = ("GATEWAY_", "SCRAPYD_")


class NodeStartError(Exception):
    pass


def write_node_config(node_dir: Path, overrides: Mapping[str, str] | None = None) -> Path:
    """The node's scrapyd.conf: the repository's ``node/scrapyd.conf`` plus ``overrides``."""
    node_dir.mkdir(parents=True, exist_ok=True)
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(resources.files("node").joinpath("scrapyd.conf").read_text(encoding="utf-8"))
    for option, value in (overrides or {}).items():
        config.set("scrapyd", option, value)
    path = node_dir / "scrapyd.conf"
    with path.open("w", encoding="utf-8") as file:
        file.write(
            "# Written by the gateway from node/scrapyd.conf at every start; edit that file instead.\n"
        )
        config.write(file)
    # scrapyd and Scrapy read the closest scrapy.cfg above their working directory; this one
    # stops them from finding a project's (such as the repository's when the data dir is inside it).
    (node_dir / "scrapy.cfg").write_text(
        "# An empty scrapy.cfg: see gateway/nodes/embedded.py.\n", encoding="utf-8"
    )
    return path


def node_name(node_dir: Path) -> str:
    """The local node's name, unique to its directory and kept there: ``local-`` and 8 hex digits.

    Gateways sharing a store each drive their own local node, and tell their jobs apart by it.
    """
    path = node_dir / ".node-name"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    node_dir.mkdir(parents=True, exist_ok=True)
    name = f"local-{secrets.token_hex(4)}"
    path.write_text(name, encoding="utf-8")
    return name


def node_password(node_dir: Path) -> str:
    """The node's basic-auth password, made on first use and kept beside it (readable by the owner only)."""
    path = node_dir / ".password"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    node_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    path.touch(mode=0o600)
    path.write_text(password, encoding="utf-8")
    return password


class EmbeddedNode:
    """A scrapyd child process in its own process group, with its spider processes under it."""

    def __init__(self, node_dir: Path, port: int, overrides: Mapping[str, str] | None = None) -> None:
        self.node_dir = node_dir.resolve()
        self.port = port
        self._overrides = dict(overrides or {})
        self._process: subprocess.Popen[bytes] | None = None
        self.node = Node(
            name=node_name(self.node_dir),
            url=f"http://127.0.0.1:{port}/",
            username=USERNAME,
            password=node_password(self.node_dir),
        )

    @property
    def log_path(self) -> Path:
        return self.node_dir / "scrapyd.log"

    def start(self) -> None:
        write_node_config(self.node_dir, self._overrides)
        env = {
            name: value
            for name, value in os.environ.items()
            if name not in _UNINHERITED and not name.startswith(_UNINHERITED_PREFIXES)
        }
        env |= {
            "SCRAPYD_HTTP_PORT": str(self.port),
            "SCRAPYD_USERNAME": USERNAME,
            "SCRAPYD_PASSWORD": self.node.password or "",
        }
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "scrapyd", "--pidfile=", "--logfile=-"],
                cwd=self.node_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_ready()

    def stop(self) -> None:
        """Stop scrapyd and every spider it runs: a graceful signal first, then a forced one."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            process.wait()
        # Spider processes may outlive scrapyd by a moment while they shut down.
        deadline = time.monotonic() + STOP_TIMEOUT
        while self._group_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        self._signal_group(signal.SIGKILL)

    def kill(self) -> None:
        """Kill scrapyd and its spiders at once, with no chance to clean up."""
        if self._process is not None:
            self._signal_group(signal.SIGKILL)
            self._process.wait()

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        auth = (USERNAME, self.node.password or "")
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise NodeStartError(
                    f"scrapyd exited at start (code {self._process.returncode}):\n{self._log_tail()}"
                )
            try:
                if httpx.get(f"{self.node.url}daemonstatus.json", auth=auth, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise NodeStartError(f"scrapyd did not answer within {START_TIMEOUT:.0f} s:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(
                self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            )
        except OSError:
            return "(no scrapyd log)"

    def _signal_group(self, signum: int) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)

    def _group_alive(self) -> bool:
        if self._process is None:
            return False
        try:
            os.killpg(self._process.pid, 0)
        except ProcessLookupError:
            return False
        return True
