"""Shared pieces of the OpenAPI description: documented error answers with examples."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse

from .errors import error_body


def error_response(description: str, code: str, message: str, details: dict | None = None,
           *more: tuple[str, str, dict | None]) -> OpenApiResponse:
    """A documented error answer with an example per error code it may carry."""
    bodies = [(code, message, details), *more]
    return OpenApiResponse(response=OpenApiTypes.OBJECT, description=description, examples=[
        OpenApiExample(name, value=error_body(name, text, extra)) for name, text, extra in bodies
    ])


AUTH_ERRORS = {
    401: error_response("Missing, malformed or revoked API key.", "unauthenticated",
                "Authentication required: send 'Authorization: Bearer <api key>' or 'X-API-Key: <api key>'."),
    429: error_response("Too many requests for this key; retry after the Retry-After header's seconds.", "rate_limited",
                "Too many requests; retry in 12 s.", {"retry_after": 12}),
}
IDEMPOTENCY_KEY_INVALID = ("invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters.", None)
IDEMPOTENCY_KEY_REUSED = ("idempotency_key_reused",
                          "Idempotency-Key 'k1' was already used with a different request.", None)
