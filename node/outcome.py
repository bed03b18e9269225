"""How a job's process records its outcome in its log, and how the gateway reads it back.

The runner appends one line per fact (the spider's close reason, the process exit status) to the
job's log file, which scrapyd serves over HTTP; the gateway reads the log's tail when the job ends.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

MARKER = "[spider-platform] INFO: Job outcome: "
_LINE = re.compile(re.escape(MARKER) + r"(\{.*\})\s*$", re.MULTILINE)

# A batch spider's close reasons: it stopped for want of its gateway, or the gateway told it its
# job is over (its node lost it, or it was cancelled).
GATEWAY_UNREACHABLE = "gateway_unreachable"
JOB_OVER = "job_over"
# Close reasons that mean the spider did not do its work, although the process exited cleanly.
FAILED_CLOSE_REASONS = frozenset({"start_error", "memusage_exceeded", GATEWAY_UNREACHABLE, JOB_OVER})


@dataclass(frozen=True)
class JobOutcome:
    """What the log says about how a job's process ended."""

    close_reason: str | None = None
    exit_code: int | None = None
    # Why the node could not start the process at all (then ``exit_code`` is -1).
    spawn_error: str | None = None
    # The scrapyd that started the process died, and the process is closing (node/lifetime.py).
    launcher_gone: bool = False

    @property
    def process_ended(self) -> bool:
        return self.exit_code is not None


def outcome_line(**facts: Any) -> str:
    """One log line that records ``facts`` (close_reason, exit_code)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp} {MARKER}{json.dumps(facts, sort_keys=True)}\n"


def append_outcome(log_file: str, **facts: Any) -> None:
    with open(log_file, "a", encoding="utf-8") as log:
        log.write(outcome_line(**facts))


def parse_outcome(log_tail: str) -> JobOutcome:
    """Read the outcome lines of a log's tail; the last value of each fact wins."""
    facts: dict[str, Any] = {}
    for match in _LINE.finditer(log_tail):
        try:
            found = json.loads(match.group(1))
        except ValueError:
            continue
        if isinstance(found, dict):
            facts.update(found)
    close_reason = facts.get("close_reason")
    exit_code = facts.get("exit_code")
    spawn_error = facts.get("spawn_error")
    return JobOutcome(
        close_reason=close_reason if isinstance(close_reason, str) else None,
        exit_code=exit_code if isinstance(exit_code, int) else None,
        spawn_error=spawn_error if isinstance(spawn_error, str) else None,
        launcher_gone=facts.get("launcher_gone") is True,
    )
