"""Domain errors. Services raise them; APIs map them to the JSON error format of design.md and
HTMX views show them inline."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A domain rule said no. ``code`` is the stable machine-readable code of design.md."""

    code = "invalid_request"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None,
                 http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if http_status:
            self.http_status = http_status
        self.details = details or {}

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class PolicyError(ApplicationError):
    """A send refused by policy before it is queued (window closed, opted out, ...)."""

    http_status = 422
