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

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.core.generations import generations_move_on, remembered
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
    when the cache has no current entry; unknown keys are not remembered, so guesses do not
    fill the cache."""
    hashed = hash_api_key(plaintext)

    def load() -> ApiKey | None:
        api_key = api_key_find(plaintext=plaintext)
        if api_key is not None and api_key.revoked_at is None and api_key.tenant.is_active:
            api_key_touch(api_key=api_key)
        return api_key

    return remembered(entry_key=_entry_key(hashed), generation_key=_generation_key(hashed), load=load,
                      timeout=ENTRY_SECONDS)


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
