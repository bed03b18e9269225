"""A spider process lives no longer than the scrapyd that started it.

The launcher puts its pid in each spider's environment. The runner asks the kernel for a signal
when that process dies (Linux's parent-death signal); on it, the runner records in the job's log
that its launcher is gone and stops Scrapy gracefully, as a cancel would. So when scrapyd dies, its
spiders do not work on as orphans for a node that has forgotten them: they close, their logs say
so, and the gateway waits for that close before it settles their jobs (``gateway/jobs/sync.py``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from types import FrameType

from node.outcome import append_outcome

LAUNCHER_PID_VARIABLE = "NODE_LAUNCHER_PID"
_PR_SET_PDEATHSIG = 1
# Scrapy's SIGTERM handler once its graceful stop has begun (the next signal forces the stop).
_SCRAPY_FORCED_STOP = "_signal_kill"


class JobLog:
    """Where the process's job logs, once it has a job (a warm runner waits for one)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path


def end_with_launcher(log_file: JobLog) -> None:
    """In a spider process: stop gracefully when the launcher dies, or at once if it died already
    (between the fork and now)."""
    launcher = os.environ.get(LAUNCHER_PID_VARIABLE)
    if launcher is None or not sys.platform.startswith("linux"):
        return
    # A real-time signal of its own, which neither Scrapy nor Twisted handles.
    orphaned_signal = signal.SIGRTMIN

    def orphaned(signum: int = 0, frame: FrameType | None = None) -> None:
        signal.signal(orphaned_signal, signal.SIG_IGN)
        on_term = signal.getsignal(signal.SIGTERM)
        if not callable(on_term):
            # Before Scrapy's handlers: nothing runs yet that a graceful stop would keep.
            raise SystemExit("the scrapyd that started this job is gone")
        if getattr(on_term, "__name__", "") == _SCRAPY_FORCED_STOP:
            return  # Scrapy is stopping already (a cancel, a node stop): a second TERM would force it
        if log_file.path:
            append_outcome(log_file.path, launcher_gone=True)
        os.kill(os.getpid(), signal.SIGTERM)  # Scrapy's graceful stop

    signal.signal(orphaned_signal, orphaned)
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, orphaned_signal)
    if os.getppid() != int(launcher):
        orphaned()
