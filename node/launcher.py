"""scrapyd's launcher, plus the exit status of every job's process written at the end of its log.

Only the launcher sees how a process really ended (``os._exit``, a crash, a kill), so it is the one
that records it (``launcher = node.launcher.Launcher`` in scrapyd.conf).
"""

from __future__ import annotations

import itertools
from typing import Any

from scrapyd.launcher import Launcher as ScrapydLauncher
from twisted.internet import error
from twisted.logger import Logger

from node.outcome import append_outcome

log = Logger()


class Launcher(ScrapydLauncher):  # type: ignore[misc]
    def _spawn_process(self, message: dict[str, Any], slot: int) -> None:
        super()._spawn_process(message, slot)
        process = self.processes[slot]
        log_file = _log_file(process.args)
        if log_file is None:
            return
        ended = process.processEnded

        # Wrapped in the same reactor turn as the spawn, so no end can slip past.
        def record_then_end(status: Any) -> None:
            try:
                append_outcome(log_file, **_exit_facts(status.value))
            except OSError as exc:
                log.error("cannot record the exit of job {job}: {exc}", job=process.job, exc=exc)
            ended(status)

        process.processEnded = record_then_end


def _log_file(args: list[str]) -> str | None:
    for flag, value in itertools.pairwise(args):
        if flag == "-s" and value.startswith("LOG_FILE="):
            return value.partition("=")[2]
    return None


def _exit_facts(reason: Exception) -> dict[str, int]:
    if isinstance(reason, error.ProcessDone):
        return {"exit_code": 0}
    if isinstance(reason, error.ProcessTerminated):
        if reason.signal is not None:
            return {"exit_code": -reason.signal, "signal": reason.signal}
        return {"exit_code": reason.exitCode if reason.exitCode is not None else -1}
    return {"exit_code": -1}
