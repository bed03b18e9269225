"""scrapyd's launcher, made safe to share: clean environments, secrets kept out of argv and logs,
spawn failures that free their slot, the exit status of every job's process at the end of its log,
no job started twice, and runner processes started ahead of their jobs (``node/warm_runners.py``).

``launcher = node.launcher.Launcher`` in scrapyd.conf. Only the launcher sees how a process really
ended (``os._exit``, a crash, a kill, or never started at all), so it is the one that records it
(a job that never started here, its runner's exit in ``node/warm_runners.py``).

A job's log file is created here, before its process starts, and a job whose log exists already is
not started again: so the gateway can send a job once more whenever its node does not know it and
has no log of it (the node lost it before it ran), and a copy that arrives twice runs once.
"""

from __future__ import annotations

import datetime
import itertools
import os
import sys
from collections.abc import Mapping
from typing import Any

from scrapyd.interfaces import IEnvironment
from scrapyd.launcher import Launcher as ScrapydLauncher
from scrapyd.launcher import ScrapyProcessProtocol, get_crawl_args
from twisted.logger import Logger

from node.lifetime import LAUNCHER_PID_VARIABLE
from node.outcome import append_outcome
from node.secret_arguments import SECRET_ARGUMENTS
from node.warm_runners import WarmRunners

log = Logger()

# What a spider process must not inherit from scrapyd: the node's password and configuration, the
# gateway's settings (proxy pools with credentials, database URLs), and anything named like a secret.
_WITHHELD_PREFIXES = ("SCRAPYD_", "GATEWAY_")
_WITHHELD_WORDS = ("PASSWORD", "SECRET", "TOKEN", "CREDENTIAL", "API_KEY", "DATABASE_URL")
_KEPT = frozenset({"SCRAPYD_EGG_VERSION"})
# Proxies come from the operator's pools, never from the node's environment (Scrapy would use them).
_PROXY_VARIABLES = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"})
# Linux caps one argv string at 128 KiB and all of argv and the environment at about 2 MiB.
MAX_ARGUMENT_BYTES = 128 * 1024
MAX_ARGV_BYTES = 1024 * 1024


def spider_environment(env: Mapping[str, str]) -> dict[str, str]:
    def withheld(name: str) -> bool:
        upper = name.upper()
        if upper in _KEPT:
            return False
        if upper in _PROXY_VARIABLES:
            return True
        return upper.startswith(_WITHHELD_PREFIXES) or any(word in upper for word in _WITHHELD_WORDS)

    return {name: value for name, value in env.items() if not withheld(name)}


class SpawnRefused(Exception):
    pass


def check_argv(args: list[str]) -> None:
    """Refuse what the kernel would (or what would cut an argument short) before spawning."""
    for arg in args:
        if "\x00" in arg:
            raise SpawnRefused("an argument or setting holds a NUL byte")
        if len(arg.encode("utf-8", "surrogateescape")) > MAX_ARGUMENT_BYTES:
            raise SpawnRefused(f"an argument or setting is longer than {MAX_ARGUMENT_BYTES // 1024} KiB")
    if sum(len(arg.encode("utf-8", "surrogateescape")) + 1 for arg in args) > MAX_ARGV_BYTES:
        raise SpawnRefused(f"the arguments are longer than {MAX_ARGV_BYTES // 1024} KiB in all")


def _runner_environment() -> dict[str, str]:
    """What a runner process starts with, before it knows its job."""
    return spider_environment(os.environ) | {LAUNCHER_PID_VARIABLE: str(os.getpid())}


class Launcher(ScrapydLauncher):  # type: ignore[misc]
    def __init__(self, config: Any, app: Any) -> None:
        super().__init__(config, app)
        self.warm_runners = WarmRunners(
            config.getint("warm_runners", 0),
            self.runner,
            config.get("warm_imports", "").split(),
            _runner_environment,
        )

    def startService(self) -> None:
        super().startService()
        self.warm_runners.start()

    def stopService(self) -> Any:
        self.warm_runners.stop()
        return super().stopService()

    def _spawn_process(self, message: dict[str, Any], slot: int) -> None:
        # Secrets for this process alone go into its environment, never into argv or scrapyd's log.
        secrets = {
            variable: str(message.pop(name)) for name, variable in SECRET_ARGUMENTS.items() if name in message
        }
        environment = self.app.getComponent(IEnvironment)
        message.setdefault("settings", {})
        message["settings"].update(environment.get_settings(message))
        env = spider_environment(environment.get_environment(message, slot)) | secrets
        env[LAUNCHER_PID_VARIABLE] = str(os.getpid())
        args = [sys.executable, "-m", self.runner, "crawl", *get_crawl_args(message)]
        job = (message["_project"], message["_spider"], message["_job"])
        log_file = _log_file(args)
        try:
            if log_file is not None and not _first_start(log_file):
                log.warn("job {job} arrived again after it was started: this copy is dropped", job=job[2])
                self._get_message(slot)
                return
            check_argv(args)
            process = self.warm_runners.take()
        except (SpawnRefused, OSError, TypeError, ValueError) as exc:
            self._spawn_failed(ScrapyProcessProtocol(*job, env, args), slot, log_file, exc)
            return
        process.assign(*job, env, args, log_file)
        process.deferred.addBoth(self._process_finished, slot)
        self.processes[slot] = process

    def _spawn_failed(self, process: Any, slot: int, log_file: str | None, exc: BaseException) -> None:
        """The job ends at once as finished on the node, its log saying why; the slot takes the next job."""
        reason = str(exc) if isinstance(exc, SpawnRefused) else f"{type(exc).__name__}: {exc}"
        log.error("job {job} could not be started: {reason}", job=process.job, reason=reason)
        if log_file is not None:
            try:
                append_outcome(log_file, exit_code=-1, spawn_error=reason)
            except OSError as write_error:
                log.error("cannot record job {job}'s failure: {exc}", job=process.job, exc=write_error)
        process.end_time = datetime.datetime.now()
        self.finished.add(process)
        self._get_message(slot)


def _first_start(log_file: str) -> bool:
    """Create the job's log; False if it exists (the job was started before)."""
    try:
        with open(log_file, "x", encoding="utf-8"):
            return True
    except FileExistsError:
        return False


def _log_file(args: list[str]) -> str | None:
    for flag, value in itertools.pairwise(args):
        if flag == "-s" and value.startswith("LOG_FILE="):
            return value.partition("=")[2]
    return None
