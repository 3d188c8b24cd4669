"""Per-key rate limit: the tenant's ``api_requests_per_minute`` (100 by default), counted in
fixed one-minute windows in the cache -- Redis when REDIS_URL is set, so every web process
shares the count.

The request is counted by the authentication, in the same round trip to the cache that checks
its key is still current (``apps/api/keycache.py``); this throttle then compares that count with
the tenant's limit. A request that was not counted there (a key read from the database) is
counted here."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.core.cache import count
from apps.tenants.models import ApiKey

WINDOW_SECONDS = 60
KEY_SECONDS = WINDOW_SECONDS + 5


@dataclass(frozen=True)
class Counted:
    """A request counted against its key by the authentication: in which window, and the count."""

    window: int
    count: int


def counter_key(api_key_id: int, window: int) -> str:
    return f"parley:throttle:{api_key_id}:{window}"


def current_window(now: float) -> int:
    return int(now // WINDOW_SECONDS)


def count_request(key: str) -> int:
    """Add one to the counter ``key`` (created when missing, gone a little after its window)
    and return the new count."""
    return count(key, timeout=KEY_SECONDS)[1]


def is_throttled_view(view) -> bool:
    return any(issubclass(throttle, ApiKeyThrottle) for throttle in getattr(view, "throttle_classes", ()))


class ApiKeyThrottle(BaseThrottle):
    def allow_request(self, request: Request, view) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return True
        now = time.time()
        counted = getattr(request, "parley_counted", None)
        if not isinstance(counted, Counted):
            window = current_window(now)
            counted = Counted(window, count_request(counter_key(api_key.pk, window)))
        self.wait_seconds = max(1, math.ceil((counted.window + 1) * WINDOW_SECONDS - now))
        return counted.count <= api_key.tenant.api_requests_per_minute

    def wait(self) -> float:
        return self.wait_seconds
