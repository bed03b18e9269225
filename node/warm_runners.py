"""Runner processes started ahead of their jobs, so that a job does not wait for Python to import
Scrapy (``warm_runners`` and ``warm_imports`` in scrapyd.conf; the runner's side is
``node/warm_start.py``).

Each runner is still one OS process per job, scrapyd's child: its pid is the job's pid in
``listjobs.json``, a cancel signals it, its exit status ends the job, and it has its own log file and
item feed. Only its start moved earlier: it imports while idle, and the launcher hands it the job's
arguments and environment on stdin. A runner that dies idle costs no job: another is started in
its place (after a pause that grows while runners keep dying before any takes a job); one that
dies after it was given a job but before it read it (the runner says when it has) is replaced
once, by a runner that imports only Scrapy ahead, and the job starts there. A runner holds back
the signals of a cancel until it has read its job, so a cancel is never mistaken for such a death.
With no idle runner, a job gets a new runner at once, whose imports it then waits for, as a cold
start would. The runner records its process's exit status at the end of the job's log.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from scrapyd.launcher import ScrapyProcessProtocol
from twisted.internet import error, reactor
from twisted.logger import Logger

from node.outcome import append_outcome
from node.warm_start import READY_LINE, TOOK_JOB_LINE, WARM_COMMAND, encode_job

log = Logger()

MAX_RESPAWN_PAUSE = 60.0
_MAX_BUFFERED_STDOUT = 64 * 1024
# The arguments before the crawl command in a runner's argv: python -m <runner>.
_INTERPRETER_ARGUMENTS = 3


class WarmRunner(ScrapyProcessProtocol):  # type: ignore[misc]
    """A runner process that waits for its job; scrapyd's process protocol once it has one."""

    def __init__(self, pool: WarmRunners) -> None:
        super().__init__(None, None, None, {}, [])
        self.ready = False
        self.assigned = False
        self.took_job = False
        self.log_file: str | None = None
        self._pool = pool
        self._restarted = False
        self._stdout = b""

    def assign(
        self,
        project: str,
        spider: str,
        job: str,
        env: Mapping[str, str],
        args: Sequence[str],
        log_file: str | None,
    ) -> None:
        """Give this runner its job: from now on it is that job's process, and its exit status goes
        at the end of ``log_file``."""
        self.project, self.spider, self.job = project, spider, job
        self.env, self.args, self.log_file = dict(env), list(args), log_file
        self.start_time = datetime.datetime.now()
        self.assigned = True
        self._send_job()
        self.log("info", "Process started:")

    def release(self) -> None:
        """Let an idle runner end: it reads the end of its stdin and exits."""
        self.transport.closeStdin()

    def connectionMade(self) -> None:
        self.pid = self.transport.pid

    def outReceived(self, data: bytes) -> None:
        if self.took_job:
            super().outReceived(data)
            return
        # Until it has its job, a runner prints its two lines (and rarely more, kept for the log).
        self._stdout += data
        if not self.ready and READY_LINE in self._stdout:
            self.ready = True
        if TOOK_JOB_LINE in self._stdout:
            if not self.assigned:
                # Nobody gave it a job: whatever it runs is not the launcher's. It must not get one.
                log.error("warm runner {pid} says it took a job it was never given: killed", pid=self.pid)
                self.transport.signalProcess("KILL")
                return
            self.took_job = True
            self._pool.took_job(self)
        if self.took_job or len(self._stdout) > _MAX_BUFFERED_STDOUT:
            rest = self._stdout.replace(READY_LINE, b"").replace(TOOK_JOB_LINE, b"")
            # A marker may be cut between two reads: its start stays buffered.
            kept = b"" if self.took_job else rest[-len(TOOK_JOB_LINE) :]
            self._stdout = kept
            rest = rest[: len(rest) - len(kept)]
            if rest.strip():
                super().outReceived(rest)

    def processEnded(self, status: Any) -> None:
        if not self.assigned:
            self._pool.ended_idle(self, status)
            return
        outcome: dict[str, int | str] = dict(exit_facts(status.value))
        try:
            # A runner holds a cancel back until it has its job (node/runner.py), so one that died
            # before is one that was killed while it waited, say: the job has not begun, and starts
            # in a new runner, once (none while the node stops).
            if not self.took_job and not self._restarted and not self._pool.stopping:
                self._restarted = True
                log.warn(
                    "the runner of job {job} (pid {pid}) ended before it took the job: {status}; "
                    "another starts",
                    job=self.job,
                    pid=self.pid,
                    status=status.value,
                )
                try:
                    self._pool.restart(self)
                except Exception as exc:  # the job must end, whatever the spawn raised
                    log.error("cannot start another runner for job {job}: {exc}", job=self.job, exc=exc)
                    outcome = {"exit_code": -1, "spawn_error": f"{type(exc).__name__}: {exc}"}
                else:
                    self.ready, self._stdout = False, b""
                    self._send_job()
                    self.log("info", "Process restarted:")
                    return
        except Exception as exc:  # the slot must be freed, whatever went wrong
            log.error("job {job}: {exc}", job=self.job, exc=exc)
        if self.log_file is not None:
            try:
                append_outcome(self.log_file, **outcome)
            except OSError as exc:
                log.error("cannot record the exit of job {job}: {exc}", job=self.job, exc=exc)
        super().processEnded(status)

    def _send_job(self) -> None:
        self.transport.write(encode_job(self.args[_INTERPRETER_ARGUMENTS:], self.env))
        self.transport.closeStdin()


