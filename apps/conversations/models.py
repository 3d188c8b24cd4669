from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import TenantScopedModel

from . import statuses


class Label(TenantScopedModel):
    name = models.CharField(max_length=64)
    color = models.CharField(max_length=16, blank=True, default="")

    class Meta(TenantScopedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="label_unique_name_per_tenant")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Conversation(TenantScopedModel):
    """The thread between one business number and one contact. The 24-hour customer-service
    window is ``window_expires_at`` = last inbound message + 24 h."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PENDING = "pending", "Pending"
        RESOLVED = "resolved", "Resolved"

    phone_number = models.ForeignKey("phone_numbers.PhoneNumber", on_delete=models.CASCADE, related_name="conversations")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="conversations")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="assigned_conversations")
    labels = models.ManyToManyField(Label, through="ConversationLabel", related_name="conversations", blank=True)
    window_expires_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    # Denormalized so that the inbox list is one query, whatever the page size.
    last_message_preview = models.CharField(max_length=255, blank=True, default="")
    last_message_type = models.CharField(max_length=16, blank=True, default="")
    last_message_direction = models.CharField(max_length=8, blank=True, default="")
    unread_count = models.PositiveIntegerField(default=0)

    class Meta(TenantScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "phone_number", "contact"],
                                    name="conversation_unique_number_contact"),
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "-last_message_at", "-id"], name="conv_status_recent_idx"),
            models.Index(fields=["tenant", "assignee", "status", "-last_message_at", "-id"], name="conv_assignee_recent_idx"),
            models.Index(fields=["tenant", "phone_number", "status", "-last_message_at", "-id"], name="conv_number_recent_idx"),
            models.Index(fields=["tenant", "contact"], name="conv_contact_idx"),
            # The inbox's "changed since" poll.
            models.Index(fields=["tenant", "updated_at"], name="conv_tenant_updated_idx"),
        ]

    def __str__(self) -> str:
        return f"Conversation {self.pk}"


class ConversationTally(TenantScopedModel):
    """How many listed conversations (those with a message) a workspace has per number,
    assignee and status, as rows of signed deltas whose sum is the count: the inbox's tab counts
    read a few dozen of them instead of grouping every conversation.

    Database triggers (``tally_triggers.py``, migration ``conversations.0009``) write a delta
    whenever a conversation is inserted or deleted, or changes number, assignee, status or
    starts being listed -- whatever code did it, ``QuerySet.update()`` and bulk inserts
    included. Writers only ever insert, so concurrent transactions never wait for one another
    here; ``conversation_tallies_compact`` folds the deltas into one row per group. No foreign
    key constraints: the rows a deleted workspace or number leaves behind sum to zero and are
    compacted away."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
                               related_name="+")
    phone_number = models.ForeignKey("phone_numbers.PhoneNumber", on_delete=models.DO_NOTHING, db_constraint=False,
                                     db_index=False, related_name="+")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING,
                                 db_constraint=False, db_index=False, related_name="+")
    status = models.CharField(max_length=16)
    n = models.IntegerField()
    created_at = None
    updated_at = None

    class Meta(TenantScopedModel.Meta):
        indexes = [models.Index(fields=["tenant", "phone_number"], name="conv_tally_tenant_number_idx")]

    def __str__(self) -> str:
        return f"{self.status} {self.n:+d}"


class ConversationLabel(TenantScopedModel):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="conversation_labels")
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="conversation_labels")

    class Meta(TenantScopedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "conversation", "label"], name="conversation_label_unique")]
        indexes = [models.Index(fields=["tenant", "label", "conversation"], name="conv_label_by_label_idx")]


