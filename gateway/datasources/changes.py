"""What a crawl of a website changed since the previous one: new, updated, unchanged, removed pages.

One place for the rules, used both for a crawl's live counts and for the final word on it:
- new: a page that answered and was not in the previous crawl;
- updated: it was, and its main content's hash differs;
- unchanged: same hash, or the server said 304 Not Modified;
- removed: in the previous crawl, and now 404/410 or not reached any more (no longer linked within
  the crawl's limits). Only a finished crawl knows what it did not reach.
A page that failed otherwise (a timeout, a 500) is none of these: it keeps what was known of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

GONE_STATUSES = (404, 410)


class Change(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REMOVED = "removed"
    # Did not answer this time; what was known of it stays.
    FAILED = "failed"


@dataclass(frozen=True)
class CrawledPage:
    """One page of the current crawl, as far as change detection cares."""

    url: str
    status_code: int | None
    content_hash: str | None
    failed: bool

    @property
    def answered(self) -> bool:
        """A page to keep: it answered with content, or with 304 Not Modified."""
        return (
            not self.failed
            and self.status_code is not None
            and (200 <= self.status_code < 300 or self.status_code == 304)
        )

    @property
    def gone(self) -> bool:
        return self.status_code in GONE_STATUSES


@dataclass(frozen=True)
class ChangeCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0


def classify(page: CrawledPage, previous_hash: str | None, known: bool) -> Change | None:
    """The change of one page of the crawl; None for a page that failed and was never known."""
    if page.answered:
        if not known:
            return Change.NEW
        if page.status_code == 304 or page.content_hash == previous_hash:
            return Change.UNCHANGED
        return Change.UPDATED
    if known:
        return Change.REMOVED if page.gone else Change.FAILED
    return None


def changes(
    pages: Iterable[CrawledPage], previous: Mapping[str, str | None], *, finished: bool
) -> tuple[dict[str, Change], ChangeCounts]:
    """Each page's change against ``previous`` (url → content hash of the pages the last crawl kept),
    and the counts. With ``finished``, known pages the crawl never reached count as removed."""
    decided: dict[str, Change] = {}
    for page in pages:
        change = classify(page, previous.get(page.url), page.url in previous)
        if change is not None:
            decided[page.url] = change
    if finished:
        for url in previous:
            decided.setdefault(url, Change.REMOVED)
    tally = dict.fromkeys(Change, 0)
    for change in decided.values():
        tally[change] += 1
    return decided, ChangeCounts(
        new=tally[Change.NEW],
        updated=tally[Change.UPDATED],
        unchanged=tally[Change.UNCHANGED],
        removed=tally[Change.REMOVED],
    )
