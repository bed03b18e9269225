"""The process scrapyd starts for each job (``runner = node.runner`` in scrapyd.conf), started
warm (``node.runner warm``: it imports ahead and then waits for its job, ``node/warm_start.py``).

It is scrapyd's own runner, plus what the gateway relies on: items reach the feed file as soon as
they are exported, the log records the spider's close reason (the launcher adds the exit status),
every crawl runs under the egress guard of ``node.egress``, whatever project its spider is from,
a stop that comes while start items are in the pipelines still closes (``node.graceful_close``),
and the process ends with the scrapyd that started it (a graceful stop, as if cancelled), so no
orphan works on for a node that has forgotten it.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import signal
import sys
import traceback
from typing import Any, NoReturn

from pydispatch import dispatcher
from scrapy import signals
from scrapyd.runner import project_environment

from node import egress
from node.graceful_close import close_after_start_items
from node.lifetime import JobLog, end_with_launcher
from node.outcome import append_outcome
from node.warm_start import (
    READY_LINE,
    TOOK_JOB_LINE,
    WARM_COMMAND,
    WarmJob,
    preload,
    reactor_installed,
    read_job,
)

LIVE_FEED_STORAGE = "node.feeds.LiveFileFeedStorage"
_CANCEL_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def main() -> None:
    argv = sys.argv
    job_log = JobLog()
    end_with_launcher(job_log)
    if len(argv) > 1 and argv[1] == WARM_COMMAND:
        job = _wait_warm(argv[2:])
        if job is None:
            return
        os.environ.clear()
        os.environ.update(job.environment)
        argv = sys.argv = [argv[0], *job.arguments]
    crawling = len(argv) > 1 and argv[1] == "crawl"
    job_log.path = _setting_from_argv(argv, "LOG_FILE") if crawling else None
    try:
        with project_environment(os.environ["SCRAPY_PROJECT"]):
            if crawling:
                _prepare_crawl(argv, job_log.path)
            from scrapy.cmdline import execute

            execute(argv)
    except SystemExit as ended:
        if not crawling:
            raise
        _exit_now(ended.code)
    except Exception:
        # Failures before Scrapy configures logging (a broken egg, say) belong in the job's log too.
        if job_log.path:
            with open(job_log.path, "a", encoding="utf-8") as log:
                log.write(traceback.format_exc())
        raise


def _exit_now(code: object) -> NoReturn:
    """End a crawl's process without Python's teardown of every module it imported (about 0.3 s
    that the job's end would wait for): Scrapy has closed the feed and the spider by now, and the
    exit functions (the log's flush among them) still run."""
    atexit._run_exitfuncs()
    status = 0
    if isinstance(code, int):
        status = code
    elif code is not None:
        print(code, file=sys.stderr)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _wait_warm(modules: list[str]) -> WarmJob | None:
    """Import ahead, say so on stdout, and wait for the launcher's job on stdin.

    A cancel (SIGTERM, SIGINT) is held back until the job is read and the launcher told, then
    delivered: it stops the job, and the launcher never takes it for a runner that died idle."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _CANCEL_SIGNALS)
    for module in preload(modules):
        print(f"warm runner: cannot import {module} ahead", file=sys.stderr, flush=True)
    if reactor_installed():
        # The job's settings choose the reactor: this runner could not honour them.
        raise SystemExit("warm runner: an import ahead installed a Twisted reactor")
    sys.stdout.buffer.write(READY_LINE)
    sys.stdout.flush()
    job = read_job(sys.stdin.buffer)
    if job is not None:
        sys.stdout.buffer.write(TOOK_JOB_LINE)
        sys.stdout.flush()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _CANCEL_SIGNALS)
    return job


def _prepare_crawl(argv: list[str], log_file: str | None) -> None:
    from scrapy.utils.project import get_project_settings

    project_settings = get_project_settings()
    # Keep the project's own storages; only local files (scrapyd's item feed) become live.
    storages = dict(project_settings.getdict("FEED_STORAGES"))
    storages.setdefault("file", LIVE_FEED_STORAGE)
    argv += ["-s", f"FEED_STORAGES={json.dumps(storages)}"]
    # Last, so that no setting of the job's overrides them: the egress guard of every crawl.
    argv += egress.crawl_arguments(dict(project_settings.getdict("ADDONS")))
    close_after_start_items()

    if log_file:

        def record_close_reason(reason: str, **_: Any) -> None:
            append_outcome(log_file, close_reason=reason)

        # A receiver for any sender hears every crawler of this process without touching its settings.
        dispatcher.connect(record_close_reason, signal=signals.spider_closed, weak=False)


def _setting_from_argv(argv: list[str], name: str) -> str | None:
    for flag, value in itertools.pairwise(argv):
        if flag == "-s" and value.startswith(f"{name}="):
            return value.partition("=")[2]
    return None


if __name__ == "__main__":
    main()