class Media(TenantScopedModel):
    """A file Parley holds: uploaded by the API or the inbox, or fetched from an inbound
    message. Served only through authenticated views, never a public URL."""

    class Source(models.TextChoices):
        UPLOAD = "upload", "Uploaded"
        INBOUND = "inbound", "Inbound"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to download"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    phone_number = models.ForeignKey("phone_numbers.PhoneNumber", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    source = models.CharField(max_length=8, choices=Source.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    file = models.FileField(upload_to="media/%Y/%m/", blank=True)
    filename = models.CharField(max_length=255, blank=True, default="")
    mime_type = models.CharField(max_length=128, blank=True, default="")
    size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=128, blank=True, default="")
    provider_media_id = models.CharField(max_length=128, blank=True, default="")
    # Where an inbound file can be downloaded when the provider gives a URL (Gupshup, newer Meta).
    source_url = models.URLField(max_length=2000, blank=True, default="")
    provider_media_expires_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta(TenantScopedModel.Meta):
        indexes = [models.Index(fields=["tenant", "provider_media_id"], name="media_provider_id_idx")]


class Message(TenantScopedModel):
    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND = "outbound", "Outbound"
        INTERNAL = "internal", "Internal"  # private notes and activity, never sent

    class Type(models.TextChoices):
        TEXT = "text", "Text"
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"
        AUDIO = "audio", "Audio"
        DOCUMENT = "document", "Document"
        STICKER = "sticker", "Sticker"
        LOCATION = "location", "Location"
        CONTACTS = "contacts", "Contacts"
        INTERACTIVE = "interactive", "Interactive"
        TEMPLATE = "template", "Template"
        REACTION = "reaction", "Reaction"
        BUTTON = "button", "Button reply"
        ORDER = "order", "Order"
        SYSTEM = "system", "System"
        UNSUPPORTED = "unsupported", "Unsupported"
        NOTE = "note", "Private note"
        ACTIVITY = "activity", "Activity"

    class Status(models.TextChoices):
        QUEUED = statuses.QUEUED, "Queued"
        SENDING = statuses.SENDING, "Sending"
        ACCEPTED = statuses.ACCEPTED, "Accepted"
        SENT = statuses.SENT, "Sent"
        DELIVERED = statuses.DELIVERED, "Delivered"
        READ = statuses.READ, "Read"
        FAILED = statuses.FAILED, "Failed"
        RECEIVED = statuses.RECEIVED, "Received"

    # Few indexes, because an outbound message's row is rewritten five times (no update of it is
    # HOT, its status being indexed) and every index takes a new entry each time: the tenant's
    # own index would repeat the composite ones below, the nullable keys are indexed where set
    # (partial indexes), the conversation and the number by the indexes that lead with them.
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages",
                                     db_index=False)
    phone_number = models.ForeignKey("phone_numbers.PhoneNumber", on_delete=models.CASCADE, related_name="+",
                                     db_index=False)
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    type = models.CharField(max_length=16, choices=Type.choices)
    # The normalized type object (Meta's shape: {"body": ...} for text, {"link"|"id", ...} for media…).
    content = models.JSONField(default=dict, blank=True)
    text_preview = models.CharField(max_length=255, blank=True, default="")
    media = models.ForeignKey(Media, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages",
                              db_index=False)
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                 db_index=False)
    reply_to_provider_id = models.CharField(max_length=160, blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices)
    status_updated_at = models.DateTimeField(null=True, blank=True)
    sending_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # Inbound: when the customer sent it (provider timestamp); outbound: created_at.
    occurred_at = models.DateTimeField(null=True, blank=True)
    # What the provider's send API answered (Meta: wamid; Gupshup: its message id) ...
    provider_message_id = models.CharField(max_length=160, null=True, blank=True)
    # ... and the WhatsApp id once known (equal to the above for Meta).
    wa_message_id = models.CharField(max_length=160, null=True, blank=True)
    error_code = models.IntegerField(null=True, blank=True)
    error_title = models.CharField(max_length=255, blank=True, default="")
    error_detail = models.TextField(blank=True, default="")
    pricing = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)
    campaign_recipient = models.OneToOneField("campaigns.CampaignRecipient", null=True, blank=True,
                                              on_delete=models.SET_NULL, related_name="message")
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", db_index=False)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "phone_number", "provider_message_id"],
                                    condition=models.Q(provider_message_id__isnull=False),
                                    name="message_unique_provider_id_per_number"),
            models.UniqueConstraint(fields=["tenant", "idempotency_key"],
                                    condition=models.Q(idempotency_key__isnull=False),
                                    name="message_unique_idempotency_key"),
            models.CheckConstraint(condition=models.Q(direction__in=["inbound", "outbound", "internal"]),
                                   name="message_direction_valid"),
        ]
        indexes = [
            # A conversation's and a number's rows, all of a tenant's: no tenant column in front, so
            # that these also serve the foreign keys (cascades) and the table keeps fewer indexes.
            models.Index(fields=["conversation", "-id"], name="message_thread_idx"),
            models.Index(fields=["phone_number", "wa_message_id"], name="message_wamid_idx"),
            models.Index(fields=["tenant", "-created_at", "-id"], name="message_tenant_recent_idx"),
            # No index names the status, its times, pricing or errors, so that PostgreSQL can
            # rewrite a row in place when a claim or a status webhook moves it on (a HOT update:
            # no index entry; migration 0008 leaves room in each page for it). That is three of
            # an outbound message's five rewrites. ``next_attempt_at`` is set exactly while the
            # pipeline still owes the row something (queued, or sending until answered or
            # reconciled); accepted, later statuses and failed clear it.
            # The dispatcher's claim: a number's due rows, oldest first (the claim keeps only the
            # queued ones; in-flight rows, still sending, are the few it steps over).
            models.Index(fields=["tenant", "phone_number", "next_attempt_at", "id"], name="message_dispatch_idx",
                         condition=models.Q(next_attempt_at__isnull=False)),
            # The sweeper's scan: rows the pipeline still owes something, across tenants.
            models.Index(fields=["next_attempt_at"], name="message_pending_idx",
                         condition=models.Q(next_attempt_at__isnull=False)),
            # A tenant's failed messages, newest first (the API's status=failed): failed_at is
            # set once, by the rewrite that fails the row, never by a later status.
            models.Index(fields=["tenant", "-id"], name="message_failed_idx", condition=models.Q(failed_at__isnull=False)),
            # What deleting a file, a quoted message or a user must find (SET NULL), only where set.
            models.Index(fields=["media"], name="message_media_idx", condition=models.Q(media__isnull=False)),
            models.Index(fields=["reply_to"], name="message_reply_to_idx", condition=models.Q(reply_to__isnull=False)),
            models.Index(fields=["sent_by"], name="message_sent_by_idx", condition=models.Q(sent_by__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.type} #{self.pk} ({self.status})"


class MessageText(TenantScopedModel):
    """The searchable text of a message, written once by a database trigger when the message
    is inserted (and again only if its text changes): the inbox search reads it here, so the
    five updates of an outbound message's life (claimed, accepted, sent, delivered, read) do not
    each rewrite a trigram index entry of its text. Migration ``conversations.0005`` creates the
    triggers (PostgreSQL and SQLite) and, on PostgreSQL, the trigram index."""

    message = models.OneToOneField(Message, primary_key=True, on_delete=models.CASCADE, db_constraint=False,
                                   related_name="search_text")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, db_constraint=False,
                                     related_name="+")
    text = models.CharField(max_length=255)

    def __str__(self) -> str:
        return self.text


class MessageAttempt(TenantScopedModel):
    """One call to a provider for one message: what was asked, what came back, how long."""

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        TRANSIENT_ERROR = "transient_error", "Transient error (will retry)"
        PERMANENT_ERROR = "permanent_error", "Permanent error"
        UNKNOWN = "unknown", "No answer (reconcile)"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempts")
    task_id = models.CharField(max_length=64, blank=True, default="")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.IntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta(TenantScopedModel.Meta):
        indexes = [models.Index(fields=["tenant", "message", "-id"], name="attempt_message_idx")]


class CannedResponse(TenantScopedModel):
    """A saved reply an agent inserts with ``/shortcut``."""

    shortcut = models.SlugField(max_length=64)
    content = models.TextField()

    class Meta(TenantScopedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "shortcut"], name="canned_unique_shortcut")]
        ordering = ["shortcut"]

    def __str__(self) -> str:
        return f"/{self.shortcut}"
