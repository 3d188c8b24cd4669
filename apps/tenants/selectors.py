from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from .identity import membership_remembered
from .models import ApiKey, Invitation, Membership, Tenant
from .services import KEY_PREFIX, hash_api_key, hash_invitation_token

MAX_DB_ID = 2**63 - 1


def membership_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    """The tenants a user belongs to, across tenants by design: this is the tenant picker."""
    return (Membership.objects.unscoped().filter(user=user, tenant__is_active=True)
            .select_related("tenant").order_by("tenant__name"))


def access_tenant(*, user: AbstractBaseUser, tenant_slug: str) -> tuple[Tenant, Membership]:
    """The tenant named in the URL and the user's membership in it; 404 for anyone else
    (another tenant's existence is not disclosed)."""
    if not user.is_authenticated:
        raise Http404("No such workspace")
    membership = membership_remembered(
        user.pk, tenant_slug,
        lambda: (Membership.objects.unscoped().select_related("tenant")
                 .filter(user=user, tenant__slug=tenant_slug, tenant__is_active=True).first()))
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


def _pk(value: object) -> int | None:
    try:
        pk = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return pk if 0 < pk <= MAX_DB_ID else None


def access_api_key(*, tenant: Tenant, api_key_id: object) -> ApiKey:
    api_key = ApiKey.objects.for_tenant(tenant).filter(pk=_pk(api_key_id)).first() if _pk(api_key_id) else None
    if api_key is None:
        raise Http404("No such API key")
    return api_key


def access_membership(*, tenant: Tenant, membership_id: object) -> Membership:
    pk = _pk(membership_id)
    membership = Membership.objects.for_tenant(tenant).select_related("user").filter(pk=pk).first() if pk else None
    if membership is None:
        raise Http404("No such member")
    return membership


def access_invitation(*, tenant: Tenant, invitation_id: object) -> Invitation:
    pk = _pk(invitation_id)
    invitation = Invitation.objects.for_tenant(tenant).filter(pk=pk).first() if pk else None
    if invitation is None:
        raise Http404("No such invitation")
    return invitation


def invitation_pending_list(*, tenant: Tenant) -> QuerySet[Invitation]:
    return (Invitation.objects.for_tenant(tenant)
            .filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())
            .select_related("invited_by").order_by("-created_at"))


def invitation_get_by_token(*, token: str) -> Invitation | None:
    """The invitation a link names, whatever its state (the token names the tenant)."""
    if not token or len(token) > 200:
        return None
    return (Invitation.all_tenants.select_related("tenant", "invited_by")
            .filter(token_hash=hash_invitation_token(token)).first())


def team_counts(*, tenant: Tenant) -> dict[str, int]:
    return {"members": Membership.objects.for_tenant(tenant).count(),
            "pending_invitations": invitation_pending_list(tenant=tenant).count()}
