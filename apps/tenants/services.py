from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.core.exceptions import ApplicationError

from .models import ApiKey, Membership, Tenant

KEY_PREFIX = "prl_"
PREFIX_LENGTH = 12
SECRET_BYTES = 30
# last_used_at is informative; writing it on every request would turn each API call into
# an UPDATE. Once a minute per key is plenty.
LAST_USED_RESOLUTION_SECONDS = 60


def hash_api_key(plaintext: str) -> str:
    """Keys carry ~240 bits of randomness, so one SHA-256 is enough (no slow KDF needed, and
    the API stays fast); a stolen table still cannot be turned back into keys."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


@transaction.atomic
def user_get_or_create(*, email: str, password: str | None = None, name: str = "") -> AbstractBaseUser:
    User = get_user_model()
    email = User.objects.normalize_email(email).strip().lower()
    if not email or "@" not in email:
        raise ApplicationError(f"{email!r} is not an email address.", code="invalid_email")
    user, created = User.objects.get_or_create(username=email, defaults={"email": email, "first_name": name})
    if created or password:
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
    return user


@transaction.atomic
def tenant_create(*, slug: str, name: str, owner_email: str, owner_password: str | None = None,
                  time_zone: str = "UTC") -> Tenant:
    slug = slug.strip().lower()
    if slugify(slug) != slug or not slug:
        raise ApplicationError(f"{slug!r} is not a valid slug (lowercase letters, digits and hyphens).",
                               code="invalid_slug")
    if Tenant.objects.filter(slug=slug).exists():
        raise ApplicationError(f"A tenant with slug {slug!r} already exists.", code="tenant_exists", http_status=409)
    tenant = Tenant.objects.create(slug=slug, name=name.strip() or slug, time_zone=time_zone)
    owner = user_get_or_create(email=owner_email, password=owner_password)
    membership_create(tenant=tenant, user=owner, role=Membership.Role.OWNER)
    return tenant


@transaction.atomic
def membership_create(*, tenant: Tenant, user: AbstractBaseUser, role: str) -> Membership:
    if role not in Membership.Role.values:
        raise ApplicationError(f"Unknown role {role!r}.", code="invalid_role")
    membership, created = Membership.objects.for_tenant(tenant).get_or_create(
        tenant=tenant, user=user, defaults={"role": role}
    )
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
    return membership


@transaction.atomic
def api_key_create(*, tenant: Tenant, name: str, created_by: AbstractBaseUser | None = None) -> tuple[ApiKey, str]:
    """Returns the key row and its plaintext. The plaintext is never stored or shown again."""
    name = name.strip()
    if not name:
        raise ApplicationError("An API key needs a name.", code="invalid_name")
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    plaintext = f"{KEY_PREFIX}{prefix}.{secrets.token_urlsafe(SECRET_BYTES)}"
    api_key = ApiKey.objects.for_tenant(tenant).create(
        tenant=tenant, name=name, prefix=prefix, hashed_key=hash_api_key(plaintext), created_by=created_by
    )
    return api_key, plaintext


@transaction.atomic
def api_key_revoke(*, tenant: Tenant, api_key_id: int) -> ApiKey:
    api_key = ApiKey.objects.for_tenant(tenant).select_for_update().get(pk=api_key_id)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at", "updated_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once per LAST_USED_RESOLUTION_SECONDS, with one conditional UPDATE."""
    now = timezone.now()
    if api_key.last_used_at and (now - api_key.last_used_at).total_seconds() < LAST_USED_RESOLUTION_SECONDS:
        return
    ApiKey.all_tenants.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
