"""Firecrawl's scrape options and page documents, which Firecrawl v2 and Scrapeless share."""

from __future__ import annotations

from typing import Any

from cssselect import ExpressionError, GenericTranslator, SelectorError

from gateway.api.fields import optional_flag
from gateway.batches.proxies import ProxyChoice
from gateway.batches.service import Batch, BatchPage, BatchStatus, PageCounts
from gateway.errors import BadRequest
from spiders_project.pages import PageOptions

SUPPORTED_FORMATS = ("markdown", "html", "rawHtml", "links", "screenshot")
# Both SDKs poll while the status is "scraping" and stop on anything else: never say "queued".
STATUS = {
    BatchStatus.QUEUED: "scraping",
    BatchStatus.RUNNING: "scraping",
    BatchStatus.COMPLETED: "completed",
    BatchStatus.FAILED: "failed",
    BatchStatus.CANCELLED: "cancelled",
}
_FORMAT_ALIASES = {"raw_html": "rawHtml", "rawhtml": "rawHtml"}
# Formats other services offer that need a model; refused rather than ignored.
_LATER_FORMATS = {"json", "summary", "changeTracking", "images", "branding"}
MAX_WAIT_MS = 60_000


def batch_urls(body: dict[str, Any]) -> tuple[list[Any], bool]:
    """The start body's ``urls`` and ``ignoreInvalidURLs`` (true unless false)."""
    urls = body.get("urls")
    if not isinstance(urls, list):
        raise BadRequest("urls must be a list of URLs")
    ignore_invalid = optional_flag(body, "ignoreInvalidURLs")
    return urls, ignore_invalid is not False


def scrape_options(
    body: dict[str, Any], *, main_content_default: bool = True
) -> tuple[PageOptions, ProxyChoice | None]:
    """PageOptions (and the proxy asked for) from camelCase scrape options; anything that would
    change the result but cannot be honoured answers 400 instead of being ignored."""
    formats, screenshot = _formats(body.get("formats"))
    only_main = optional_flag(body, "onlyMainContent")
    wait_ms = body.get("waitFor") or None
    if wait_ms is not None and (
        not isinstance(wait_ms, int) or isinstance(wait_ms, bool) or not 0 < wait_ms <= MAX_WAIT_MS
    ):
        raise BadRequest(f"waitFor must be a number of milliseconds up to {MAX_WAIT_MS}")
    for name in ("actions", "webhook", "jsonOptions", "changeTrackingOptions"):
        if body.get(name):
            raise BadRequest(f"{name} is not supported yet")
    if body.get("mobile") is True:
        raise BadRequest("mobile is not supported yet")
    headers = request_headers(body.get("headers"))
    proxy = _proxy_choice(body, headers)
    return (
        PageOptions(
            formats=frozenset(formats),
            only_main_content=main_content_default if only_main is None else only_main,
            include_tags=css_selectors(body.get("includeTags"), "includeTags"),
            exclude_tags=css_selectors(body.get("excludeTags"), "excludeTags"),
            headers=headers,
            timeout_ms=_timeout(body.get("timeout")),
            render=wait_ms is not None,
            wait_ms=wait_ms,
            screenshot=screenshot,
        ),
        proxy,
    )


def _proxy_choice(body: dict[str, Any], headers: dict[str, str]) -> ProxyChoice | None:
    """Firecrawl's ``proxy`` and ``location``, Scrapeless' ``browserOptions.proxy_country``."""
    kind = body.get("proxy")
    if kind not in (None, "basic", "auto", "stealth"):
        raise BadRequest(f"proxy must be basic, auto or stealth, not {kind!r}")
    country = None
    location = body.get("location")
    if location is not None:
        if not isinstance(location, dict):
            raise BadRequest("location must be an object")
        country = location.get("country")
        languages = location.get("languages")
        if (
            isinstance(languages, list)
            and languages
            and not any(name.lower() == "accept-language" for name in headers)
        ):
            headers["Accept-Language"] = ", ".join(str(language) for language in languages)
    browser = body.get("browserOptions")
    if browser:
        if not isinstance(browser, dict) or set(browser) - {"proxy_country"}:
            raise BadRequest("browserOptions: only proxy_country is supported")
        country = browser.get("proxy_country") or country
    if country is not None and (not isinstance(country, str) or len(country) != 2):
        raise BadRequest("a country is a two-letter code such as US")
    if kind != "stealth" and country is None:
        return None
    return ProxyChoice(
        type="residential" if kind == "stealth" else None, country=country.upper() if country else None
    )


