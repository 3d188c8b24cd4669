"""Numbers as the request paths need them, kept per process instead of a query per request: the
webhook intake's routes (the number a callback speaks for and its app secret, stored encrypted:
a Fernet decrypt per load) and the numbers a send may go from.

It is safe because every change to a number invalidates it: saving or deleting one bumps a
generation in the shared cache (and clears this process's entries at once, and again when the
change commits); each process checks that generation at most every GENERATION_CHECK_SECONDS,
and drops any entry older than TTL_SECONDS whatever happens (a bulk ``.update()`` sends no
signal). The dispatcher reads a number again before it sends from it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from .models import PhoneNumber

logger = logging.getLogger(__name__)

GENERATION_KEY = "parley:number-cache-generation"
GENERATION_CHECK_SECONDS = 1.0
TTL_SECONDS = 30.0
MAX_ENTRIES = 10_000  # unknown ids from the internet must not grow it for ever


class NumberCache:
    def __init__(self) -> None:
        self._entries: dict[tuple, tuple[float, object]] = {}
        self._generation: object = None
        self._checked_at = -1e9
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _check_generation(self, now: float) -> None:
        if now - self._checked_at < GENERATION_CHECK_SECONDS:
            return
        try:
            generation = cache.get(GENERATION_KEY)
        except Exception:  # the shared cache is down: trust nothing cached, look numbers up again
            logger.exception("could not read the number cache's generation")
            generation = object()
        with self._lock:
            if generation != self._generation:
                self._entries.clear()
                self._generation = generation
            self._checked_at = now

    def get(self, key: tuple, load: Callable[[], Any]) -> Any:
        now = time.monotonic()
        self._check_generation(now)
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < TTL_SECONDS:
            return entry[1]
        value = load()
        with self._lock:
            if len(self._entries) > MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (now, value)
        return value


number_cache = NumberCache()


def numbers_invalidate() -> None:
    """A number changed: forget every cached entry, here at once and in every process within
    GENERATION_CHECK_SECONDS."""
    number_cache.clear()
    try:
        cache.set(GENERATION_KEY, secrets.token_hex(8), timeout=None)
    except Exception:  # the cache being down must not fail the save; the TTL still applies
        logger.exception("could not publish the number cache's generation")


def tenant_numbers(tenant_id: int) -> tuple[PhoneNumber, ...]:
    """Every number of a workspace, whatever its status, in id order, without its credentials:
    what a send needs to pick the number it goes from. The instances are shared: copy one
    before handing it out."""
    return number_cache.get(("numbers", tenant_id), lambda: tuple(
        PhoneNumber.objects.for_tenant(tenant_id).defer("credentials").order_by("id")))


def _number_changed(sender: Any, **kwargs: Any) -> None:
    # Now, and again once the change is committed: a process that reloads the number in
    # between still reads the old row.
    numbers_invalidate()
    transaction.on_commit(numbers_invalidate, robust=True)


post_save.connect(_number_changed, sender=PhoneNumber, weak=False, dispatch_uid="phone-number-cache-save")
post_delete.connect(_number_changed, sender=PhoneNumber, weak=False, dispatch_uid="phone-number-cache-delete")
