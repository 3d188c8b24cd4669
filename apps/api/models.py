from __future__ import annotations

from django.db import models

from apps.core.models import TenantScopedModel


class IdempotencyKey(TenantScopedModel):
    """The first answer to a POST made with an ``Idempotency-Key`` header, kept 24 h."""

    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of method, path and body")
    completed = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, default="")

    class Meta(TenantScopedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="idempotency_key_unique_per_tenant")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created_idx")]
