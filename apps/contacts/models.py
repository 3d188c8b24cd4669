from __future__ import annotations

from django.conf import settings
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

    # No index of its own: every index of the table leads with the tenant. A lone tenant index
    # also tempted PostgreSQL, on a table it had no statistics for yet, to find a contact by
    # scanning the tenant's contacts instead of through the (tenant, wa_id) key.
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
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


class Segment(TenantScopedModel):
    """A saved contact filter (see ``selectors.contact_filter`` for the shape of ``filters``):
    the contacts page saves one, a campaign's audience names one."""

    name = models.CharField(max_length=120)
    filters = models.JSONField(default=dict, blank=True)

    class Meta(TenantScopedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="segment_unique_name_per_tenant")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AttributeDefinition(TenantScopedModel):
    """A typed custom attribute: its values live in ``Contact.attributes[key]`` as the JSON
    type that matches (text: string, number: number, date: ISO ``YYYY-MM-DD`` string,
    boolean: true/false)."""

    class Type(models.TextChoices):
        TEXT = "text", "Text"
        NUMBER = "number", "Number"
        DATE = "date", "Date"
        BOOLEAN = "boolean", "Yes / no"

    key = models.CharField(max_length=64)
    label = models.CharField(max_length=100)
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.TEXT)

    class Meta(TenantScopedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="attribute_unique_key_per_tenant")]
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label


class ContactImport(TenantScopedModel):
    """One CSV import: the stored file, its column mapping, and its progress. The task that
    runs it commits one chunk of rows at a time together with ``processed_rows``, so a run
    that stops half-way resumes where it left off."""

    class Source(models.TextChoices):
        UPLOAD = "upload", "CSV upload"
        GOOGLE_SHEET = "google_sheet", "Google Sheet"

    class Status(models.TextChoices):
        DRAFT = "draft", "Waiting for mapping"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    class OnExisting(models.TextChoices):
        UPDATE = "update", "Update them"
        SKIP = "skip", "Leave them as they are"

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.UPLOAD)
    source_url = models.URLField(max_length=2000, blank=True, default="")
    original_name = models.CharField(max_length=255, blank=True, default="")
    file = models.FileField(upload_to="contact_imports/%Y/%m/", max_length=300)
    size_bytes = models.PositiveBigIntegerField(default=0)
    encoding = models.CharField(max_length=32, default="utf-8")
    delimiter = models.CharField(max_length=1, default=",")
    headers = models.JSONField(default=list, blank=True)
    # One target per column, in column order: "", "phone", "name", "tags" or "attr:<key>".
    mapping = models.JSONField(default=list, blank=True)
    default_country = models.CharField(max_length=2, blank=True, default="")
    on_existing = models.CharField(max_length=8, choices=OnExisting.choices, default=OnExisting.UPDATE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    empty_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    # [[row number, column, raw value, reason], ...]: the first ERRORS_KEPT problems.
    errors = models.JSONField(default=list, blank=True)
    failure_message = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantScopedModel.Meta):
        indexes = [models.Index(fields=["tenant", "-created_at"], name="contactimport_tenant_idx")]
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.original_name or self.source_url or f"import {self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.COMPLETED, self.Status.FAILED)

    @property
    def percent(self) -> int:
        if self.status == self.Status.COMPLETED:
            return 100
        if not self.total_rows:
            return 0
        return min(100, int(self.processed_rows * 100 / self.total_rows))

    @property
    def problem_count(self) -> int:
        return self.error_count + self.duplicate_count
