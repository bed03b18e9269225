"""Item pipelines of the testbed project."""

import asyncio


class DelayedItems:
    """Holds each item for the spider's ``item_delay`` seconds (none unless it has one)."""

    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_item(self, item):
        await asyncio.sleep(float(getattr(self.crawler.spider, "item_delay", 0)))
        return item
