"""What a site crawl covers: which URLs are the same page, and which pages belong to the crawl."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

from spiders_project.addresses import default_port

MAX_PAGE_LIMIT = 5000
# The most URLs a map of a site lists.
MAX_LISTING_LIMIT = 100_000
SITEMAP_MODES = ("include", "skip", "only")
# Query parameters that say where a visitor came from, not which page they see.
_TRACKING_PARAMETERS = frozenset(
    {"gclid", "dclid", "fbclid", "msclkid", "yclid", "mc_cid", "mc_eid", "_ga", "_gl", "igshid", "ref_src"}
)


@dataclass(frozen=True)
class CrawlScope:
    """A crawl's start, limits and rules, as the gateway hands them to the ``site`` spider."""

    url: str
    page_limit: int = 100
    include_paths: tuple[str, ...] = ()
    exclude_paths: tuple[str, ...] = ()
    # Links deep from the start page (and the sitemap's pages, which count as the start's peers).
    max_depth: int | None = None
    allow_subdomains: bool = False
    allow_external_links: bool = False
    # Only the start URL's path and what lies under it, unless the whole site is asked for.
    entire_site: bool = False
    sitemap: str = "include"
    # Include and exclude patterns match the whole URL rather than its path.
    regex_on_full_url: bool = False
    ignore_query: bool = False
    ignore_tracking_parameters: bool = True
    obey_robots: bool = True
    # Whether pages get a content hash and the validators of their response (recrawls compare them).
    track_changes: bool = False
    # Seconds between two requests of the crawl, and how many it has in flight at most (None: the
    # spider's own defaults).
    delay_seconds: float | None = None
    max_concurrency: int | None = None
    # Whether pages robots.txt forbids become records (ROBOTS_BLOCKED), so the crawl can list them.
    list_robots_blocked: bool = False
    # A map of the site rather than its pages: every URL found is a record, and at most
    # ``fetch_limit`` pages are fetched (their links and head only, never converted) to find more.
    listing: bool = False
    fetch_limit: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CrawlScope:
        known = {option.name for option in fields(cls)}
        values = {name: value for name, value in data.items() if name in known and value is not None}
        for name in ("include_paths", "exclude_paths"):
            values[name] = tuple(values.get(name) or ())
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        data = {option.name: getattr(self, option.name) for option in fields(self)}
        data["include_paths"] = list(self.include_paths)
        data["exclude_paths"] = list(self.exclude_paths)
        return data


def canonical_url(url: str, scope: CrawlScope) -> str:
    """The one name of a page: no fragment, sorted query, default port and tracking parameters gone."""
    parts = urlsplit(canonicalize_url(url, keep_fragments=False))
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None and parts.port != default_port(parts.scheme):
        netloc = f"{netloc}:{parts.port}"
    query = parts.query
    if scope.ignore_query:
        query = ""
    elif scope.ignore_tracking_parameters and query:
        kept = [
            (name, value)
            for name, value in parse_qsl(query, keep_blank_values=True)
            if not (name.lower().startswith("utm_") or name.lower() in _TRACKING_PARAMETERS)
        ]
        query = urlencode(kept)
    return urlunsplit((parts.scheme, netloc, parts.path or "/", query, ""))


class ScopeRules:
    """Decides which discovered URLs a crawl follows."""

    def __init__(self, scope: CrawlScope) -> None:
        self.scope = scope
        self._include = [re.compile(pattern) for pattern in scope.include_paths]
        self._exclude = [re.compile(pattern) for pattern in scope.exclude_paths]
        self.rebase(scope.url)

    def rebase(self, url: str) -> None:
        """Take ``url`` as the crawl's root: the start URL, or where it redirected to."""
        parts = urlsplit(url)
        self._host = _site_host(parts.hostname or "")
        self._root_path = parts.path.rstrip("/")

    def follows(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        host = _site_host(parts.hostname)
        same_site = host == self._host or (self.scope.allow_subdomains and host.endswith(f".{self._host}"))
        if not same_site and not self.scope.allow_external_links:
            return False
        path = parts.path or "/"
        root = self._root_path
        if (
            same_site
            and not self.scope.entire_site
            and root
            and not (path.rstrip("/") == root or path.startswith(f"{root}/"))
        ):
            return False
        subject = url if self.scope.regex_on_full_url else path
        if self._include and not any(pattern.search(subject) for pattern in self._include):
            return False
        return not any(pattern.search(subject) for pattern in self._exclude)


def _site_host(host: str) -> str:
    """``www.example.com`` and ``example.com`` are one site."""
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host
