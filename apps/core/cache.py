"""Django's Redis cache, keeping one client per connection pool.

Django's ``RedisCacheClient.get_client()`` builds a new ``redis.Redis`` for every cache
operation, and each one registers some 200 response callbacks: on the API's send path
(key lookup, throttle, dispatch bell) that was a third of a millisecond of CPU per request.
A client over a connection pool is safe to share between threads, so one per pool is kept.

Also counters (:func:`count`) that read a key in the same round trip: the API's throttle
counts a request and checks its key's generation at once.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class _ReusingClient(RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = _ReusingClient


# -- counters and a read in one round trip ---------------------------------------------------


def _count_redis(cache: DjangoRedisCache, key: str, timeout: int, read_key: str | None) -> tuple[Any, int]:
    # The raw client of Django's Redis cache: Django's incr() is EXISTS + INCR, after a failed
    # add() -- three round trips where one will do. Keys are namespaced like the cache's own,
    # and the value read is decoded as the cache would decode it.
    name = cache.make_and_validate_key(key)
    pipe = cache._cache.get_client(name, write=True).pipeline(transaction=False)
    if read_key is not None:
        pipe.get(cache.make_and_validate_key(read_key))
    pipe.incr(name)
    pipe.expire(name, timeout)
    answers = pipe.execute()
    if read_key is None:
        return None, int(answers[0])
    raw = answers[0]
    return (None if raw is None else cache._cache._serializer.loads(raw)), int(answers[1])


def _count_other(cache: Any, key: str, timeout: int, read_key: str | None) -> tuple[Any, int]:
    value = cache.get(read_key) if read_key is not None else None
    if cache.add(key, 1, timeout=timeout):
        return value, 1
    try:
        return value, cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return value, 1


def count(key: str, *, timeout: int, read_key: str | None = None) -> tuple[Any, int]:
    """Add one to the counter ``key`` of the default cache (created when missing, gone
    ``timeout`` seconds after its last count) and return ``(value of read_key, new count)``.
    On Redis that is one round trip, however many keys; other caches take several."""
    cache = caches["default"]
    counter = _count_redis if isinstance(cache, DjangoRedisCache) else _count_other
    return counter(cache, key, timeout, read_key)
