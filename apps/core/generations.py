"""Values remembered in the shared cache under a *generation*: an entry counts only while the
generation stored beside it is current, and moving the generation on makes every entry made
under the old one stale at once, in every process.

A change moves it on at once and again when its transaction commits, so a request that read
the old row while the change was committing cannot keep it: its entry carries the generation
of before the commit. Used for API keys (``apps/api/keycache.py``) and for the signed-in user
and membership (``apps/tenants/identity.py``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any

from django.core.cache import cache
from django.db import transaction


def remembered(*, entry_key: str, generation_key: str, load: Callable[[], Any], timeout: float) -> Any:
    """The current entry under ``entry_key``, or what ``load()`` returns, remembered for
    ``timeout`` seconds unless it is None: a failed lookup is not remembered, so guesses do
    not fill the cache."""
    return remembered_with_generation(entry_key=entry_key, generation_key=generation_key, load=load,
                                      timeout=timeout)[0]


def remembered_with_generation(*, entry_key: str, generation_key: str, load: Callable[[], Any],
                               timeout: float) -> tuple[Any, Any]:
    """:func:`remembered`, and the generation the value belongs to (None when the cache could
    not keep one): while the generation key still holds it, the value is current."""
    found = cache.get_many([entry_key, generation_key])
    generation, entry = found.get(generation_key), found.get(entry_key)
    if generation is not None and entry is not None and entry[0] == generation:
        return entry[1], generation
    if generation is None:
        cache.add(generation_key, secrets.token_hex(8), timeout=None)
        generation = cache.get(generation_key)
    value = load()
    if value is not None and generation is not None:
        cache.set(entry_key, (generation, value), timeout=timeout)
    return value, generation


def generations_move_on(generation_keys: Iterable[str]) -> None:
    """Make every entry remembered under these generations stale, now and once the
    transaction commits."""
    keys = list(dict.fromkeys(generation_keys))
    if not keys:
        return

    def bump() -> None:
        cache.set_many({key: secrets.token_hex(8) for key in keys}, timeout=None)

    bump()
    transaction.on_commit(bump)
