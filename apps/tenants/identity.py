"""Who is asking, remembered for a minute: the signed-in user, and their membership (with its
workspace) for a workspace slug. Every page of the app needs both, and each was a database query
on every request.

Entries carry the user's *generation*, kept in the shared cache; an entry counts only while its
generation is current. Saving or deleting the user, one of their memberships, or a workspace
they belong to moves the generation on -- at once and again when the transaction commits -- so
a removed member, a changed role, a disabled workspace or a changed password applies from the
next request on, in every process, even when a request read the old row while the change was
committing (``apps/core/generations.py``; the API keys' cache works the same way). Changes made
with ``QuerySet.update()`` send no signal; the entries' minute-long lifetime bounds those, and
Parley's services make none to these tables.

Only with Redis (``REDIS_URL``): without it the shared cache is a folder of files, slower to read
than the queries it would save.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.core.generations import generations_move_on, remembered

from .models import Membership, Tenant

ENTRY_SECONDS = 60


def enabled() -> bool:
    return bool(settings.REDIS_URL)


def _generation_key(user_id: Any) -> str:
    return f"parley:identity-gen:{user_id}"


def _user_key(user_id: Any) -> str:
    return f"parley:identity-user:{user_id}"


def _membership_key(user_id: Any, tenant_slug: str) -> str:
    return f"parley:identity-membership:{user_id}:{tenant_slug}"


def user_remembered(user_id: Any, load: Callable[[], Any]) -> Any:
    if not enabled():
        return load()
    return remembered(entry_key=_user_key(user_id), generation_key=_generation_key(user_id), load=load,
                      timeout=ENTRY_SECONDS)


def membership_remembered(user_id: Any, tenant_slug: str, load: Callable[[], Membership | None]) -> Membership | None:
    """The user's membership (with its tenant) in the workspace ``tenant_slug``, as ``load``
    finds it."""
    if not enabled():
        return load()
    return remembered(entry_key=_membership_key(user_id, tenant_slug), generation_key=_generation_key(user_id),
                      load=load, timeout=ENTRY_SECONDS)


def identities_forget(user_ids: Iterable[Any]) -> None:
    """Make every remembered entry of these users stale, now and once the transaction commits."""
    if enabled():
        generations_move_on(_generation_key(user_id) for user_id in user_ids if user_id is not None)


class CachedModelBackend(ModelBackend):
    """Django's ``ModelBackend``, with the user of each request remembered as above (the
    session's password hash is still checked against the remembered user's on every request)."""

    def get_user(self, user_id: Any) -> Any:
        return user_remembered(user_id, lambda: ModelBackend.get_user(self, user_id))


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="identity_user_saved")
@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="identity_user_deleted")
def _user_changed(sender, instance, **kwargs) -> None:
    identities_forget([instance.pk])


@receiver(post_save, sender=Membership, dispatch_uid="identity_membership_saved")
@receiver(post_delete, sender=Membership, dispatch_uid="identity_membership_deleted")
def _membership_changed(sender, instance: Membership, **kwargs) -> None:
    identities_forget([instance.user_id])


@receiver(post_save, sender=Tenant, dispatch_uid="identity_tenant_saved")
@receiver(post_delete, sender=Tenant, dispatch_uid="identity_tenant_deleted")
def _tenant_changed(sender, instance: Tenant, created: bool = False, **kwargs) -> None:
    if created:
        return
    identities_forget(Membership.objects.unscoped().filter(tenant_id=instance.pk).values_list("user_id", flat=True))

