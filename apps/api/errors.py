"""API errors as design.md's JSON: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from apps.core.exceptions import ApplicationError

CODES = {
    exceptions.NotAuthenticated: "unauthenticated",
    exceptions.AuthenticationFailed: "invalid_api_key",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ParseError: "invalid_json",
    exceptions.ValidationError: "invalid_request",
}


def error_body(code: str, message: str, details: Any = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def _code_for(exc: exceptions.APIException) -> str:
    for cls, code in CODES.items():
        if isinstance(exc, cls):
            own = exc.get_codes() if isinstance(exc, exceptions.AuthenticationFailed) else None
            return own if isinstance(own, str) and own != "authentication_failed" else code
    return "error"


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(exc.as_dict(), status=exc.http_status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "Not allowed.")
    response = exception_handler(exc, context)
    if response is None:
        return None
    code = _code_for(exc)
    if isinstance(exc, exceptions.ValidationError):
        message = "The request is not valid; see details."
        details = exc.detail
    elif isinstance(exc, exceptions.Throttled):
        message = f"Too many requests; retry in {int(exc.wait or 1)} s."
        details = {"retry_after": int(exc.wait or 1)}
    else:
        message = str(exc.detail)
        details = {}
    response.data = error_body(code, message, details)
    return response
