"""How a batch wants its pages: formats and content options, as the gateway sends them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FORMATS = frozenset({"markdown", "html", "rawHtml", "links"})


@dataclass(frozen=True)
class ContentOptions:
    """What the conversion of one HTML page produces besides markdown, and from which part of it."""

    only_main_content: bool = False
    include_tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    want_html: bool = False
    want_links: bool = False


@dataclass(frozen=True)
class PageOptions:
    formats: frozenset[str] = frozenset({"markdown"})
    only_main_content: bool = False
    include_tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    timeout_ms: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PageOptions:
        return cls(
            formats=frozenset(data.get("formats") or ("markdown",)) & FORMATS,
            only_main_content=bool(data.get("only_main_content")),
            include_tags=tuple(data.get("include_tags") or ()),
            exclude_tags=tuple(data.get("exclude_tags") or ()),
            headers=dict(data.get("headers") or {}),
            timeout_ms=data.get("timeout_ms"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "formats": sorted(self.formats),
            "only_main_content": self.only_main_content,
            "include_tags": list(self.include_tags),
            "exclude_tags": list(self.exclude_tags),
            "headers": dict(self.headers),
            "timeout_ms": self.timeout_ms,
        }

    @property
    def content(self) -> ContentOptions:
        return ContentOptions(
            only_main_content=self.only_main_content,
            include_tags=self.include_tags,
            exclude_tags=self.exclude_tags,
            want_html="html" in self.formats,
            want_links="links" in self.formats,
        )
