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
    # Audience: {"tags": [...], "segment_id": ..., "filters": {contact filter}, "contact_ids": [...]}; tags,
    # segment and filters narrow together, contact_ids are added (planning.audience_queryset).
    audience = models.JSONField(default=dict, blank=True)
    # Template variable -> {"source": "name" | "first_name" | "wa_id" | "attribute" | "literal", "key": ...,
    # "value": ..., "fallback": ...} (variables.py).
    variable_mapping = models.JSONField(default=dict, blank=True)
    messages_per_second = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: the number's budget")
    quiet_hours = models.JSONField(default=dict, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Planning walks the audience by contact id; the highest id done so far (resumable).
    planning_cursor = models.BigIntegerField(default=0)
    planned_at = models.DateTimeField(null=True, blank=True)
    # Set while the campaign's not-yet-claimed queued messages are held back (paused, quiet hours).
    held = models.BooleanField(default=False)
    # The provider error that paused the campaign (131048, 131049), shown with status_reason.
    paused_error_code = models.IntegerField(null=True, blank=True)
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
        NEW = "new", "Not planned yet"  # an explicit recipient as given, before planning checks it
        PENDING = "pending", "Pending"
        QUEUED = statuses.QUEUED, "Queued"
        SENDING = statuses.SENDING, "Sending"
        ACCEPTED = statuses.ACCEPTED, "Accepted"
        SENT = statuses.SENT, "Sent"
        DELIVERED = statuses.DELIVERED, "Delivered"
        READ = statuses.READ, "Read"
        FAILED = statuses.FAILED, "Failed"
        SKIPPED = "skipped", "Skipped"
        CANCELLED = "cancelled", "Cancelled"

    class SkipReason(models.TextChoices):
        OPTED_OUT = "opted_out", "Opted out"
        INVALID_NUMBER = "invalid_number", "Invalid number"
        DUPLICATE = "duplicate", "Duplicate"
        MISSING_VARIABLE = "missing_variable", "Missing variable"
        ALREADY_MESSAGED = "already_messaged", "Already messaged by this campaign"

    # No index of its own: the composite indexes lead with the tenant, and each of a recipient's
    # six writes (planned, queued, accepted, sent, delivered, read) writes every index.
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    # Empty only for an explicit recipient whose number is invalid or repeated (skipped).
    contact = models.ForeignKey("contacts.Contact", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="+")
    # The number as given (explicit lists and CSV uploads), or the contact's wa_id.
    to = models.CharField(max_length=64, blank=True, default="")
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
