from __future__ import annotations

from django.db import models

from apps.core.models import TenantScopedModel


class Tag(TenantScopedModel):
    name = models.CharField(max_length=64)
    color = models.CharField(max_length=16, blank=True, default="")

    class Meta(TenantScopedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="tag_unique_name_per_tenant")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Contact(TenantScopedModel):
    """A WhatsApp user, identified per tenant by ``wa_id`` (E.164 digits, see core.phone)."""

    class OptIn(models.TextChoices):
        UNKNOWN = "unknown", "Unknown"
        OPTED_IN = "opted_in", "Opted in"
        OPTED_OUT = "opted_out", "Opted out"

    wa_id = models.CharField(max_length=20)
    name = models.CharField(max_length=200, blank=True, default="")
    profile_name = models.CharField(max_length=200, blank=True, default="", help_text="Name from the WhatsApp profile")
    attributes = models.JSONField(default=dict, blank=True)
    tags = models.ManyToManyField(Tag, through="ContactTag", related_name="contacts", blank=True)
    opt_in_status = models.CharField(max_length=16, choices=OptIn.choices, default=OptIn.UNKNOWN)
    opt_in_source = models.CharField(max_length=64, blank=True, default="")
    opted_in_at = models.DateTimeField(null=True, blank=True)
    opted_out_at = models.DateTimeField(null=True, blank=True)
    last_inbound_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantScopedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "wa_id"], name="contact_unique_wa_id_per_tenant")]
        indexes = [
            models.Index(fields=["tenant", "name"], name="contact_tenant_name_idx"),
            models.Index(fields=["tenant", "opt_in_status", "id"], name="contact_tenant_optin_idx"),
        ]
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name or self.profile_name or f"+{self.wa_id}"


class ContactTag(TenantScopedModel):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="contact_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="contact_tags")

    class Meta(TenantScopedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "contact", "tag"], name="contact_tag_unique")]
        indexes = [models.Index(fields=["tenant", "tag", "contact"], name="contact_tag_by_tag_idx")]
