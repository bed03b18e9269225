"""A page as a Firecrawl document (Firecrawl v2 and Scrapeless answer with it, and page webhooks
carry it): the formats asked for, and metadata of strings, numbers and lists of strings."""

from __future__ import annotations

from typing import Any

from spiders_project.contract import ACTIONS, SCREENSHOT

DOCUMENT_FORMATS = ("markdown", "html", "rawHtml", "links", "images", "changeTracking")


def page_document(
    record: dict[str, Any],
    *,
    url: str | None,
    status_code: int | None,
    error: str | None,
    screenshots_at: str | None = None,
) -> dict[str, Any]:
    """``screenshots_at``: where the page's screenshots are served (without one, as in webhook
    bodies, the document has no screenshot URLs)."""
    doc: dict[str, Any] = {name: record[name] for name in DOCUMENT_FORMATS if name in record}
    if record.get(SCREENSHOT) and screenshots_at:
        doc["screenshot"] = screenshot_file_url(screenshots_at, 0, record[SCREENSHOT])
    actions = record.get(ACTIONS)
    if isinstance(actions, dict):
        shots = actions.get("screenshots") or []
        doc["actions"] = {
            "screenshots": [
                screenshot_file_url(screenshots_at, position, kind)
                for position, kind in enumerate(shots, start=1)
                if kind and screenshots_at
            ],
            "scrapes": actions.get("scrapes") or [],
            "javascriptReturns": actions.get("javascriptReturns") or [],
            "pdfs": [],
        }
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


def screenshot_file_url(screenshots_at: str, position: int, kind: Any) -> str:
    """A page's screenshot: its format's (position 0) or an action's (1, 2, ...), by its image kind
    (``jpg`` or ``png``; records before kinds were kept say ``true``)."""
    extension = "jpg" if kind == "jpg" else "png"
    return f"{screenshots_at}.{extension}" if position == 0 else f"{screenshots_at}-{position}.{extension}"


def image_kind(image: bytes) -> str:
    """``jpg`` for a JPEG (a screenshot with a quality), else ``png``."""
    return "jpg" if image.startswith(b"\xff\xd8\xff") else "png"
