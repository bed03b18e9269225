"""How a batch wants its pages: formats, content, rendering and routing, as the gateway sends them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

FORMATS = frozenset({"markdown", "html", "rawHtml", "links", "images", "screenshot"})
WAIT_UNTIL = ("commit", "domcontentloaded", "load", "networkidle")
SCREENSHOTS = ("viewport", "full_page")


@dataclass(frozen=True)
class ContentOptions:
    """What the conversion of one HTML page produces besides markdown, and from which part of it."""

    only_main_content: bool = False
    include_tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    want_html: bool = False
    want_links: bool = False
    want_images: bool = False


@dataclass(frozen=True)
class PageOptions:
    formats: frozenset[str] = frozenset({"markdown"})
    only_main_content: bool = False
    include_tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    timeout_ms: int | None = None
    # In a browser (JavaScript runs): until which load state, for which element, and how long more.
    render: bool = False
    wait_until: str | None = None
    wait_for: str | None = None
    wait_timeout_ms: int | None = None
    wait_ms: int | None = None
    # "viewport" or "full_page"; implies rendering. With a quality, a JPEG of that quality.
    screenshot: str | None = None
    screenshot_quality: int | None = None
    # The browser's viewport (width, height) when not Chromium's default.
    viewport: tuple[int, int] | None = None
    # Firecrawl's browser actions, run in order before the page is taken (spiders_project.actions).
    actions: tuple[dict[str, Any], ...] = ()
    # The operator's proxy pool the batch goes through, by name; None: direct (or the default pool).
    proxy_pool: str | None = None
    # A map of a site: pages are read for their head's metadata only, never converted.
    listing: bool = False
    # Firecrawl's changeTracking: pages carry the hash of their main content, whitespace folded,
    # which the gateway compares with the tenant's previous scrape of the page under the same tag
    # (and diffs, with ``change_diff``).
    track_changes: bool = False
    change_tag: str = ""
    change_diff: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PageOptions:
        known = {option.name for option in fields(cls)}
        values = {name: value for name, value in data.items() if name in known and value is not None}
        values["formats"] = frozenset(values.get("formats") or ("markdown",)) & FORMATS
        for name in ("include_tags", "exclude_tags"):
            values[name] = tuple(values.get(name) or ())
        values["headers"] = dict(values.get("headers") or {})
        values["actions"] = tuple(values.get("actions") or ())
        if values.get("viewport"):
            width, height = values["viewport"]
            values["viewport"] = (int(width), int(height))
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        data = {option.name: getattr(self, option.name) for option in fields(self)}
        data["formats"] = sorted(self.formats)
        data["include_tags"] = list(self.include_tags)
        data["exclude_tags"] = list(self.exclude_tags)
        data["actions"] = list(self.actions)
        data["viewport"] = list(self.viewport) if self.viewport else None
        return data

    @property
    def rendered(self) -> bool:
        """Whether pages go through the browser: asked for, or needed by a screenshot or actions."""
        return self.render or self.screenshot is not None or bool(self.actions)

    @property
    def content(self) -> ContentOptions:
        return ContentOptions(
            only_main_content=self.only_main_content,
            include_tags=self.include_tags,
            exclude_tags=self.exclude_tags,
            want_html="html" in self.formats,
            want_links="links" in self.formats,
            want_images="images" in self.formats,
        )
