"""Firecrawl's browser actions, run in order in a rendered page before it is converted.

The gateway checks each action's shape and the bounds (``ActionBounds``); this module runs them in
the page with Playwright, each within what is left of the actions' time, and collects what they
give: screenshots, the page's HTML at a ``scrape``, and what scripts return. Everything the page
reaches meanwhile goes through the browser's guard like any other rendered page.
"""

from __future__ import annotations

import asyncio
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
# A full-page screenshot stops this far down a taller page (Chromium's own limit is 16,384 px).
MAX_SCREENSHOT_HEIGHT = 16_384
# The elements one ``click`` with ``all`` clicks at most.
MAX_CLICKS = 100

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


_OVER = f"the actions' outputs are over {MAX_OUTPUT_BYTES // (1024 * 1024)} MiB"


class ActionFailed(Exception):
    """An action could not be done: the page's error (``ACTION_FAILED``), naming the action."""


class RenderTimeout(Exception):
    """A page outlived its whole time in the browser (``TIMEOUT``). Not an ``OSError``, unlike the
    built-in ``TimeoutError``: Scrapy would render the page again, and its scripts with it."""


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
            raise ActionFailed(_OVER)

    @property
    def room(self) -> int:
        """What the outputs may still grow by."""
        return max(0, MAX_OUTPUT_BYTES - self.size)

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
        # Anew for each attempt: a request retried (another proxy) starts with no outputs.
        self.outputs = ActionOutputs()
        seconds = actions_seconds(self.actions)
        deadline = time.monotonic() + seconds
        try:
            # The bound holds whatever a step does: a script that never settles, a click that hangs.
            await asyncio.wait_for(self._run_all(page, deadline), timeout=seconds)
        except TimeoutError:
            raise ActionFailed(f"the actions ran out of time ({seconds:g} s)") from None
        return self.outputs

    async def _run_all(self, page: Any, deadline: float) -> None:
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

    async def _run(self, page: Any, kind: str, action: dict[str, Any], remaining_ms: float) -> None:
        find_ms = min(remaining_ms, FIND_SECONDS * 1000)
        if kind == "wait":
            if action.get("selector"):
                await page.wait_for_selector(action["selector"], state="visible", timeout=remaining_ms)
            else:
                await page.wait_for_timeout(min(float(action.get("milliseconds") or 0), remaining_ms))
        elif kind == "click":
            if action.get("all"):
                elements = await page.query_selector_all(action["selector"])
                for element in elements[:MAX_CLICKS]:
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
            # Measured in the page first, so a DOM plainly over the bound is not sent (the page could
            # lie about its length: what arrives is counted again).
            if int(await page.evaluate(_HTML_LENGTH)) > self.outputs.room:
                raise ActionFailed(_OVER)
            html = await page.content()
            self.outputs.add(len(html.encode()))
            self.outputs.scrapes.append({"url": page.url, "html": html})
        elif kind == "executeJavascript":
            value_type, text = await _evaluate(page, str(action["script"]), self.outputs.room)
            self.outputs.add(len(text.encode()))
            self.outputs.javascript_returns.append({"type": value_type, "value": json.loads(text)})
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
    if kwargs["full_page"]:
        width, height = await page.evaluate(_PAGE_SIZE)
        if height > MAX_SCREENSHOT_HEIGHT:
            # A page made endless (or a million pixels tall) gives its first 16,384 px.
            kwargs["clip"] = {"x": 0, "y": 0, "width": max(1, width), "height": MAX_SCREENSHOT_HEIGHT}
    png: bytes = await page.screenshot(**kwargs)
    return png


async def _settle(page: Any, remaining_ms: float) -> None:
    """After a click or a key: the navigation it started, if any, loaded."""
    await page.wait_for_load_state("load", timeout=remaining_ms)


async def _evaluate(page: Any, script: str, room: int) -> tuple[str, str]:
    """A script's ``typeof`` and value, as JSON text: of its last expression, or, for a script
    that only a function's body can be (``return``, ``await``), what it returns. The value is made
    JSON in the page and measured there (a value over ``room`` is refused before it is sent); the
    page runs in the same world and could lie, so the caller checks the bytes it gets."""
    try:
        value_type, text = await page.evaluate(_AS_JSON % f"(\n{script}\n)", room)
    except Exception as exc:
        if "SyntaxError" not in str(exc):
            raise
        value_type, text = await page.evaluate(_AS_JSON % f"(async () => {{\n{script}\n}})()", room)
    if text is None:
        raise ActionFailed(_OVER)
    if not isinstance(text, str) or not isinstance(value_type, str):
        # The page can redefine JSON.stringify: what comes back is checked here, not trusted.
        raise ActionFailed("the script's value could not be made JSON")
    return value_type, text


# The page's DOM as page.content() would serialise it, measured without leaving the page.
_HTML_LENGTH = "() => document.documentElement ? document.documentElement.outerHTML.length : 0"
_PAGE_SIZE = """() => [
    Math.ceil(document.documentElement ? document.documentElement.scrollWidth : 0),
    Math.ceil(Math.max(document.documentElement ? document.documentElement.scrollHeight : 0,
                       document.body ? document.body.scrollHeight : 0)),
]"""
# A script's value as JSON text, with its ``typeof``: what JSON cannot say (NaN, Infinity, a
# function, a BigInt, a cycle) becomes null or a string, never an error; null text when the value
# is over the room left. A script that is a function is called, as Playwright calls one.
_AS_JSON = """async (room) => {
    let value = await %s;
    if (typeof value === "function") value = await value();
    const type = typeof value;
    let text;
    try {
        text = JSON.stringify(value, (key, item) => {
            if (typeof item === "number" && !Number.isFinite(item)) return null;
            if (typeof item === "bigint" || typeof item === "symbol") return String(item);
            if (typeof item === "function") return null;
            return item;
        });
    } catch (error) {
        text = JSON.stringify(String(value));
    }
    if (text === undefined) text = "null";
    return [type, text.length > room ? null : text];
}"""
