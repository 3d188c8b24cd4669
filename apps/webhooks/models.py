"""Tenant-facing webhooks: Parley's events, signed and delivered to the tenant's endpoints."""

from __future__ import annotations

from django.db import models

from apps.core.fields import EncryptedTextField
from apps.core.models import TenantScopedModel

EVENT_TYPES = (
    "message.received",
    "message.accepted",
    "message.sent",
    "message.delivered",
    "message.read",
    "message.failed",
    "conversation.opened",
    "conversation.assigned",
    "conversation.resolved",
    "campaign.started",
    "campaign.completed",
    "template.status_changed",
    "contact.opted_out",
)


class WebhookEndpoint(TenantScopedModel):
    class Format(models.TextChoices):
        PARLEY = "parley", "Parley events"
        META = "meta", "Meta Cloud API format"

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True, default="")
    secret = EncryptedTextField()
    # Empty list: every event type.
    events = models.JSONField(default=list, blank=True)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.PARLEY)
    is_active = models.BooleanField(default=True)

    class Meta(TenantScopedModel.Meta):
        indexes = [models.Index(fields=["tenant", "is_active"], name="endpoint_tenant_active_idx")]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(TenantScopedModel):
    """One event for one endpoint. Written in the same transaction as the change it reports."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Delivered"
        RETRYING = "retrying", "Retrying"
        FAILED = "failed", "Gave up"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=40)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "endpoint", "event_id"], name="delivery_unique_event_per_endpoint"),
        ]
        indexes = [
            models.Index(fields=["tenant", "endpoint", "-id"], name="delivery_endpoint_recent_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx",
                         condition=models.Q(status__in=["pending", "retrying"])),
        ]


class WebhookDeliveryAttempt(TenantScopedModel):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    task_id = models.CharField(max_length=64, blank=True, default="")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta(TenantScopedModel.Meta):
        indexes = [models.Index(fields=["tenant", "delivery", "-id"], name="delivery_attempt_idx")]
