"""Yields ``count`` items, one every ``interval`` seconds: a job that runs as long as asked (its
items spend ``item_delay`` seconds in the project's pipeline)."""

import asyncio

import scrapy


class TickerSpider(scrapy.Spider):
    name = "ticker"

    def __init__(self, count="10", interval="0.5", item_delay="0", **kwargs):
        super().__init__(**kwargs)
        self.count = int(count)
        self.interval = float(interval)
        self.item_delay = float(item_delay)

    async def start(self):
        for n in range(self.count):
            yield {"n": n}
            await asyncio.sleep(self.interval)
