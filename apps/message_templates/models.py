from __future__ import annotations

from django.db import models

from apps.core.models import TenantScopedModel


class MessageTemplate(TenantScopedModel):
    """An approved-or-not WhatsApp template as the provider knows it. Unique per WABA (the
    number's ``waba_id``; Gupshup: the app) + name + language."""

    class Category(models.TextChoices):
        MARKETING = "MARKETING", "Marketing"
        UTILITY = "UTILITY", "Utility"
        AUTHENTICATION = "AUTHENTICATION", "Authentication"

    class Status(models.TextChoices):
        APPROVED = "APPROVED", "Approved"
        PENDING = "PENDING", "Pending"
        REJECTED = "REJECTED", "Rejected"
        PAUSED = "PAUSED", "Paused"
        DISABLED = "DISABLED", "Disabled"
        FLAGGED = "FLAGGED", "Flagged"
        IN_APPEAL = "IN_APPEAL", "In appeal"
        PENDING_DELETION = "PENDING_DELETION", "Pending deletion"
        DELETED = "DELETED", "Deleted"
        ARCHIVED = "ARCHIVED", "Archived"
        LIMIT_EXCEEDED = "LIMIT_EXCEEDED", "Limit exceeded"
        LOCKED = "LOCKED", "Locked"

    class ParameterFormat(models.TextChoices):
        POSITIONAL = "positional", "Positional ({{1}})"
        NAMED = "named", "Named ({{first_name}})"

    phone_number = models.ForeignKey("phone_numbers.PhoneNumber", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="templates")
    waba_id = models.CharField(max_length=128)
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16)
    category = models.CharField(max_length=16, choices=Category.choices, default=Category.UTILITY)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    parameter_format = models.CharField(max_length=12, choices=ParameterFormat.choices,
                                        default=ParameterFormat.POSITIONAL)
    components = models.JSONField(default=list, blank=True)
    provider_template_id = models.CharField(max_length=128, blank=True, default="")
    quality_rating = models.CharField(max_length=16, blank=True, default="")
    rejected_reason = models.TextField(blank=True, default="")
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "waba_id", "name", "language"],
                                    name="template_unique_per_waba_name_language"),
        ]
        indexes = [models.Index(fields=["tenant", "status", "name"], name="template_tenant_status_idx")]
        ordering = ["name", "language"]

    def __str__(self) -> str:
        return f"{self.name} [{self.language}]"