def exit_facts(reason: Exception) -> dict[str, int]:
    """How a process ended, as the outcome lines of ``node/outcome.py`` say it."""
    if isinstance(reason, error.ProcessDone):
        return {"exit_code": 0}
    if isinstance(reason, error.ProcessTerminated):
        if reason.signal is not None:
            return {"exit_code": -reason.signal, "signal": reason.signal}
        return {"exit_code": reason.exitCode if reason.exitCode is not None else -1}
    return {"exit_code": -1}


class WarmRunners:
    """Keeps ``size`` idle runners of ``runner`` (a module), each importing ``modules`` ahead."""

    def __init__(
        self, size: int, runner: str, modules: Sequence[str], environment: Callable[[], dict[str, str]]
    ) -> None:
        self.size = max(0, size)
        self._args = [sys.executable, "-m", runner, WARM_COMMAND, *modules]
        # A job's second runner imports none of the node's libraries ahead: if one of them is what
        # killed the first, the job still runs (and fails only if it needs that library).
        self._plain_args = [sys.executable, "-m", runner, WARM_COMMAND]
        self._environment = environment
        self._idle: list[WarmRunner] = []
        self._stopping = False
        self._failures = 0
        self._refill_call: Any = None

    @property
    def idle(self) -> list[WarmRunner]:
        return list(self._idle)

    @property
    def stopping(self) -> bool:
        return self._stopping

    def start(self) -> None:
        self._stopping = False
        self._fill()

    def stop(self) -> None:
        self._stopping = True
        if self._refill_call is not None and self._refill_call.active():
            self._refill_call.cancel()
        for runner in self._idle:
            runner.release()
        self._idle.clear()

    def take(self) -> WarmRunner:
        """The runner that has waited longest (a new one if none waits); another starts in its place.

        Raises OSError when a new process cannot be started."""
        runner = self._idle.pop(0) if self._idle else self._spawn()
        self._schedule_fill(0.0)
        return runner

    def took_job(self, runner: WarmRunner) -> None:
        self._failures = 0

    def ended_idle(self, runner: WarmRunner, status: Any) -> None:
        if runner in self._idle:
            self._idle.remove(runner)
        if self._stopping:
            return
        # A runner that dies idle (while importing, or killed while it waited): another in its
        # place, after a pause that grows while no runner gets as far as a job, so a broken library
        # or a killer of idle processes does not make the node spawn without end.
        self._failures += 1
        pause = min(MAX_RESPAWN_PAUSE, 2.0 ** (self._failures - 1))
        log.error(
            "a warm runner (pid {pid}) ended while it waited: {status}; another in {pause:.0f} s",
            pid=runner.pid,
            status=status.value,
            pause=pause,
        )
        self._schedule_fill(pause)

    def restart(self, runner: WarmRunner) -> None:
        """A new process for ``runner``, whose own died before it took its job."""
        self._spawn(runner, self._plain_args)

    def _spawn(self, runner: WarmRunner | None = None, args: list[str] | None = None) -> WarmRunner:
        runner = runner or WarmRunner(self)
        spawner: Any = reactor
        spawner.spawnProcess(runner, sys.executable, args=args or self._args, env=self._environment())
        return runner

    def _schedule_fill(self, delay: float) -> None:
        if self._stopping or (self._refill_call is not None and self._refill_call.active()):
            return
        spawner: Any = reactor
        self._refill_call = spawner.callLater(delay, self._fill)

    def _fill(self) -> None:
        while not self._stopping and len(self._idle) < self.size:
            try:
                self._idle.append(self._spawn())
            except OSError as exc:
                log.error("cannot start a warm runner: {exc}", exc=exc)
                self._schedule_fill(MAX_RESPAWN_PAUSE)
                return
