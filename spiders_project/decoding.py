"""Response bodies to text: the declared charset when there is one, a sniffed one otherwise."""

from __future__ import annotations

from charset_normalizer import from_bytes
from w3lib.encoding import html_to_unicode

_SNIFF_BYTES = 64 * 1024


def decode_body(body: bytes, content_type: str | None) -> tuple[str, str]:
    """The text of ``body`` and the encoding used: BOM, then HTTP header, then <meta>, then sniffing."""
    encoding, text = html_to_unicode(content_type, body, auto_detect_fun=_sniff)
    return text, encoding


def _sniff(body: bytes) -> str:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    best = from_bytes(body[:_SNIFF_BYTES]).best()
    return best.encoding if best is not None else "cp1252"
