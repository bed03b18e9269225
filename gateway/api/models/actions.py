"""Firecrawl's browser actions, as a scrape's ``actions`` and its screenshot format give them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, StringConstraints, Tag, model_validator

from gateway.api.models.fields import Body
from spiders_project.actions import MAX_ACTIONS, MAX_VIEWPORT

MAX_TEXT_LENGTH = 10_000
MAX_SCRIPT_LENGTH = 100_000
Selector = Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class Viewport(Body):
    width: int = Field(ge=100, le=MAX_VIEWPORT[0])
    height: int = Field(ge=100, le=MAX_VIEWPORT[1])


class ScreenshotOptions(Body):
    fullPage: bool | None = None
    quality: int | None = Field(None, ge=1, le=100, description="A JPEG of this quality (else a PNG)")
    viewport: Viewport | None = None


class WaitAction(Body):
    type: Literal["wait"]
    milliseconds: int | None = Field(None, ge=1, le=60_000)
    selector: Selector | None = None

    @model_validator(mode="after")
    def _one_of(self) -> WaitAction:
        if (self.milliseconds is None) == (self.selector is None):
            raise ValueError("a wait takes either milliseconds or a selector")
        return self


class ClickAction(Body):
    type: Literal["click"]
    selector: Selector
    all: bool | None = Field(None, description="Click every element the selector matches")


class WriteAction(Body):
    type: Literal["write"]
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH)]


class PressAction(Body):
    type: Literal["press"]
    key: Annotated[str, StringConstraints(min_length=1, max_length=50)]


class ScrollAction(Body):
    type: Literal["scroll"]
    direction: Literal["up", "down"] = "down"
    selector: Selector | None = None


class ScreenshotAction(ScreenshotOptions):
    type: Literal["screenshot"]


class ScrapeAction(Body):
    type: Literal["scrape"]


class ExecuteJavascriptAction(Body):
    type: Literal["executeJavascript"]
    script: Annotated[str, StringConstraints(min_length=1, max_length=MAX_SCRIPT_LENGTH)]


def _action_type(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if isinstance(kind, str) else None


Action = Annotated[
    Annotated[WaitAction, Tag("wait")]
    | Annotated[ClickAction, Tag("click")]
    | Annotated[WriteAction, Tag("write")]
    | Annotated[PressAction, Tag("press")]
    | Annotated[ScrollAction, Tag("scroll")]
    | Annotated[ScreenshotAction, Tag("screenshot")]
    | Annotated[ScrapeAction, Tag("scrape")]
    | Annotated[ExecuteJavascriptAction, Tag("executeJavascript")],
    Discriminator(
        _action_type,
        custom_error_type="unknown_action",
        custom_error_message=(
            "is not an action the platform runs: use wait, click, write, press, scroll, screenshot,"
            " scrape or executeJavascript"
        ),
    ),
]
Actions = Annotated[list[Action], Field(max_length=MAX_ACTIONS, description="Browser actions, in order")]


def actions_json(actions: list[Action]) -> tuple[dict[str, Any], ...]:
    """The actions as the spider runs them: Firecrawl's own field names, nothing unset."""
    return tuple(
        action.model_dump(include=set(type(action).model_fields), exclude_none=True) for action in actions
    )