def request_headers(value: Any) -> dict[str, str]:
    """Headers to send with every request of a batch; hop-by-hop headers and Host are refused."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise BadRequest("headers must be an object of header names to string values")
    refused = sorted(name for name in value if name.lower() in _HOP_BY_HOP)
    if refused:
        raise BadRequest(f"these headers cannot be set: {', '.join(refused)}")
    return dict(value)


_HOP_BY_HOP = frozenset(
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


def document(page: BatchPage, screenshot_url: str | None = None) -> dict[str, Any]:
    """A page as a Firecrawl document: the formats asked for and metadata (string values only)."""
    record = page.record
    doc: dict[str, Any] = {name: record[name] for name in SUPPORTED_FORMATS[:4] if name in record}
    if record.get("screenshot") and screenshot_url:
        doc["screenshot"] = screenshot_url
    metadata = {
        name: value
        for name, value in (record.get("metadata") or {}).items()
        if value is not None and (isinstance(value, str | int) or name == "ogLocaleAlternate")
    }
    metadata.setdefault("sourceURL", page.url)
    metadata.setdefault("ogLocaleAlternate", [])
    if page.status_code is not None:
        metadata["statusCode"] = page.status_code
    if page.error_message:
        metadata["error"] = page.error_message
    doc["metadata"] = metadata
    return doc


def credits_used(batch: Batch, counts: PageCounts) -> int:
    """What the batch costs: its settled charge once over, the pages fetched so far until then."""
    return batch.credits_used if batch.completed_at else counts.fetched


def screenshot_url(base_url: str, batch_id: str, page: BatchPage) -> str:
    """Where a page's screenshot is served (to the batch's owner)."""
    return f"{base_url.rstrip('/')}/screenshots/{batch_id}/{page.input_index}.png"


def _formats(value: Any) -> tuple[set[str], str | None]:
    """The formats asked for, and the screenshot: None, "viewport" or "full_page"."""
    if value is None:
        return {"markdown"}, None
    if not isinstance(value, list) or not value:
        raise BadRequest("formats must be a non-empty list")
    formats, screenshot = set(), None
    for entry in value:
        name = entry.get("type") if isinstance(entry, dict) else entry
        if not isinstance(name, str):
            raise BadRequest(f"invalid format {entry!r}")
        if name in ("screenshot", "screenshot@fullPage"):
            full = name.endswith("@fullPage") or (isinstance(entry, dict) and entry.get("fullPage") is True)
            formats.add("screenshot")
            screenshot = "full_page" if full else "viewport"
            continue
        name = _FORMAT_ALIASES.get(name.lower(), name)
        if name in SUPPORTED_FORMATS:
            formats.add(name)
        elif name in _LATER_FORMATS:
            raise BadRequest(f"format {name!r} is not supported yet")
        else:
            raise BadRequest(f"unknown format {name!r}: use {', '.join(SUPPORTED_FORMATS)}")
    return formats, screenshot


MAX_SELECTORS = 100
MAX_SELECTOR_LENGTH = 500


def css_selectors(value: Any, name: str) -> tuple[str, ...]:
    """CSS selectors, at most ``MAX_SELECTORS`` of ``MAX_SELECTOR_LENGTH`` characters: checking them
    (and using them on every page) stays cheap."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(selector, str) and selector.strip() for selector in value
    ):
        raise BadRequest(f"{name} must be a list of CSS selectors")
    if len(value) > MAX_SELECTORS:
        raise BadRequest(f"{name} may hold at most {MAX_SELECTORS} selectors")
    for selector in value:
        if len(selector) > MAX_SELECTOR_LENGTH:
            raise BadRequest(f"{name}: a selector may be at most {MAX_SELECTOR_LENGTH} characters long")
        try:
            GenericTranslator().css_to_xpath(selector)
        except (SelectorError, ExpressionError, RecursionError) as exc:
            raise BadRequest(
                f"{name}: {selector[:100]!r} is not a CSS selector this platform can use ({exc})"
            ) from None
    return tuple(value)


def _timeout(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1000 <= value <= 300_000:
        raise BadRequest("timeout must be between 1000 and 300000 milliseconds")
    return value
