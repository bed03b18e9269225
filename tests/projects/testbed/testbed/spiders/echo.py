"""Yields one item per spider argument, as the spider received it."""

import scrapy


class EchoSpider(scrapy.Spider):
    name = "echo"

    def __init__(self, **kwargs):
        self.received = dict(kwargs)
        super().__init__(**kwargs)

    async def start(self):
        for name, value in sorted(self.received.items()):
            yield {"name": name, "value": value, "type": type(value).__name__}
