"""Page metadata from the document head: title, description, language, keywords, Open Graph, canonical."""

from __future__ import annotations

import re
from typing import Any

from spiders_project.conversion import absolute_url, parse_html

# The head is all this needs; parsing only it keeps metadata cheap on large pages.
_HEAD_END = re.compile(r"</head\s*>|<body[\s>]", re.IGNORECASE)
_HEAD_LIMIT = 512 * 1024
_HTML_LANG = re.compile(r"<html[^>]*\slang\s*=\s*[\"']?([A-Za-z0-9_-]+)", re.IGNORECASE)
_OPEN_GRAPH = {
    "og:title": "ogTitle",
    "og:description": "ogDescription",
    "og:image": "ogImage",
    "og:url": "ogUrl",
    "og:site_name": "ogSiteName",
    "og:locale": "ogLocale",
    "og:type": "ogType",
}


def head_metadata(text: str, url: str) -> dict[str, Any]:
    """The head's metadata under Firecrawl's names; every value a string, ogLocaleAlternate a list."""
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
    for meta in head.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("http-equiv") or "").strip().lower()
        content = (meta.get("content") or "").strip()
        if not key or not content:
            continue
        if key == "description":
            metadata.setdefault("description", content)
        elif key == "keywords":
            metadata.setdefault("keywords", content)
        elif key == "og:locale:alternate":
            metadata["ogLocaleAlternate"].append(content)
        elif key in _OPEN_GRAPH:
            value = (absolute_url(url, content) or content) if key in ("og:image", "og:url") else content
            metadata.setdefault(_OPEN_GRAPH[key], value)
        elif key == "content-language" and "language" not in metadata:
            metadata["language"] = content.split(",")[0].strip()
    for link in head.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split() and link.get("href"):
            metadata["canonical"] = absolute_url(url, link.get("href")) or link.get("href").strip()
            break
    return metadata
