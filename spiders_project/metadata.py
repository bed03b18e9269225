"""Page metadata from the document head, under Firecrawl's names: title, description, language,
keywords, robots, Open Graph, article dates and tags, Dublin Core, canonical, favicon, and every
other named meta tag under its own name."""

from __future__ import annotations

import re
from typing import Any

from spiders_project.conversion import absolute_url, parse_html

# The head is all this needs; parsing only it keeps metadata cheap on large pages.
_HEAD_END = re.compile(r"</head\s*>|<body[\s>]", re.IGNORECASE)
_HEAD_LIMIT = 512 * 1024
_HTML_LANG = re.compile(r"<html[^>]*\slang\s*=\s*[\"']?([A-Za-z0-9_-]+)", re.IGNORECASE)
# Meta tags Firecrawl names; firecrawl-py reads each as one string, so a repeated one keeps its first.
_NAMED = {
    "description": "description",
    "robots": "robots",
    "og:title": "ogTitle",
    "og:description": "ogDescription",
    "og:image": "ogImage",
    "og:url": "ogUrl",
    "og:site_name": "ogSiteName",
    "og:locale": "ogLocale",
    "og:type": "ogType",
    "og:audio": "ogAudio",
    "og:video": "ogVideo",
    "og:determiner": "ogDeterminer",
    "article:section": "articleSection",
}
_URL_VALUED = frozenset({"og:image", "og:url", "og:audio", "og:video"})
# Where pages put when they were published and last changed, most telling first.
_PUBLISHED = ("article:published_time", "datepublished", "pubdate", "publishdate", "dcterms.issued", "date")
_MODIFIED = ("article:modified_time", "og:updated_time", "datemodified", "dcterms.modified", "last-modified")
_DUBLIN_CORE = re.compile(r"^(dc|dcterms)\.([a-z0-9.]+)$")
# What the other meta tags may add to a record, from a page nobody vetted.
MAX_OTHER_NAMES = 50
MAX_VALUES = 20
MAX_VALUE_CHARS = 2000
# Names the record's own fields use: a page's meta tag never overrides them.
_RESERVED = frozenset(
    {"title", "language", "keywords", "canonical", "favicon", "url", "sourceurl", "statuscode", "contenttype"}
    | {"error", "scrapeid", "cachestate", "cachedat", "creditsused", "proxyused", "numpages"}
)


def head_metadata(text: str, url: str) -> dict[str, Any]:
    """The head's metadata under Firecrawl's names: strings, and lists where a tag repeats (keywords,
    ogLocaleAlternate, tags of other names)."""
    head_end = _HEAD_END.search(text, 0, _HEAD_LIMIT)
    head_text = text[: head_end.start()] if head_end else text[:_HEAD_LIMIT]
    metadata: dict[str, Any] = {"ogLocaleAlternate": []}
    language = _HTML_LANG.search(head_text)
    if language:
        metadata["language"] = language.group(1)
    head = parse_html(head_text + "</head><body></body></html>")
    if head is None:
        return metadata
    title = head.findtext(".//title")
    if title and title.strip():
        metadata["title"] = " ".join(title.split())
    tags, names = _meta_tags(head)
    for key, name in _NAMED.items():
        if key in tags:
            value = tags[key][0]
            metadata[name] = (absolute_url(url, value) or value) if key in _URL_VALUED else value
    if "keywords" in tags:
        keywords = tags["keywords"]
        metadata["keywords"] = keywords[0] if len(keywords) == 1 else keywords
    metadata["ogLocaleAlternate"] = tags.get("og:locale:alternate", [])
    if "article:tag" in tags:
        metadata["articleTag"] = ", ".join(tags["article:tag"])
    for field, keys in (("publishedTime", _PUBLISHED), ("modifiedTime", _MODIFIED)):
        found = next((tags[key][0] for key in keys if key in tags), None)
        if found is not None:
            metadata[field] = found
    if "language" not in metadata and "content-language" in tags:
        metadata["language"] = tags["content-language"][0].split(",")[0].strip()
    used = {
        "keywords",
        "og:locale:alternate",
        "article:tag",
        "content-language",
        *_NAMED,
        *_PUBLISHED,
        *_MODIFIED,
    }
    others = 0
    for key, values in tags.items():
        dublin_core = _DUBLIN_CORE.match(key)
        if dublin_core:
            metadata.setdefault(_dublin_core_name(*dublin_core.groups()), values[0])
        elif key not in used and key.replace(":", "").replace("-", "") not in _RESERVED:
            if others == MAX_OTHER_NAMES:
                continue
            others += 1
            metadata.setdefault(names[key], values[0] if len(values) == 1 else values)
    for link in head.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        href = (link.get("href") or "").strip()
        if not href:
            continue
        if "canonical" in rel and "canonical" not in metadata:
            metadata["canonical"] = absolute_url(url, href) or href
        if "icon" in rel and "favicon" not in metadata:
            metadata["favicon"] = absolute_url(url, href) or href
    return metadata


def _meta_tags(head: Any) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The head's meta tags: their values by lower-cased name (property, name, itemprop or
    http-equiv), in page order, and each name as the page first spelled it."""
    tags: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for meta in head.iter("meta"):
        name = (
            meta.get("property") or meta.get("name") or meta.get("itemprop") or meta.get("http-equiv") or ""
        ).strip()
        content = (meta.get("content") or "").strip()
        if not name or not content or len(name) > 100:
            continue
        key = name.lower()
        values = tags.setdefault(key, [])
        names.setdefault(key, name)
        if len(values) < MAX_VALUES:
            values.append(content[:MAX_VALUE_CHARS])
    return tags, names


def _dublin_core_name(scheme: str, element: str) -> str:
    """Firecrawl's name for a Dublin Core tag: dcterms.created is dcTermsCreated, dc.date.created
    dcDateCreated."""
    parts = [
        "dc",
        *(["Terms"] if scheme == "dcterms" else []),
        *(part.capitalize() for part in element.split(".")),
    ]
    return "".join(parts)
