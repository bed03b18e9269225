"""Domain errors. Services raise them; ``gateway.http`` turns them into HTTP answers in one place."""

from __future__ import annotations


class GatewayError(Exception):
    """An error a client can act on; ``message`` is shown to the client as is."""

    status_code = 500
    default_message = "An unexpected error occurred on the server."
    # A machine-readable name for the error, for dialects whose errors carry one (Firecrawl's code).
    code: str | None = None

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class BadRequest(GatewayError):
    status_code = 400
    default_message = "The request is not valid."


class Unauthorized(GatewayError):
    status_code = 401
    default_message = "Missing or invalid API key."


class PaymentRequired(GatewayError):
    status_code = 402
    default_message = "Payment required to access this resource."


class Forbidden(GatewayError):
    status_code = 403
    default_message = "This API key may not do that."


class NotFound(GatewayError):
    status_code = 404
    default_message = "Not found."


class Conflict(GatewayError):
    status_code = 409
    default_message = "The resource is not in a state that allows this."


class Gone(GatewayError):
    status_code = 410
    default_message = "This resource is gone."


class RateLimited(GatewayError):
    status_code = 429
    default_message = "Request rate limit exceeded. Please wait and try again later."

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NodeUnavailable(GatewayError):
    """No scrapyd node could do what was asked, because none answered."""

    status_code = 503
    default_message = "No scrapyd node is reachable right now. Please try again later."
