"""The process scrapyd starts for each job (``runner = node.runner`` in scrapyd.conf).

It is scrapyd's own runner, plus what the gateway relies on: items reach the feed file as soon as
they are exported, the log records the spider's close reason (the launcher adds the exit status),
every crawl runs under the egress guard of ``node.egress``, whatever project its spider is from,
and the process ends with the scrapyd that started it (a graceful stop, as if cancelled), so no
orphan works on for a node that has forgotten it.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import traceback
from typing import Any

from pydispatch import dispatcher
from scrapy import signals
from scrapyd.runner import project_environment

from node import egress
from node.lifetime import end_with_launcher
from node.outcome import append_outcome

LIVE_FEED_STORAGE = "node.feeds.LiveFileFeedStorage"


def main() -> None:
    argv = sys.argv
    crawling = len(argv) > 1 and argv[1] == "crawl"
    log_file = _setting_from_argv(argv, "LOG_FILE") if crawling else None
    end_with_launcher(log_file)
    try:
        with project_environment(os.environ["SCRAPY_PROJECT"]):
            if crawling:
                _prepare_crawl(argv, log_file)
            from scrapy.cmdline import execute

            execute(argv)
    except Exception:
        # Failures before Scrapy configures logging (a broken egg, say) belong in the job's log too.
        if log_file:
            with open(log_file, "a", encoding="utf-8") as log:
                log.write(traceback.format_exc())
        raise


def _prepare_crawl(argv: list[str], log_file: str | None) -> None:
    from scrapy.utils.project import get_project_settings

    project_settings = get_project_settings()
    # Keep the project's own storages; only local files (scrapyd's item feed) become live.
    storages = dict(project_settings.getdict("FEED_STORAGES"))
    storages.setdefault("file", LIVE_FEED_STORAGE)
    argv += ["-s", f"FEED_STORAGES={json.dumps(storages)}"]
    # Last, so that no setting of the job's overrides them: the egress guard of every crawl.
    argv += egress.crawl_arguments(dict(project_settings.getdict("ADDONS")))

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
