"""Firecrawl's browser actions, run in order in a rendered page before it is converted.

The gateway checks each action's shape and the bounds (``ActionBounds``); this module runs them in
the page with Playwright, each within what is left of the actions' time, and collects what they
give: screenshots, the page's HTML at a ``scrape``, and what scripts return. Everything the page
reaches meanwhile goes through the browser's guard like any other rendered page.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

MAX_ACTIONS = 50
# The waits a scrape may ask for, ``waitFor`` and every ``wait`` action together (Firecrawl's bound).
MAX_TOTAL_WAIT_MS = 60_000
# Beyond the waits asked for: the time every other action together may take.
ACTIONS_WORK_SECONDS = 30.0
# What actions may add to a page's record: their HTML, script values and screenshots together.
MAX_OUTPUT_BYTES = 16 * 1024 * 1024
MAX_VIEWPORT = (4096, 4096)

# Firecrawl's key names as its users write them ("ENTER") and as Playwright knows them ("Enter").
_KEYS = {
    name.lower(): name
    for name in (
        "Enter",
        "Tab",
        "Escape",
        "Backspace",
        "Delete",
        "Space",
        "Home",
        "End",
        "PageUp",
        "PageDown",
        "ArrowUp",
        "ArrowDown",
        "ArrowLeft",
        "ArrowRight",
    )
}
_KEYS["esc"] = "Escape"
_KEYS["return"] = "Enter"


ACTION_FAILED = "ACTION_FAILED"
# The longest a click or a scroll looks for its element.
FIND_SECONDS = 10.0


class ActionFailed(Exception):
    """An action could not be done: the page's error (``ACTION_FAILED``), naming the action."""


def total_wait_ms(actions: tuple[dict[str, Any], ...]) -> int:
    return sum(int(action.get("milliseconds") or 0) for action in actions if action.get("type") == "wait")


def actions_seconds(actions: tuple[dict[str, Any], ...]) -> float:
    """The longest a page's actions may take: their waits, and the time for all the rest."""
    return total_wait_ms(actions) / 1000 + ACTIONS_WORK_SECONDS if actions else 0.0


def key_name(key: str) -> str:
    """The key as Playwright names it."""
    return _KEYS.get(key.lower(), key)


@dataclass
class ActionOutputs:
    """What a page's actions gave, in the order they gave it."""

    screenshots: list[bytes] = field(default_factory=list)
    scrapes: list[dict[str, str]] = field(default_factory=list)
    javascript_returns: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0

    def add(self, size: int) -> None:
        self.size += size
        if self.size > MAX_OUTPUT_BYTES:
            raise ActionFailed(f"the actions' outputs are over {MAX_OUTPUT_BYTES // (1024 * 1024)} MiB")

    def to_record(self) -> dict[str, Any]:
        """As the page record carries them: screenshots in base64 (the gateway keeps them apart)."""
        return {
            "screenshots": [base64.b64encode(png).decode() for png in self.screenshots],
            "scrapes": self.scrapes,
            "javascriptReturns": self.javascript_returns,
            "pdfs": [],
        }


class ActionRunner:
    """Runs one page's actions; ``scrapy_playwright.page.PageMethod`` calls it with the page."""

    def __init__(self, actions: tuple[dict[str, Any], ...]) -> None:
        self.actions = actions
        self.outputs = ActionOutputs()

    async def __call__(self, page: Any) -> ActionOutputs:
        deadline = time.monotonic() + actions_seconds(self.actions)
        for number, action in enumerate(self.actions, start=1):
            kind = str(action.get("type"))
            remaining_ms = (deadline - time.monotonic()) * 1000
            if remaining_ms <= 0:
                raise ActionFailed(f"action {number} ({kind}): the actions ran out of time")
            try:
                await self._run(page, kind, action, remaining_ms)
            except ActionFailed as exc:
                raise ActionFailed(f"action {number} ({kind}): {exc}") from None
            except Exception as exc:  # Playwright's errors: a selector, a key, a script
                reason = (str(exc).splitlines() or [type(exc).__name__])[0]
                raise ActionFailed(f"action {number} ({kind}): {reason}") from None
        return self.outputs

    async def _run(self, page: Any, kind: str, action: dict[str, Any], remaining_ms: float) -> None:
        find_ms = min(remaining_ms, FIND_SECONDS * 1000)
        if kind == "wait":
            if action.get("selector"):
                await page.wait_for_selector(action["selector"], state="visible", timeout=remaining_ms)
            else:
                await page.wait_for_timeout(min(float(action.get("milliseconds") or 0), remaining_ms))
        elif kind == "click":
            if action.get("all"):
                for element in await page.query_selector_all(action["selector"]):
                    await element.click(timeout=find_ms)
            else:
                await page.click(action["selector"], timeout=find_ms)
            await _settle(page, remaining_ms)
        elif kind == "write":
            await page.keyboard.type(str(action["text"]))
        elif kind == "press":
            await page.keyboard.press(key_name(str(action["key"])))
            await _settle(page, remaining_ms)
        elif kind == "scroll":
            sign = -1 if action.get("direction") == "up" else 1
            if action.get("selector"):
                element = await page.wait_for_selector(action["selector"], state="attached", timeout=find_ms)
                await element.evaluate("(box, sign) => box.scrollBy(0, sign * box.clientHeight)", sign)
            else:
                await page.evaluate("(sign) => window.scrollBy(0, sign * window.innerHeight)", sign)
        elif kind == "screenshot":
            png = await take_screenshot(page, action, remaining_ms)
            self.outputs.add(len(png) * 4 // 3)
            self.outputs.screenshots.append(png)
        elif kind == "scrape":
            html = await page.content()
            self.outputs.add(len(html.encode()))
            self.outputs.scrapes.append({"url": page.url, "html": html})
        elif kind == "executeJavascript":
            value = await _evaluate(page, str(action["script"]))
            self.outputs.add(len(json.dumps(value, default=str)))
            self.outputs.javascript_returns.append({"type": _js_type(value), "value": value})
        else:
            raise ActionFailed("not an action the platform runs")


async def take_screenshot(page: Any, shot: dict[str, Any], remaining_ms: float) -> bytes:
    """A screenshot as Firecrawl's screenshot options say: the viewport or the full page, a PNG or,
    with ``quality``, a JPEG of that quality, at the ``viewport`` size when given."""
    viewport = shot.get("viewport")
    if viewport:
        await page.set_viewport_size({"width": int(viewport["width"]), "height": int(viewport["height"])})
    quality = shot.get("quality")
    kwargs: dict[str, Any] = {"full_page": bool(shot.get("fullPage")), "timeout": remaining_ms}
    if quality is not None:
        kwargs |= {"type": "jpeg", "quality": int(quality)}
    else:
        kwargs["type"] = "png"
    png: bytes = await page.screenshot(**kwargs)
    return png


async def _settle(page: Any, remaining_ms: float) -> None:
    """After a click or a key: the navigation it started, if any, loaded."""
    await page.wait_for_load_state("load", timeout=remaining_ms)


async def _evaluate(page: Any, script: str) -> Any:
    """A script's value: of its last expression, or, for a script that only a function's body can
    be (``return``, ``await``), what it returns."""
    try:
        return await page.evaluate(script)
    except Exception as exc:
        if "SyntaxError" not in str(exc):
            raise
    return await page.evaluate(f"(async () => {{\n{script}\n}})()")


def _js_type(value: Any) -> str:
    """JavaScript's ``typeof`` of a value Playwright gave back."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "undefined"
    return "object"
