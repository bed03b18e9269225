"""A webhook as a client gives it, checked before anything is stored: a clear 400 for what cannot
be sent. The address policy is checked again where the connection is made (``delivery.py``)."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from w3lib.url import safe_url_string

from gateway.errors import BadRequest
from gateway.headers import HOP_BY_HOP
from gateway.webhooks.models import Dialect, WebhookTarget
from gateway.webhooks.resolver import Resolver
from spiders_project.addresses import AddressPolicy, BlockedAddress, default_port, normal_host

MAX_URL_LENGTH = 2048
MAX_HEADERS = 32
MAX_HEADER_VALUE = 4096
MAX_METADATA_BYTES = 16 * 1024
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
# The platform's own headers, the body's framing and the connection's: never a caller's to set.
_RESERVED = HOP_BY_HOP | {"content-type", "content-encoding", "x-firecrawl-signature"}
_RESERVED_PREFIX = "x-webhook-"


async def screen_webhook(
    url: Any,
    *,
    headers: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    events: Collection[str] | None,
    known_events: Collection[str],
    dialect: Dialect,
    policy: AddressPolicy,
    resolver: Resolver,
    tenant_id: str,
) -> WebhookTarget:
    """The webhook, or a 400 naming what is wrong with it."""
    target = WebhookTarget(
        url=_checked_url(url),
        headers=_checked_headers(headers or {}),
        metadata=_checked_metadata(metadata or {}),
        events=_checked_events(events, known_events),
        dialect=dialect,
    )
    await check_destination(target.url, policy, resolver, tenant_id)
    return target


def _checked_url(given: Any) -> str:
    if not isinstance(given, str) or not given or len(given) > MAX_URL_LENGTH:
        raise BadRequest(f"webhook: the url must be an http(s) URL of at most {MAX_URL_LENGTH} characters")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in given):
        raise BadRequest("webhook: the url contains spaces or control characters")
    try:
        # As it goes on the wire: an IDN host in punycode, the rest percent-encoded.
        url = safe_url_string(given)
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise BadRequest("webhook: the url is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest("webhook: the url must be an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise BadRequest("webhook: credentials go in headers, not in the url")
    if len(url) > MAX_URL_LENGTH or not url.isascii():
        raise BadRequest(f"webhook: the url must be an http(s) URL of at most {MAX_URL_LENGTH} characters")
    return url


def _checked_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    if len(headers) > MAX_HEADERS:
        raise BadRequest(f"webhook: at most {MAX_HEADERS} headers")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise BadRequest(f"webhook: {name!r} is not a valid header name")
        lowered = name.lower()
        if lowered in _RESERVED or lowered.startswith(_RESERVED_PREFIX):
            raise BadRequest(f"webhook: the {name} header is set by the platform")
        if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE:
            raise BadRequest(
                f"webhook: the {name} header must be a string of at most {MAX_HEADER_VALUE} bytes"
            )
        if any(char in value for char in "\r\n\0"):
            raise BadRequest(f"webhook: the {name} header contains a line break")
        if not all(char == "\t" or " " <= char <= "~" for char in value):
            raise BadRequest(f"webhook: the {name} header may hold visible ASCII characters only")
        checked[name] = value
    return checked


def _checked_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    try:
        size = len(json.dumps(metadata, ensure_ascii=False).encode())
    except (TypeError, ValueError):
        raise BadRequest("webhook: metadata must be a JSON object") from None
    if size > MAX_METADATA_BYTES:
        raise BadRequest(f"webhook: metadata of at most {MAX_METADATA_BYTES} bytes as JSON")
    return dict(metadata)


def _checked_events(events: Collection[str] | None, known: Collection[str]) -> frozenset[str] | None:
    if events is None:
        return frozenset(known)
    unknown = sorted(str(event) for event in events if event not in known)
    if unknown:
        raise BadRequest(f"webhook: unknown events {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if not events:
        raise BadRequest("webhook: events, when given, names at least one event")
    return frozenset(events)


async def check_destination(url: str, policy: AddressPolicy, resolver: Resolver, tenant_id: str) -> None:
    """A 400 unless every address the URL's host resolves to may be reached."""
    parts = urlsplit(url)
    host = normal_host(parts.hostname or "")
    port = parts.port or default_port(parts.scheme)
    try:
        policy.check(host, port, await resolver.lookup(host, port, tenant_id))
    except BlockedAddress as exc:
        raise BadRequest(f"webhook: the url cannot be reached: {exc}") from None
