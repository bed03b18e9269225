"""Quotes from a quotes-to-scrape style site, optionally filtered by tag."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.http import Response


class QuotesSpider(scrapy.Spider):
    """Yield every quote (text, author, tags) of a paginated quotes site.

    Arguments: ``start_url`` (the first listing page), ``tag`` (keep only quotes with this tag)
    and ``max_pages`` (stop following "Next" after this many pages).
    """

    name = "quotes"

    def __init__(
        self,
        start_url: str = "http://127.0.0.1:8001/",
        tag: str | None = None,
        max_pages: int | str = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.start_url = start_url
        self.tag = tag or None
        try:
            self.max_pages = int(max_pages)
        except ValueError:
            raise ValueError(f"max_pages must be a whole number, not {max_pages!r}") from None
        if self.max_pages < 1:
            raise ValueError("max_pages must be at least 1")

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(self.start_url, cb_kwargs={"page": 1})

    def parse(self, response: Response, page: int) -> Iterator[dict[str, Any] | scrapy.Request]:
        for quote in response.css("div.quote"):
            tags = quote.css("a.tag::text").getall()
            if self.tag and self.tag not in tags:
                continue
            yield {
                "text": quote.css("span.text::text").get("").strip("\u201c\u201d"),
                "author": quote.css("small.author::text").get(),
                "tags": tags,
                "page": page,
                "url": response.url,
            }
        next_page = response.css("li.next a::attr(href)").get()
        if next_page and page < self.max_pages:
            yield response.follow(next_page, callback=self.parse, cb_kwargs={"page": page + 1})
