"""Headers no client may set on a request the platform sends: the connection's (hop-by-hop), and
the message's framing and target, which the platform's HTTP client writes itself."""

from __future__ import annotations

HOP_BY_HOP = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
