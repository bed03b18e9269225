"""A graceful stop that ends while the spider's start items are still in its item pipelines.

Scrapy 2.19's scraper counts an item that ``Spider.start()`` yields as in process until its
pipelines are done with it, but only a response's end checks whether a closing spider has become
idle. A stop (a cancel, a node stop, the launcher's death) that comes while such an item is in a
pipeline therefore waits forever: the log says "Closing spider (shutdown)" and the process idles
in its reactor until it is killed, losing its close reason. The runner wraps the scraper's
processing of start items so that the last of them to finish lets the close go on, for the spiders
of every project: deployed eggs need no change.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

_START_ITEM_METHOD = "_start_itemproc_nowait_async"
_WRAPPED = "_ends_a_pending_close"


def close_after_start_items() -> None:
    """Patch Scrapy's scraper once per process; a Scrapy without the method is left alone."""
    from scrapy.core.scraper import Scraper

    process_start_item: Callable[..., Coroutine[Any, Any, None]] | None = getattr(
        Scraper, _START_ITEM_METHOD, None
    )
    if process_start_item is None or getattr(process_start_item, _WRAPPED, False):
        return

    @functools.wraps(process_start_item)
    async def then_close_if_idle(scraper: Scraper, item: Any) -> None:
        try:
            await process_start_item(scraper, item)
        finally:
            _close_if_idle(scraper)

    setattr(then_close_if_idle, _WRAPPED, True)
    setattr(Scraper, _START_ITEM_METHOD, then_close_if_idle)


def _close_if_idle(scraper: Any) -> None:
    slot = scraper.slot
    if slot is None:
        return
    closing = slot.closing
    if closing is not None and not closing.called and slot.is_idle():
        closing.callback(scraper.crawler.spider)
