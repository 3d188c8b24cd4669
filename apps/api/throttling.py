"""Per-key rate limit: the tenant's ``api_requests_per_minute`` (100 by default), counted in
fixed one-minute windows in the cache -- Redis when REDIS_URL is set, so every web process
shares the count. On Redis a request costs one round trip (INCR and EXPIRE, pipelined);
other cache backends count with add/incr."""

from __future__ import annotations

import math
import time

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.tenants.models import ApiKey

WINDOW_SECONDS = 60
KEY_SECONDS = WINDOW_SECONDS + 5


def _count_redis(cache: RedisCache, key: str) -> int:
    # The raw client of Django's Redis cache: Django's incr() is EXISTS + INCR, after a failed
    # add() -- three round trips where one will do. The key is namespaced like the cache's own.
    name = cache.make_and_validate_key(key)
    pipe = cache._cache.get_client(name, write=True).pipeline(transaction=False)
    pipe.incr(name)
    pipe.expire(name, KEY_SECONDS)
    count, _ = pipe.execute()
    return int(count)


def _count_cache(cache, key: str) -> int:
    if cache.add(key, 1, timeout=KEY_SECONDS):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=KEY_SECONDS)
        return 1


def count_request(key: str) -> int:
    """Add one to the counter ``key`` (created when missing, gone a little after its window)
    and return the new count."""
    cache = caches["default"]
    return _count_redis(cache, key) if isinstance(cache, RedisCache) else _count_cache(cache, key)


class ApiKeyThrottle(BaseThrottle):
    def allow_request(self, request: Request, view) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return True
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        count = count_request(f"parley:throttle:{api_key.pk}:{window}")
        self.wait_seconds = math.ceil((window + 1) * WINDOW_SECONDS - now)
        return count <= api_key.tenant.api_requests_per_minute

    def wait(self) -> float:
        return self.wait_seconds
