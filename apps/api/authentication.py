"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. A key belongs to one
tenant; every request it authenticates runs in that tenant's scope."""

from __future__ import annotations

import time

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.tenants.models import ApiKey

from .keycache import api_key_resolve_counting
from .throttling import KEY_SECONDS, Counted, counter_key, current_window, is_throttled_view


def presented_key(request: Request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip() or " " in value.strip():
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <api key>'.",
                                                  code="malformed_credentials")
        return value.strip()
    key = request.META.get("HTTP_X_API_KEY", "").strip()
    return key or None


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[None, ApiKey] | None:
        plaintext = presented_key(request)
        if plaintext is None:
            return None
        # Cached; stamps last_used_at when it reads the row. Where the view is throttled, the
        # request is counted in the same round trip to the cache (ApiKeyThrottle reads it).
        view = (request.parser_context or {}).get("view")
        window = current_window(time.time())
        counter = (lambda key: counter_key(key.pk, window)) if is_throttled_view(view) else None
        api_key, counted = api_key_resolve_counting(plaintext=plaintext, counter=counter, counter_seconds=KEY_SECONDS)
        if counted is not None:
            request.parley_counted = Counted(window, counted[1])
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        if api_key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key was revoked.", code="api_key_revoked")
        if not api_key.tenant.is_active:
            raise exceptions.AuthenticationFailed("This workspace is disabled.", code="tenant_disabled")
        return (None, api_key)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="parley"'


class HasApiKey(BasePermission):
    message = "Authentication required: send 'Authorization: Bearer <api key>' or 'X-API-Key: <api key>'."

    def has_permission(self, request: Request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            return True
        raise exceptions.NotAuthenticated(self.message)
