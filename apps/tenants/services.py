from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import slugify

from apps.core.exceptions import ApplicationError

from .models import ApiKey, Invitation, Membership, Tenant

logger = logging.getLogger(__name__)

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


# -- team: invitations, roles, removal, ownership --------------------------------------------

INVITATION_TTL = timedelta(days=7)
INVITATION_TOKEN_BYTES = 32


def hash_invitation_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ApplicationError(f"{email or 'An empty address'!r} is not an email address.",
                               code="invalid_email") from exc
    return email


def _check_role(role: str) -> str:
    if role not in Membership.Role.values:
        raise ApplicationError(f"Unknown role {role!r}; use one of {', '.join(Membership.Role.values)}.",
                               code="invalid_role")
    return role


def _check_may_grant(*, actor: Membership, role: str) -> None:
    if role == Membership.Role.OWNER and actor.role != Membership.Role.OWNER:
        raise ApplicationError("Only an owner can make someone an owner.", code="owner_required", http_status=403)


@transaction.atomic
def _invitation_create_row(*, tenant: Tenant, email: str, role: str, invited_by: Membership) -> tuple[Invitation, str]:
    User = get_user_model()
    if Membership.objects.for_tenant(tenant).filter(user__in=User.objects.filter(username=email)).exists():
        raise ApplicationError(f"{email} is already a member of this workspace.", code="already_member",
                               http_status=409)
    now = timezone.now()
    # A new invitation replaces any pending one for the same address: only the latest link works.
    Invitation.objects.for_tenant(tenant).filter(email=email, accepted_at__isnull=True, revoked_at__isnull=True) \
        .update(revoked_at=now, updated_at=now)
    token = secrets.token_urlsafe(INVITATION_TOKEN_BYTES)
    invitation = Invitation.objects.for_tenant(tenant).create(
        tenant=tenant, email=email, role=role, token_hash=hash_invitation_token(token),
        invited_by=invited_by.user, expires_at=now + INVITATION_TTL,
    )
    return invitation, token


def invitation_create(*, tenant: Tenant, email: str, role: str, invited_by: Membership,
                      accept_url_for: Callable[[str], str]) -> tuple[Invitation, str]:
    """Invite ``email`` with ``role`` and email them a link (``accept_url_for(token)``).
    Returns the invitation and its token. If the email cannot be sent, the invitation is
    withdrawn and the error says so: an invitation nobody received is not left behind."""
    email = _normalize_email(email)
    _check_role(role)
    _check_may_grant(actor=invited_by, role=role)
    invitation, token = _invitation_create_row(tenant=tenant, email=email, role=role, invited_by=invited_by)
    url = accept_url_for(token)
    inviter = invited_by.user.get_full_name() or invited_by.user.email
    context = {"tenant": tenant, "invitation": invitation, "url": url, "inviter": inviter,
               "role": Membership.Role(role).label, "expires_at": invitation.expires_at}
    try:
        send_mail(
            subject=f"{inviter} invited you to {tenant.name} on Parley",
            message=render_to_string("tenants/email/invitation.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[email],
        )
    except Exception as exc:  # any transport failure: SMTP refused, DNS, timeout…
        logger.warning("invitation email to %s failed: %s", email, exc)
        Invitation.objects.for_tenant(tenant).filter(pk=invitation.pk).delete()
        raise ApplicationError(f"The invitation email to {email} could not be sent ({exc}). Nothing was saved; "
                               "try again.", code="email_failed", http_status=502) from exc
    return invitation, token


@transaction.atomic
def invitation_revoke(*, tenant: Tenant, invitation_id: int) -> Invitation:
    invitation = Invitation.objects.for_tenant(tenant).select_for_update().get(pk=invitation_id)
    if invitation.accepted_at is not None:
        raise ApplicationError(f"{invitation.email} already accepted this invitation.", code="invitation_used",
                               http_status=409)
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at", "updated_at"])
    return invitation


def invitation_check(invitation: Invitation | None) -> Invitation:
    """The invitation if it can still be accepted; otherwise an error that says why."""
    if invitation is None:
        raise ApplicationError("This invitation link is not valid. Ask for a new invitation.",
                               code="invitation_invalid", http_status=404)
    if invitation.accepted_at is not None:
        raise ApplicationError("This invitation has already been used. Sign in instead, or ask for a new "
                               "invitation.", code="invitation_used", http_status=410)
    if invitation.revoked_at is not None:
        raise ApplicationError("This invitation was withdrawn. Ask the workspace's admins for a new one.",
                               code="invitation_revoked", http_status=410)
    if invitation.expires_at <= timezone.now():
        raise ApplicationError("This invitation has expired. Ask the workspace's admins for a new one.",
                               code="invitation_expired", http_status=410)
    if not invitation.tenant.is_active:
        raise ApplicationError("This workspace is no longer active.", code="invitation_invalid", http_status=404)
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: AbstractBaseUser) -> Membership:
    """A signed-in user accepts: they join the invitation's workspace with its role. The user
    must be the one invited (same email)."""
    invitation = Invitation.all_tenants.select_for_update().select_related("tenant") \
        .filter(token_hash=hash_invitation_token(token)).first()
    invitation = invitation_check(invitation)
    if (user.email or "").strip().lower() != invitation.email:
        raise ApplicationError(f"This invitation was sent to {invitation.email}, but you are signed in as "
                               f"{user.email}. Sign out and open the link again.", code="invitation_wrong_user",
                               http_status=403)
    tenant = invitation.tenant
    membership = Membership.objects.for_tenant(tenant).filter(user=user).first()
    if membership is None:
        membership = Membership.objects.for_tenant(tenant).create(tenant=tenant, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by", "updated_at"])
    return membership


@transaction.atomic
def invitation_accept_new_user(*, token: str, name: str, password: str) -> Membership:
    """Someone without an account accepts: the account is created with the invited email,
    ``name`` and ``password`` (Django's password validators apply), then joins."""
    invitation = invitation_check(Invitation.all_tenants.select_related("tenant")
                                  .filter(token_hash=hash_invitation_token(token)).first())
    User = get_user_model()
    if User.objects.filter(username=invitation.email).exists():
        raise ApplicationError(f"An account for {invitation.email} already exists. Sign in to accept the "
                               "invitation.", code="account_exists", http_status=409)
    name = " ".join((name or "").split())
    if not name:
        raise ApplicationError("Enter your name.", code="invalid_name", details={"field": "name"})
    first, _, last = name.partition(" ")
    user = User(username=invitation.email, email=invitation.email, first_name=first[:150], last_name=last[:150])
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), code="invalid_password",
                               details={"field": "password"}) from exc
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # the same link submitted twice at once
        raise ApplicationError(f"An account for {invitation.email} already exists. Sign in to accept the "
                               "invitation.", code="account_exists", http_status=409) from exc
    return invitation_accept(token=token, user=user)


