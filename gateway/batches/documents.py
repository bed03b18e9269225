"""A page as a Firecrawl document (Firecrawl v2 and Scrapeless answer with it, and page webhooks
carry it): the formats asked for, and metadata of strings, numbers and lists of strings."""

from __future__ import annotations

from typing import Any

DOCUMENT_FORMATS = ("markdown", "html", "rawHtml", "links", "changeTracking")


def page_document(
    record: dict[str, Any],
    *,
    url: str | None,
    status_code: int | None,
    error: str | None,
    screenshot_url: str | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {name: record[name] for name in DOCUMENT_FORMATS if name in record}
    if record.get("screenshot") and screenshot_url:
        doc["screenshot"] = screenshot_url
    metadata = {
        name: value for name, value in (record.get("metadata") or {}).items() if _metadata_value(value)
    }
    metadata.setdefault("sourceURL", url)
    metadata.setdefault("ogLocaleAlternate", [])
    if status_code is not None:
        metadata["statusCode"] = status_code
    if error:
        metadata["error"] = error
    doc["metadata"] = metadata
    return doc


def _metadata_value(value: Any) -> bool:
    """What a document's metadata carries: strings and numbers, and lists of strings (a meta tag
    the page repeats)."""
    if isinstance(value, list):
        return all(isinstance(entry, str) for entry in value)
    return isinstance(value, str | int)
