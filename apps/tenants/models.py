from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.models import BaseModel, TenantScopedModel

DEFAULT_OPT_OUT_KEYWORDS = ["STOP", "UNSUBSCRIBE"]
DEFAULT_OPT_IN_KEYWORDS = ["START"]


def default_opt_out_keywords() -> list[str]:
    return list(DEFAULT_OPT_OUT_KEYWORDS)


def default_opt_in_keywords() -> list[str]:
    return list(DEFAULT_OPT_IN_KEYWORDS)


class Tenant(BaseModel):
    """A workspace. Every tenant-owned row points here; nothing is shared across tenants."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=63, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    is_active = models.BooleanField(default=True)
    # Inbound messages whose whole text is one of these opt the contact out / back in.
    opt_out_keywords = models.JSONField(default=default_opt_out_keywords, blank=True)
    opt_in_keywords = models.JSONField(default=default_opt_in_keywords, blank=True)
    opt_out_confirmation = models.TextField(
        blank=True, default="You have been unsubscribed and will not receive further messages. Reply START to opt back in."
    )
    api_requests_per_minute = models.PositiveIntegerField(default=100)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(TenantScopedModel):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        AGENT = "agent", "Agent"
        MARKETER = "marketer", "Marketer"
        DEVELOPER = "developer", "Developer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)

    class Meta(TenantScopedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user_per_tenant")]
        indexes = [models.Index(fields=["user", "tenant"], name="membership_user_idx")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant_id} ({self.role})"


class ApiKey(TenantScopedModel):
    """A developer key: ``prl_<prefix>.<secret>``. Only the prefix and a SHA-256 of the whole key
    are stored; the plaintext is shown once, at creation."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed_key = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    # prefix is random and globally unique: it is how a presented key finds its row.
    GLOBAL_UNIQUE_CONSTRAINTS = ()

    class Meta(TenantScopedModel.Meta):
        indexes = [models.Index(fields=["tenant", "-created_at"], name="apikey_tenant_created_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Invitation(TenantScopedModel):
    """An invitation to join a workspace with a role, sent by email as a link carrying a random
    token. Only a SHA-256 of the token is stored; the link is usable once, until ``expires_at``."""

    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Membership.Role.choices, default=Membership.Role.AGENT)
    token_hash = models.CharField(max_length=64)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    # The token is random and globally unique: it is how an invitation link finds its row,
    # before anyone knows which workspace it is for.
    GLOBAL_UNIQUE_CONSTRAINTS = ("invitation_unique_token",)

    class Meta(TenantScopedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["token_hash"], name="invitation_unique_token")]
        indexes = [models.Index(fields=["tenant", "email"], name="invitation_tenant_email_idx")]

    def __str__(self) -> str:
        return f"{self.email} → {self.tenant_id} ({self.role})"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()
