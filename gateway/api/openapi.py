"""``GET /openapi.json``: an OpenAPI 3.1 document of every public route, built from the operations
each dialect declares and the pydantic models they name."""

from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api.operations import JSON, MULTIPART, PLATFORM, Operation

_REF = "#/components/schemas/{model}"
_STRING = {"type": "string"}
ERROR_DESCRIPTIONS = {
    400: "The request is not valid (the message says why)",
    401: "Missing or invalid API key",
    402: "The key's credits are spent",
    403: "This key may not do that",
    404: "Not found (or another tenant's)",
    408: "The work did not finish within its timeout",
    409: "Not in a state that allows this",
    410: "Gone",
    422: "The page answered, but an action could not be done on it (the message says which)",
    429: "Rate limit exceeded; see Retry-After",
    500: "Unexpected error (no details are given)",
    502: "The page got no answer from its site (the message says why)",
    503: "No scrapyd node answers",
}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer KEY"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
    "apiToken": {"type": "apiKey", "in": "header", "name": "x-api-token"},
    "basic": {"type": "http", "scheme": "basic", "description": "The key as the password (scrapyd clients)"},
}


def openapi_document(operations: list[Operation], *, title: str, version: str) -> dict[str, Any]:
    models = _models(operations)
    refs, definitions = models_json_schema(
        [(model, "validation") for model in models], ref_template=_REF, title=title
    )
    schema_of = {model: refs[(model, "validation")] for model in models}
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation, schema_of)
    dialects = {operation.dialect.name: operation.dialect for operation in operations}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "tags": [{"name": name, "description": dialect.description} for name, dialect in dialects.items()],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "responses": _error_responses(operations, schema_of),
            "securitySchemes": SECURITY_SCHEMES,
        },
        "security": [{name: []} for name in SECURITY_SCHEMES],
    }


def _error_name(operation: Operation, status: int) -> str:
    return f"{operation.error_model.__name__}{status}"


def _error_responses(operations: list[Operation], schema_of: dict[type[BaseModel], Any]) -> dict[str, Any]:
    """Each error answer once, in the shape of the dialect that gives it."""
    return {
        _error_name(operation, status): {
            "description": ERROR_DESCRIPTIONS[status],
            "content": {JSON: {"schema": schema_of[operation.error_model]}},
        }
        for operation in operations
        for status in operation.errors
    }


def _models(operations: list[Operation]) -> list[type[BaseModel]]:
    found: dict[type[BaseModel], None] = {}
    for operation in operations:
        for candidate in (
            operation.body,
            operation.query,
            _item_model(operation.response),
            operation.error_model,
            *(_item_model(answer) for answer in operation.other_responses.values()),
        ):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                found[candidate] = None
    return list(found)


def _item_model(answer: Any) -> Any:
    """The model of ``list[Model]``, or ``answer`` itself."""
    return get_args(answer)[0] if get_origin(answer) is list else answer


def _answer_schema(answer: Any, schema_of: dict[type[BaseModel], Any]) -> dict[str, Any]:
    if get_origin(answer) is list:
        return {"type": "array", "items": schema_of[get_args(answer)[0]]}
    if isinstance(answer, type) and issubclass(answer, BaseModel):
        return dict(schema_of[answer])
    return {"type": "object"}


def _operation(operation: Operation, schema_of: dict[type[BaseModel], Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": [operation.dialect.name],
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": operation.path_schemas.get(name, _STRING)}
        for name in operation.path_parameters
    ]
    if operation.query is not None:
        parameters += _query_parameters(operation.query)
    parameters += [
        {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
        for name in operation.headers
    ]
    if parameters:
        spec["parameters"] = parameters
    if operation.body is not None:
        schema = schema_of[operation.body]
        spec["requestBody"] = {
            "required": operation.body_required,
            "content": {media: {"schema": schema} for media in operation.body_media},
        }
        if MULTIPART in operation.body_media:
            spec["requestBody"]["content"][MULTIPART]["encoding"] = {
                "egg": {"contentType": "application/octet-stream"}
            }
    responses: dict[str, Any] = {str(operation.status): _success(operation, operation.response, schema_of)}
    for status, answer in operation.other_responses.items():
        responses[str(status)] = {
            "description": "See the body",
            "content": {JSON: {"schema": _answer_schema(answer, schema_of)}},
        }
    for status in operation.errors:
        if operation.public and status == 401:
            continue
        responses[str(status)] = {"$ref": f"#/components/responses/{_error_name(operation, status)}"}
    spec["responses"] = responses
    if operation.public:
        spec["security"] = []
    return spec


def _success(operation: Operation, answer: Any, schema_of: dict[type[BaseModel], Any]) -> dict[str, Any]:
    if operation.response_media != JSON:
        schema = {"type": "string"}
        if operation.response_media == "image/png":
            schema["contentMediaType"] = "image/png"
        return {"description": "OK", "content": {operation.response_media: {"schema": schema}}}
    return {"description": "OK", "content": {JSON: {"schema": _answer_schema(answer, schema_of)}}}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF, by_alias=True)
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


async def openapi_json(request: Request) -> JSONResponse:
    document: dict[str, Any] = request.app.state.openapi
    return JSONResponse(document)


OPERATIONS = [
    Operation("GET", "/openapi.json", openapi_json, PLATFORM, "This document", errors=(429, 500), public=True)
]
