from __future__ import annotations

from django.db import models

from apps.core.models import TenantScopedModel


class WebhookEvent(TenantScopedModel):
    """A provider callback exactly as it arrived, stored before it is acknowledged.

    ``tenant`` and ``phone_number`` are known when the signature could be checked against a
    number; an event for an unknown number is kept (tenant empty) and marked with its error.
    Deduplicated on (provider, sha256 of the raw body): providers retry identical bodies.
    """

    class Provider(models.TextChoices):
        META_CLOUD = "meta_cloud", "Meta Cloud API"
        GUPSHUP = "gupshup", "Gupshup"
        GUPSHUP_PARTNER = "gupshup_partner", "Gupshup Partner (v3)"

    # No foreign-key constraints in the database (Django still cascades and nulls on delete): a
    # deferred constraint check locks the tenant's and the number's rows (FOR KEY SHARE) at the
    # commit of every acknowledged callback, so concurrent acknowledgements queued on those two
    # rows. No index of its own for the tenant: it leads the two indexes below.
    tenant = models.ForeignKey("tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                               db_constraint=False, db_index=False)
    provider = models.CharField(max_length=32, choices=Provider.choices)
    phone_number = models.ForeignKey("phone_numbers.PhoneNumber", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", db_constraint=False)
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField()
    body_sha256 = models.CharField(max_length=64)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")

    # Deduplication must work before a tenant is known, so this one key is global.
    GLOBAL_UNIQUE_CONSTRAINTS = ("webhook_event_unique_body",)

    class Meta(TenantScopedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["provider", "body_sha256"], name="webhook_event_unique_body")]
        indexes = [
            # The callbacks still to apply, a tenant's in the order they were stored: the
            # processor reads them with ordered, limited scans (a plain index scan, which marks
            # the entries of rows applied since as dead for every later scan; a bitmap scan over
            # the stored order never does, and without a VACUUM it visited every applied row's
            # heap page each time: 10 ms a query after 36,000 callbacks).
            models.Index(fields=["tenant", "id"], name="webhook_event_pending_idx",
                         condition=models.Q(processed_at__isnull=True)),
            models.Index(fields=["tenant", "-received_at"], name="webhook_event_tenant_idx"),
        ]
