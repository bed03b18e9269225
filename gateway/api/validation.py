"""Request bodies and query strings read into the dialects' models; what does not fit is a 400 that
names the field and says what it must be, in the words every dialect shares."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from starlette.requests import Request

from gateway.api.models.fields import UNION_TAG
from gateway.errors import BadRequest
from gateway.http import json_object

M = TypeVar("M", bound=BaseModel)

# What a value of the wrong JSON type must be instead, by pydantic's error type.
_MUST_BE = {
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
}
_QUOTED = re.compile(r"'([^']*)'")


async def parse_body(request: Request, model: type[M]) -> M:
    """The request's JSON body as ``model``, or a 400 saying what is wrong with it."""
    return parse(model, await json_object(request))


def parse(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(explain(exc.errors(include_url=False, include_input=False), model)) from None


def parse_query(request: Request, model: type[M]) -> M:
    """The query string as ``model``; an empty value counts as absent."""
    values = {name: value for name, value in request.query_params.items() if value != ""}
    return parse(model, values)


def explain(errors: list[ErrorDetails], model: type[BaseModel]) -> str:
    """One sentence for the first problem (or for all unknown fields at once)."""
    unknown = [error["loc"] for error in errors if error["type"] == "extra_forbidden"]
    if unknown:
        names = ", ".join(_where(loc) for loc in unknown)
        if all(len(loc) == 1 for loc in unknown):
            return f"unknown fields: {names}; this takes {', '.join(model.model_fields)}"
        return f"unknown fields: {names}"
    error = errors[0]
    where = _where(error["loc"])
    problem = _problem(error)
    return f"{where} {problem}" if where else problem


def _problem(error: ErrorDetails) -> str:
    kind, context = error["type"], error.get("ctx") or {}
    if kind == "value_error":
        # Our own validators phrase what follows the field's name ("must be a two-letter code").
        return str(context.get("error", error["msg"]))
    if kind in _MUST_BE:
        return _MUST_BE[kind]
    if kind in ("literal_error", "enum"):
        return f"must be one of {', '.join(_QUOTED.findall(str(context.get('expected', ''))))}"
    if kind == "missing":
        return "is required"
    bound = context.get("ge", context.get("gt", context.get("le", context.get("lt"))))
    length = context.get("min_length", context.get("max_length"))
    phrases = {
        "greater_than_equal": f"must be at least {bound}",
        "greater_than": f"must be more than {bound}",
        "less_than_equal": f"must be at most {bound}",
        "less_than": f"must be less than {bound}",
        "too_short": f"must hold at least {length} {'item' if length == 1 else 'items'}",
        "too_long": f"may hold at most {length} items",
        "string_too_short": f"must be at least {length} characters long"
        if length != 1
        else "must not be empty",
        "string_too_long": f"may be at most {length} characters long",
        "string_pattern_mismatch": f"must match {context.get('pattern')}",
    }
    if kind in phrases:
        return phrases[kind]
    return f"is not valid: {error['msg']}"


def _where(loc: tuple[int | str, ...]) -> str:
    """``wait_config.wait_until``, ``includeTags[2]``."""
    where = ""
    for part in loc:
        if isinstance(part, str) and part.startswith(UNION_TAG):
            continue
        if isinstance(part, int):
            where += f"[{part}]"
        else:
            where += f".{part}" if where else part
    return where