def _owner_rows(tenant: Tenant) -> list[Membership]:
    """Lock the owners' rows, so two concurrent changes cannot both remove 'the other' owner."""
    return list(Membership.objects.for_tenant(tenant).select_for_update().filter(role=Membership.Role.OWNER))


@transaction.atomic
def membership_role_change(*, tenant: Tenant, actor: Membership, membership_id: int, role: str) -> Membership:
    _check_role(role)
    owners = _owner_rows(tenant)
    membership = Membership.objects.for_tenant(tenant).select_for_update().select_related("user").get(pk=membership_id)
    if membership.role == role:
        return membership
    if Membership.Role.OWNER in (membership.role, role) and actor.role != Membership.Role.OWNER:
        raise ApplicationError("Only an owner can change an owner's role or make someone an owner.",
                               code="owner_required", http_status=403)
    if membership.role == Membership.Role.OWNER and len(owners) <= 1:
        raise ApplicationError(f"{membership.user.email} is the only owner. Make someone else owner first "
                               "(Transfer ownership).", code="last_owner", http_status=409)
    membership.role = role
    membership.save(update_fields=["role", "updated_at"])
    return membership


@transaction.atomic
def membership_remove(*, tenant: Tenant, actor: Membership, membership_id: int) -> Membership:
    owners = _owner_rows(tenant)
    membership = Membership.objects.for_tenant(tenant).select_for_update().select_related("user").get(pk=membership_id)
    if membership.role == Membership.Role.OWNER:
        if actor.role != Membership.Role.OWNER:
            raise ApplicationError("Only an owner can remove an owner.", code="owner_required", http_status=403)
        if len(owners) <= 1:
            who = "You are" if membership.pk == actor.pk else f"{membership.user.email} is"
            raise ApplicationError(f"{who} the only owner. Transfer ownership to someone else first.",
                                   code="last_owner", http_status=409)
    membership.delete()
    return membership


@transaction.atomic
def ownership_transfer(*, tenant: Tenant, actor: Membership, membership_id: int) -> Membership:
    """The acting owner makes another member the owner and becomes an admin."""
    _owner_rows(tenant)
    actor = Membership.objects.for_tenant(tenant).select_for_update().get(pk=actor.pk)
    if actor.role != Membership.Role.OWNER:
        raise ApplicationError("Only an owner can transfer ownership.", code="owner_required", http_status=403)
    target = Membership.objects.for_tenant(tenant).select_for_update().select_related("user").get(pk=membership_id)
    if target.pk == actor.pk:
        raise ApplicationError("You already own this workspace; choose another member.", code="invalid_target")
    target.role = Membership.Role.OWNER
    target.save(update_fields=["role", "updated_at"])
    actor.role = Membership.Role.ADMIN
    actor.save(update_fields=["role", "updated_at"])
    return target
