"""Per-key rate limit: the tenant's ``api_requests_per_minute`` (100 by default), counted in
fixed one-minute windows in the cache -- Redis when REDIS_URL is set, so every web process
shares the count; one atomic INCR per request, whatever the limit."""

from __future__ import annotations

import math
import time

from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.tenants.models import ApiKey

WINDOW_SECONDS = 60


class ApiKeyThrottle(BaseThrottle):
    def allow_request(self, request: Request, view) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return True
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"parley:throttle:{api_key.pk}:{window}"
        if cache.add(key, 1, timeout=WINDOW_SECONDS + 5):
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=WINDOW_SECONDS + 5)
                count = 1
        self.wait_seconds = math.ceil((window + 1) * WINDOW_SECONDS - now)
        return count <= api_key.tenant.api_requests_per_minute

    def wait(self) -> float:
        return self.wait_seconds
