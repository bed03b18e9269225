"""Screening a batch's URLs before anything is fetched: syntax, length, and where they lead."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from w3lib.url import safe_url_string

from spiders_project.addresses import AddressPolicy, BlockedAddress, default_port, resolve

MAX_URL_LENGTH = 2048
MAX_URLS = 1000
# Host names are resolved concurrently, within this time in all; a slow name is left to the fetch.
RESOLVE_TIMEOUT = 5.0
_RESOLVERS = 32


@dataclass(frozen=True)
class InvalidUrl:
    index: int
    url: str
    reason: str


@dataclass(frozen=True)
class ScreenedUrls:
    accepted: list[tuple[int, str]]
    invalid: list[InvalidUrl]


def url_problem(value: Any) -> str | None:
    """Why ``value`` cannot be scraped as a URL, or None when its form is fine."""
    if not isinstance(value, str):
        return "not a string"
    if not value.strip():
        return "empty"
    if len(value) > MAX_URL_LENGTH:
        return f"longer than {MAX_URL_LENGTH} characters"
    if any(character.isspace() or ord(character) < 32 for character in value):
        return "contains whitespace or control characters"
    try:
        # As the spider will fetch it: "http://127.0.0.1\\@evil.com/" is a request to 127.0.0.1.
        parts = urlsplit(safe_url_string(value))
        port = parts.port
    except ValueError as exc:
        return f"malformed ({exc})"
    if parts.scheme not in ("http", "https"):
        return "only http and https URLs can be scraped"
    if not parts.hostname:
        return "no host"
    if port == 0:
        return "port 0"
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        return "the host name is not valid"
    return None


async def screen_urls(urls: Sequence[Any], policy: AddressPolicy) -> ScreenedUrls:
    """Accepted URLs with their input index, and the invalid ones with the reason."""
    invalid: list[InvalidUrl] = []
    candidates: list[tuple[int, str]] = []
    for index, value in enumerate(urls):
        problem = url_problem(value)
        if problem is None:
            candidates.append((index, value))
        else:
            invalid.append(InvalidUrl(index, value if isinstance(value, str) else repr(value), problem))
    blocked = await _blocked(candidates, policy)
    invalid += [InvalidUrl(index, url, blocked[index]) for index, url in candidates if index in blocked]
    accepted = [(index, url) for index, url in candidates if index not in blocked]
    return ScreenedUrls(accepted=accepted, invalid=sorted(invalid, key=lambda item: item.index))


async def _blocked(candidates: list[tuple[int, str]], policy: AddressPolicy) -> dict[int, str]:
    endpoints: dict[tuple[str, int], list[int]] = {}
    for index, url in candidates:
        parts = urlsplit(safe_url_string(url))
        key = (parts.hostname or "", parts.port or default_port(parts.scheme))
        endpoints.setdefault(key, []).append(index)
    gate = asyncio.Semaphore(_RESOLVERS)

    async def reason(host: str, port: int) -> str | None:
        async with gate:
            addresses = await asyncio.to_thread(resolve, host, port)
        if not addresses:
            # Screening only gives early errors; the spider refuses it where it would connect.
            return None
        try:
            policy.check(host, port, addresses)
        except BlockedAddress as exc:
            return str(exc)
        return None

    keys = list(endpoints)
    tasks = [asyncio.ensure_future(reason(host, port)) for host, port in keys]
    done, pending = await asyncio.wait(tasks, timeout=RESOLVE_TIMEOUT) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    blocked: dict[int, str] = {}
    for key, task in zip(keys, tasks, strict=True):
        if task in done and task.result() is not None:
            for index in endpoints[key]:
                blocked[index] = f"refused: {task.result()}"
    return blocked
