from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404
from django.utils.crypto import constant_time_compare

from .models import ApiKey, Membership, Tenant
from .services import KEY_PREFIX, hash_api_key


def membership_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    """The tenants a user belongs to, across tenants by design: this is the tenant picker."""
    return (Membership.objects.unscoped().filter(user=user, tenant__is_active=True)
            .select_related("tenant").order_by("tenant__name"))


def access_tenant(*, user: AbstractBaseUser, tenant_slug: str) -> tuple[Tenant, Membership]:
    """The tenant named in the URL and the user's membership in it; 404 for anyone else
    (another tenant's existence is not disclosed)."""
    if not user.is_authenticated:
        raise Http404("No such workspace")
    membership = (Membership.objects.unscoped().select_related("tenant")
                  .filter(user=user, tenant__slug=tenant_slug, tenant__is_active=True).first())
    if membership is None:
        raise Http404("No such workspace")
    return membership.tenant, membership


def api_key_find(*, plaintext: str) -> ApiKey | None:
    """The key matching ``plaintext`` whatever its state, or None. Looks up by prefix (not
    secret), then compares hashes in constant time."""
    if not plaintext.startswith(KEY_PREFIX) or "." not in plaintext:
        return None
    prefix, _, secret = plaintext[len(KEY_PREFIX):].partition(".")
    if not prefix or not secret:
        return None
    api_key = ApiKey.objects.unscoped().select_related("tenant").filter(prefix=prefix).first()
    if api_key is None or not constant_time_compare(api_key.hashed_key, hash_api_key(plaintext)):
        return None
    return api_key


def api_key_get_by_plaintext(*, plaintext: str) -> ApiKey | None:
    """The usable key matching ``plaintext``: not revoked, its tenant active."""
    api_key = api_key_find(plaintext=plaintext)
    if api_key is None or api_key.revoked_at is not None or not api_key.tenant.is_active:
        return None
    return api_key


def api_key_list(*, tenant: Tenant) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_tenant(tenant).order_by("-created_at")


def member_list(*, tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.for_tenant(tenant).select_related("user").order_by("user__email")
