"""Field types that several dialects' bodies share, each checked one way with one wording.

A validator's message says what follows the field's name ("must be a two-letter code such as US");
``gateway.api.validation`` puts the name in front.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from cssselect import ExpressionError, GenericTranslator, SelectorError
from pydantic import AfterValidator, BaseModel, ConfigDict, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from gateway.headers import HOP_BY_HOP

# A discriminated union's tags start with this: an error's location leaves them out.
UNION_TAG = "~"


class Body(BaseModel):
    """A request body: JSON types as JSON has them (no "1" for 1), and keys beyond those listed,
    which the real SDKs send."""

    model_config = ConfigDict(extra="allow", strict=True)


class Query(BaseModel):
    """A query string: every value arrives as text and is read as the field's type."""

    model_config = ConfigDict(extra="allow")


_COUNTRY = re.compile(r"[A-Za-z]{2}")


def _country(value: str) -> str:
    if not _COUNTRY.fullmatch(value):
        raise ValueError("must be a two-letter country code such as US")
    return value.upper()


CountryCode = Annotated[
    str,
    AfterValidator(_country),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z]{2}$", "examples": ["US"]}),
]


def _short_strings(max_items: int, max_length: int, description: str) -> WithJsonSchema:
    """How a list of a few short, non-empty strings is documented."""
    return WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": max_length},
            "maxItems": max_items,
            "description": description,
        }
    )


MAX_SELECTORS = 100
MAX_SELECTOR_LENGTH = 500


def css_selector_problem(selector: str, max_length: int = MAX_SELECTOR_LENGTH) -> str | None:
    """What ``selector`` is when it cannot be used on a page (checking it stays cheap), or None."""
    if not selector.strip():
        return "an empty selector"
    if len(selector) > max_length:
        return f"a selector longer than {max_length} characters"
    try:
        GenericTranslator().css_to_xpath(selector)
    except (SelectorError, ExpressionError, RecursionError) as exc:
        return f"{selector[:100]!r}, which is not a CSS selector this platform can use ({exc})"
    return None


def _css_selectors(selectors: list[str]) -> list[str]:
    if len(selectors) > MAX_SELECTORS:
        raise ValueError(f"may hold at most {MAX_SELECTORS} selectors")
    for selector in selectors:
        problem = css_selector_problem(selector)
        if problem:
            raise ValueError(f"holds {problem}")
    return selectors


CssSelectors = Annotated[
    list[str],
    AfterValidator(_css_selectors),
    _short_strings(MAX_SELECTORS, MAX_SELECTOR_LENGTH, "CSS selectors"),
]


def _request_headers(headers: dict[str, str]) -> dict[str, str]:
    refused = sorted(name for name in headers if name.lower() in HOP_BY_HOP)
    if refused:
        raise ValueError(f"may not include {', '.join(refused)}: these headers cannot be set")
    return dict(headers)


MAX_PATTERNS = 100
MAX_PATTERN_LENGTH = 500


def _path_patterns(patterns: list[str]) -> list[str]:
    if len(patterns) > MAX_PATTERNS:
        raise ValueError(f"may hold at most {MAX_PATTERNS} patterns")
    for pattern in patterns:
        if not pattern:
            raise ValueError("holds an empty pattern")
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise ValueError(f"holds a pattern longer than {MAX_PATTERN_LENGTH} characters")
        try:
            re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            raise ValueError(f"holds {pattern[:100]!r}, which is not a regular expression ({exc})") from None
    return patterns


# Regular expressions on a URL's path: few and short, so checking every link against them is cheap.
PathPatterns = Annotated[
    list[str],
    AfterValidator(_path_patterns),
    _short_strings(MAX_PATTERNS, MAX_PATTERN_LENGTH, "Regular expressions a page's path is matched against"),
]

# Headers sent with every request of a batch; hop-by-hop headers and Host are refused.
RequestHeaders = Annotated[dict[str, str], AfterValidator(_request_headers)]


def _refuse(value: Any) -> Any:
    if value:
        raise ValueError("is not supported yet")
    return value


# An option another service offers that the platform cannot honour yet: refused, never ignored.
NotSupportedYet = SkipJsonSchema[Annotated[Any, AfterValidator(_refuse)]]
# A switch the platform can leave off but not turn on yet.
NotSupportedWhenTrue = Annotated[bool | None, AfterValidator(_refuse)]


def _refuse_off(value: bool | None) -> bool | None:
    if value is False:
        raise ValueError("cannot be false: the platform always works this way")
    return value


# A switch the platform always has on.
NotSupportedWhenFalse = Annotated[bool | None, AfterValidator(_refuse_off)]
