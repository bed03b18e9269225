"""A warm runner's side of a job: the imports it does while it waits, and the job it is given.

scrapyd starts a runner process per job, and a new Python process spends about 0.5 s importing
Scrapy, Twisted and what a crawl loads before it fetches anything. So the launcher keeps a few
runners started ahead (``node/warm_runners.py``): each has imported Scrapy's own components and
the libraries the node names (``warm_imports`` in scrapyd.conf), then waits on its stdin for one
job, given as one JSON line of the crawl's arguments and the job's environment. The project is
never imported ahead: its egg is activated only once the job is known, so a version deployed a
moment ago is the one that runs. No reactor is installed ahead either: the job's settings choose it.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import BinaryIO

# The command that makes node.runner wait for its job, and the line it prints once it is warm.
WARM_COMMAND = "warm"
READY_LINE = b"warm runner ready\n"
# Printed once the job is read: a runner that dies before has not begun it, and it starts again.
TOOK_JOB_LINE = b"warm runner took its job\n"
# Settings of Scrapy's defaults that name classes a crawl builds, singly or as a component dict.
_SKIPPED_SETTINGS = frozenset({"TWISTED_REACTOR", "ASYNCIO_EVENT_LOOP"})


@dataclass(frozen=True)
class WarmJob:
    arguments: list[str]
    environment: dict[str, str]


def encode_job(arguments: Iterable[str], environment: Mapping[str, str]) -> bytes:
    line = json.dumps({"arguments": list(arguments), "environment": dict(environment)})
    return line.encode("utf-8", "surrogateescape") + b"\n"


def read_job(stream: BinaryIO) -> WarmJob | None:
    """The job the launcher sends, or None when it closed the pipe without one (a stop)."""
    line = stream.readline()
    if not line.strip():
        return None
    message = json.loads(line.decode("utf-8", "surrogateescape"))
    arguments, environment = message["arguments"], message["environment"]
    if not (isinstance(arguments, list) and all(isinstance(arg, str) for arg in arguments)):
        raise ValueError("a warm job's arguments must be a list of strings")
    if not (isinstance(environment, dict) and all(isinstance(v, str) for v in environment.values())):
        raise ValueError("a warm job's environment must map names to strings")
    return WarmJob(arguments=arguments, environment=environment)


def preload(modules: Iterable[str]) -> list[str]:
    """Import what a crawl would import first: Scrapy's commands and default components, and
    ``modules``. Returns what could not be imported (a job that needs it fails as it would cold)."""
    from scrapy.settings import default_settings
    from scrapy.utils.misc import load_object, walk_modules_iter

    missing = []
    for _ in walk_modules_iter("scrapy.commands"):
        pass
    for name in dir(default_settings):
        if not name.isupper() or name in _SKIPPED_SETTINGS:
            continue
        value = getattr(default_settings, name)
        paths = value if isinstance(value, dict) else [value]
        for path in paths:
            if isinstance(path, str) and path.startswith("scrapy.") and "." in path[7:]:
                try:
                    load_object(path)
                except Exception:  # a default Scrapy cannot load is for Scrapy to report
                    missing.append(path)
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:  # a library missing here fails the jobs that use it
            missing.append(module)
    return missing


def reactor_installed() -> bool:
    return "twisted.internet.reactor" in sys.modules
