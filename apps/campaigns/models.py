from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.conversations import statuses
from apps.core.models import TenantScopedModel


class Campaign(TenantScopedModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        PLANNING = "planning", "Planning"
        RUNNING = "running", "Sending"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=200)
    phone_number = models.ForeignKey("phone_numbers.PhoneNumber", on_delete=models.PROTECT, related_name="campaigns")
    template = models.ForeignKey("message_templates.MessageTemplate", on_delete=models.PROTECT, related_name="campaigns")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    status_reason = models.TextField(blank=True, default="")
    # Audience spec: {"tags": [...], "segment_id": ..., "attributes": {...}, "contact_ids": [...]}.
    audience = models.JSONField(default=dict, blank=True)
    # Template variable -> {"source": "contact.name" | "attribute:city" | "literal", "value": ..., "fallback": ...}.
    variable_mapping = models.JSONField(default=dict, blank=True)
    messages_per_second = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: the number's budget")
    quiet_hours = models.JSONField(default=dict, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta(TenantScopedModel.Meta):
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="campaign_tenant_recent_idx"),
            models.Index(fields=["status", "scheduled_at"], name="campaign_due_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignRecipient(TenantScopedModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        QUEUED = statuses.QUEUED, "Queued"
        SENDING = statuses.SENDING, "Sending"
        ACCEPTED = statuses.ACCEPTED, "Accepted"
        SENT = statuses.SENT, "Sent"
        DELIVERED = statuses.DELIVERED, "Delivered"
        READ = statuses.READ, "Read"
        FAILED = statuses.FAILED, "Failed"
        SKIPPED = "skipped", "Skipped"

    class SkipReason(models.TextChoices):
        OPTED_OUT = "opted_out", "Opted out"
        INVALID_NUMBER = "invalid_number", "Invalid number"
        DUPLICATE = "duplicate", "Duplicate"
        MISSING_VARIABLE = "missing_variable", "Missing variable"
        ALREADY_MESSAGED = "already_messaged", "Already messaged by this campaign"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    skip_reason = models.CharField(max_length=20, choices=SkipReason.choices, blank=True, default="")
    variables = models.JSONField(default=dict, blank=True)
    error_code = models.IntegerField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "campaign", "contact"], name="recipient_unique_per_campaign"),
        ]
        indexes = [models.Index(fields=["tenant", "campaign", "status", "id"], name="recipient_campaign_status_idx")]
