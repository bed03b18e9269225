"""Spiders that fail in the ways a job must report as an error, and one that ignores SIGTERM."""

import os
import time

import scrapy


class BrokenInitSpider(scrapy.Spider):
    name = "broken_init"

    def __init__(self, **kwargs):
        raise ValueError("this spider cannot be built")


class BrokenStartSpider(scrapy.Spider):
    name = "broken_start"

    async def start(self):
        raise RuntimeError("this spider cannot start")
        yield


class HardExitSpider(scrapy.Spider):
    name = "hard_exit"

    async def start(self):
        yield {"before": "exit"}
        os._exit(3)


class StubbornSpider(scrapy.Spider):
    """Blocks the reactor, so a graceful shutdown never happens: only a kill stops it."""

    name = "stubborn"

    async def start(self):
        yield {"started": True}
        time.sleep(600)  # noqa: ASYNC251 - blocking the reactor is the point


class BloatedSpider(scrapy.Spider):
    """One item too large for any feed line the gateway reads, between two ordinary ones."""

    name = "bloated"

    def __init__(self, mib="70", **kwargs):
        super().__init__(**kwargs)
        self.mib = int(mib)

    async def start(self):
        yield {"n": 1}
        yield {"n": 2, "blob": "x" * (self.mib * 1024 * 1024)}
        yield {"n": 3}
