"""Which key (and tenant) a presented API key is, remembered in the cache for a minute so that
a request does not look the key up in the database every time.

Entries are keyed by the SHA-256 of the presented key (what the database stores), so only a
key that matched its row once can hit. Each key also has a *generation* in the cache; an entry
counts only while it carries the current generation. Saving or deleting the key, or saving its
tenant, moves the generation on -- at once and again when the transaction commits -- so a
revoked key, a disabled workspace or a changed rate limit applies from the next request on,
in every web process, even when a request read the old row while the change was committing.
Changes made with ``QuerySet.update()`` send no signal; the entry's minute-long lifetime
bounds those.
"""

from __future__ import annotations

import secrets

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.tenants.models import ApiKey, Tenant
from apps.tenants.selectors import api_key_find
from apps.tenants.services import api_key_touch, hash_api_key

ENTRY_SECONDS = 60


def _entry_key(hashed: str) -> str:
    return f"parley:apikey:{hashed}"


def _generation_key(hashed: str) -> str:
    return f"parley:apikey-gen:{hashed}"


def api_key_resolve(*, plaintext: str) -> ApiKey | None:
    """The key row (with its tenant) matching ``plaintext``, revoked or not, or None. A
    database lookup -- and the ``last_used_at`` stamp, at most once a minute -- happens only
    when the cache has no current entry."""
    hashed = hash_api_key(plaintext)
    entry_key, generation_key = _entry_key(hashed), _generation_key(hashed)
    found = cache.get_many([entry_key, generation_key])
    generation, entry = found.get(generation_key), found.get(entry_key)
    if generation is not None and entry is not None and entry[0] == generation:
        return entry[1]
    if generation is None:
        cache.add(generation_key, secrets.token_hex(8), timeout=None)
        generation = cache.get(generation_key)
    api_key = api_key_find(plaintext=plaintext)
    if api_key is None:
        return None  # unknown keys are not remembered: guesses must not fill the cache
    if api_key.revoked_at is None and api_key.tenant.is_active:
        api_key_touch(api_key=api_key)
    if generation is not None:
        cache.set(entry_key, (generation, api_key), timeout=ENTRY_SECONDS)
    return api_key


def api_keys_forget(hashed_keys: list[str]) -> None:
    """Make the cached entries of these keys stale, now and once the transaction commits."""
    if not hashed_keys:
        return

    def bump() -> None:
        cache.set_many({_generation_key(hashed): secrets.token_hex(8) for hashed in hashed_keys}, timeout=None)

    bump()
    transaction.on_commit(bump)


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
