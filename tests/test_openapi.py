"""``/openapi.json`` describes every public route, is a valid OpenAPI 3.1 document, and a bounded
property-based run of schemathesis against a live gateway, from that document, finds no 5xx, no
answer outside its documented shape and status codes, and no stack trace.

Every operation is called with a valid key (admin, so deploys and deletions are reached too) and
with an invalid one, on bodies and parameters that fit the document and on ones that do not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from gateway.app import api_document, create_app
from gateway.config import Settings
from gateway.platform import Platform
from tests.harness import Gateway, ScrapydNode

# Examples per operation and generation mode: a fixed budget (derandomised, so every run tries the
# same cases) that keeps the run near a minute and a half.
EXAMPLES = 60
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
STACK_TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/', "sqlalchemy.", "Error at 0x")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway of its own (its own node and store): what the fuzz creates stays there."""
    node = ScrapydNode(tmp_path_factory.mktemp("fuzz-node")).start()
    gateway = Gateway(
        tmp_path_factory.mktemp("fuzz-gateway"), node, env={"GATEWAY_RATE_LIMIT_PER_MINUTE": "100000"}
    ).start()
    yield gateway
    gateway.stop()
    node.stop()


@pytest.fixture(scope="module")
def document(fuzzed: Gateway) -> dict[str, Any]:
    response = httpx.get(f"{fuzzed.url}/openapi.json", timeout=10)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)
    # The fuzz below runs from the document the gateway serves.
    assert document == api_document()


def test_the_document_covers_every_public_route(document: dict[str, Any], tmp_path: Path) -> None:
    app = create_app(Platform(Settings(data_dir=tmp_path)))
    mounted = {
        (route.path, method.lower())
        for route in app.routes
        # The spiders' inputs and the operator's metrics are not the tenants' API.
        if isinstance(route, Route) and not route.path.startswith("/internal/") and route.path != "/metrics"
        for method in (route.methods or set()) - {"HEAD"}
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert mounted == documented
    for path, item in document["paths"].items():
        for method, operation in item.items():
            public = operation.get("security") == []
            errors = {"429", "500"} if public else {"400", "401", "402", "404", "409", "429", "500"}
            assert errors <= set(operation["responses"]), (method, path)
    assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey", "apiToken", "basic"}


schema = schemathesis.openapi.from_dict(api_document())
# Routes whose path has no parameter: a case that fills another route's parameter with one of them
# (GET /v1/batch/{job_id} with "jobs") is that route's call, checked as that route.
FIXED_PATHS = {
    (path, method.upper())
    for path, item in api_document()["paths"].items()
    if "{" not in path
    for method in item
}


def _served_elsewhere(case: Any) -> bool:
    return "{" in case.operation.path and (case.formatted_path, case.method.upper()) in FIXED_PATHS


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_no_operation_fails_with_a_valid_key(case: Any, fuzzed: Gateway) -> None:
    response = case.call(
        base_url=fuzzed.url, headers={"Authorization": f"Bearer {fuzzed.admin_key()}"}, timeout=60
    )
    if _served_elsewhere(case):
        _no_stack_trace(response.text)
        return
    case.validate_response(response, checks=CHECKS)
    _no_stack_trace(response.text)


@schema.parametrize()
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_every_operation_refuses_an_invalid_key(case: Any, fuzzed: Gateway) -> None:
    response = case.call(base_url=fuzzed.url, headers={"Authorization": "Bearer not-a-key"}, timeout=60)
    case.validate_response(response, checks=CHECKS)
    # Some cases try a method the route does not take (405, before any key is read).
    documented_method = case.method.upper() == case.operation.method.upper()
    if documented_method and case.operation.definition.raw.get("security") != []:
        assert response.status_code == 401, response.text
    _no_stack_trace(response.text)


def _no_stack_trace(text: str) -> None:
    for marker in STACK_TRACE_MARKERS:
        assert marker not in text
