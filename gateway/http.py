"""What every route shares: errors as JSON, API keys, rate limits, path clean-up, body parsing."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import socket
from collections.abc import Iterable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.accounts.keys import ApiKey, ApiKeys
from gateway.accounts.ratelimit import RateLimiter
from gateway.errors import BadRequest, GatewayError, RateLimited, Unauthorized

log = logging.getLogger(__name__)

NODE_NAME = socket.gethostname()
MAX_JSON_BODY = 10 * 1024 * 1024
MAX_JSON_DEPTH = 32
_SLASHES = re.compile(r"/{2,}")


def is_scrapyd_route(path: str) -> bool:
    """scrapyd's JSON API lives at the host root; its clients expect scrapyd's error shape."""
    return path.endswith(".json") and path.count("/") == 1


FIRECRAWL_PREFIX = "/v2/"


def error_response(path: str, error: GatewayError) -> Response:
    """The one place where a domain error becomes an HTTP answer."""
    headers = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if is_scrapyd_route(path):
        body: dict[str, Any] = {"status": "error", "message": error.message, "node_name": NODE_NAME}
    else:
        body = {"error": error.message}
        if path.startswith(FIRECRAWL_PREFIX):
            # Firecrawl's shape, which its SDKs read: success false, and a code when there is one.
            body = {"success": False, **body}
            if error.code is not None:
                body["code"] = error.code
    return JSONResponse(body, status_code=error.status_code, headers=headers)


async def on_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(request.url.path, exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {404: "Not found.", 405: "Method not allowed."}
    error = GatewayError(messages.get(exc.status_code, exc.detail))
    error.status_code = exc.status_code
    return error_response(request.url.path, error)


async def on_unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request.url.path, GatewayError())


def api_key_of(request: Request) -> ApiKey:
    """The API key that authenticated this request (set by ``ApiKeyMiddleware``)."""
    key = request.scope.get("state", {}).get("api_key")
    if not isinstance(key, ApiKey):
        raise Unauthorized()
    return key


def presented_key(headers: Any) -> str | None:
    """The key from Authorization (Bearer, or Basic with the key as password), X-Api-Key or x-api-token."""
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return str(credentials)
    if scheme.lower() == "basic" and credentials:
        try:
            user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or user or None
    for header in ("x-api-key", "x-api-token"):
        value = headers.get(header, "").strip()
        if value:
            return str(value)
    return None


class CleanPathMiddleware:
    """Collapse ``//`` in paths: several clients join a base URL ending in ``/`` with ``/v2/...``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            scope = dict(scope)
            scope["path"] = _SLASHES.sub("/", scope["path"])
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


class ApiKeyMiddleware:
    """Every route but the public ones needs a live API key, within its rate limit."""

    def __init__(
        self,
        app: ASGIApp,
        keys: ApiKeys,
        limiter: RateLimiter,
        default_rate_per_minute: int,
        public_paths: Iterable[str] = (),
        public_prefixes: Iterable[str] = (),
        unlimited_prefixes: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.keys = keys
        self.limiter = limiter
        self.default_rate = default_rate_per_minute
        self.public_paths = frozenset(public_paths)
        self.public_prefixes = tuple(public_prefixes)
        # Public routes whose callers prove themselves otherwise (the spiders, with a batch's token)
        # and share one address, the node's. A wrong token costs a read; a guess needs 2**256 tries.
        self.unlimited_prefixes = tuple(unlimited_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        if self._public(scope["path"]):
            if scope["path"].startswith(self.unlimited_prefixes):
                await self.app(scope, receive, send)
                return
            # No key to count against: requests without one share a budget per client address.
            client = scope.get("client") or ("unknown", 0)
            retry_after = self.limiter.acquire(f"anonymous:{client[0]}", self.default_rate)
            if retry_after is not None:
                await error_response(scope["path"], RateLimited(retry_after))(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            key = await self._authenticate(request)
        except GatewayError as error:
            await error_response(scope["path"], error)(scope, receive, send)
            return
        scope.setdefault("state", {})["api_key"] = key
        await self.app(scope, receive, send)

    def _public(self, path: str) -> bool:
        return path in self.public_paths or path.startswith(self.public_prefixes)

    async def _authenticate(self, request: Request) -> ApiKey:
        plaintext = presented_key(request.headers)
        if plaintext is None:
            raise Unauthorized(
                "Missing API key: send it as 'Authorization: Bearer KEY', "
                "'X-Api-Key: KEY' or 'x-api-token: KEY'."
            )
        key = await self.keys.authenticate(plaintext)
        if key is None:
            raise Unauthorized("Invalid API key.")
        retry_after = self.limiter.acquire(key.id, key.rate_limit_per_minute or self.default_rate)
        if retry_after is not None:
            raise RateLimited(retry_after)
        return key


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 400 beyond ``limit`` bytes (before reading it all when declared)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(f"request body is larger than {limit} bytes")
    return bytes(body)


async def json_object(request: Request, limit: int = MAX_JSON_BODY) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says what is wrong with it."""
    body = await read_body(request, limit)
    if not body.strip():
        raise BadRequest("Request body must be a JSON object; it is empty.")
    try:
        value = json.loads(body)
    except RecursionError:
        raise BadRequest(f"Request body nests deeper than {MAX_JSON_DEPTH} levels.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest("Request body must be a JSON object.")
    check_json(value)
    return value


def check_json(value: Any) -> None:
    """Refuse a document nested deeper than ``MAX_JSON_DEPTH`` or holding text that is not valid
    Unicode (a lone surrogate from a ``\\ud800`` escape), which nothing downstream could store."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest(f"Request body nests deeper than {MAX_JSON_DEPTH} levels.")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest(
                    "Request body holds text that is not valid Unicode (a lone surrogate)."
                ) from None
