"""Which key (and tenant) a presented API key is, remembered in the cache for a minute so that
a request does not look the key up in the database every time.

Entries are keyed by the SHA-256 of the presented key (what the database stores), so only a
key that matched its row once can hit. Each key also has a *generation* in the cache; an entry
counts only while it carries the current generation. Saving or deleting the key, or saving its
tenant, moves the generation on -- at once and again when the transaction commits -- so a
revoked key, a disabled workspace or a changed rate limit applies from the next request on,
in every web process, even when a request read the old row while the change was committing.
Changes made with ``QuerySet.update()`` send no signal; the entry's minute-long lifetime
bounds those (plus the few seconds a process remembers it, below).

A web process also remembers a key it resolved, with its generation, for MEMO_SECONDS: a
request for it then reads only the generation from the cache -- in the same round trip that
counts the request for the throttle -- and uses the remembered key while the generation is
unchanged. The shared generation stays the authority, so a revocation still applies from the
next request on, in every process; what the process saves is a second round trip and
unpickling the key and its workspace on every request.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.core.cache import count
from apps.core.generations import generations_move_on, remembered_with_generation
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.selectors import api_key_find
from apps.tenants.services import api_key_touch, hash_api_key

ENTRY_SECONDS = 60
MEMO_SECONDS = 10.0
MEMO_MAX_ENTRIES = 10_000  # keys are only remembered once they matched a row, but bound it anyway


def _entry_key(hashed: str) -> str:
    return f"parley:apikey:{hashed}"


def _generation_key(hashed: str) -> str:
    return f"parley:apikey-gen:{hashed}"


class _Memo:
    """This process's keys: hashed key -> (until, generation, key with its tenant)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, object, ApiKey]] = {}
        self._lock = threading.Lock()

    def get(self, hashed: str, now: float) -> tuple[object, ApiKey] | None:
        entry = self._entries.get(hashed)
        if entry is None or entry[0] <= now:
            return None
        return entry[1], entry[2]

    def put(self, hashed: str, generation: object, api_key: ApiKey, now: float) -> None:
        with self._lock:
            if len(self._entries) >= MEMO_MAX_ENTRIES:
                self._entries.clear()
            self._entries[hashed] = (now + MEMO_SECONDS, generation, api_key)

    def forget(self, hashed: str) -> None:
        with self._lock:
            self._entries.pop(hashed, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


key_memo = _Memo()


def _own_copy(api_key: ApiKey) -> ApiKey:
    """The remembered key is shared by the process's threads: each request gets its own."""
    mine = copy.copy(api_key)
    mine.tenant = copy.copy(api_key.tenant)
    return mine


def api_key_resolve(*, plaintext: str) -> ApiKey | None:
    """The key row (with its tenant) matching ``plaintext``, revoked or not, or None. A
    database lookup -- and the ``last_used_at`` stamp, at most once a minute -- happens only
    when the cache has no current entry; unknown keys are not remembered, so guesses do not
    fill the cache."""
    return api_key_resolve_counting(plaintext=plaintext)[0]


def api_key_resolve_counting(*, plaintext: str, counter: Callable[[ApiKey], str] | None = None,
                             counter_seconds: int = 0) -> tuple[ApiKey | None, tuple[str, int] | None]:
    """:func:`api_key_resolve`, and with ``counter`` (the counter key of a resolved key) that
    counter counted: ``(key, (counter key, count))``. When this process remembers the key, one
    round trip to the cache both checks its generation and counts."""
    hashed = hash_api_key(plaintext)
    generation_key = _generation_key(hashed)
    now = time.monotonic()
    counted = None
    memo = key_memo.get(hashed, now)
    if memo is not None:
        generation, api_key = memo
        if counter is None:
            current = cache.get(generation_key)
        else:
            name = counter(api_key)
            current, number = count(name, timeout=counter_seconds, read_key=generation_key)
            counted = (name, number)
        if current is not None and current == generation:
            return _own_copy(api_key), counted
        key_memo.forget(hashed)

    def load() -> ApiKey | None:
        api_key = api_key_find(plaintext=plaintext)
        if api_key is not None and api_key.revoked_at is None and api_key.tenant.is_active:
            api_key_touch(api_key=api_key)
        return api_key

    api_key, generation = remembered_with_generation(entry_key=_entry_key(hashed), generation_key=generation_key,
                                                     load=load, timeout=ENTRY_SECONDS)
    if api_key is None:
        return None, None
    if generation is not None:
        key_memo.put(hashed, generation, api_key, now)
        api_key = _own_copy(api_key)
    if counter is not None and (counted is None or counted[0] != counter(api_key)):
        name = counter(api_key)
        counted = (name, count(name, timeout=counter_seconds)[1])
    return api_key, counted


def api_keys_forget(hashed_keys: list[str]) -> None:
    """Make the cached entries of these keys stale, now and once the transaction commits."""
    generations_move_on(_generation_key(hashed) for hashed in hashed_keys)


@receiver(post_save, sender=ApiKey, dispatch_uid="api_key_saved_forget")
@receiver(post_delete, sender=ApiKey, dispatch_uid="api_key_deleted_forget")
def _api_key_changed(sender, instance: ApiKey, **kwargs) -> None:
    if kwargs.get("update_fields") == frozenset({"last_used_at"}):
        return
    api_keys_forget([instance.hashed_key])


@receiver(post_save, sender=Tenant, dispatch_uid="tenant_saved_forget_api_keys")
def _tenant_changed(sender, instance: Tenant, created: bool, **kwargs) -> None:
    if created:
        return
    api_keys_forget(list(ApiKey.objects.for_tenant(instance).values_list("hashed_key", flat=True)))
