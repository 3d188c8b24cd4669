"""Provider-independent events that webhook parsers produce.

Parsers (``apps.providers.webhooks.parsers``) turn a provider callback body into a list of
these frozen dataclasses; services act on them. Every event keeps ``raw``: the smallest
sub-object of the body it came from (one message, one status, one change value), never the
whole body, so a batch of 1,000 statuses does not hold 1,000 references to the batch.

``route_key`` names the business number (or account) the event belongs to:

* Meta Cloud API: ``metadata.phone_number_id``; for account-level fields without metadata
  (templates, account updates) the WABA id (``entry.id``).
* Gupshup v2: the Gupshup app name (``app``).
* Gupshup Partner v3: ``metadata.phone_number_id`` when present, else ``gs_app_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Provider names, equal to PhoneNumber.Provider / WebhookEvent.Provider values.
PROVIDER_META = "meta_cloud"
PROVIDER_GUPSHUP = "gupshup"
PROVIDER_GUPSHUP_PARTNER = "gupshup_partner"

# Normalized delivery statuses. The values equal apps.conversations.statuses (checked by a test).
ACCEPTED = "accepted"
SENT = "sent"
DELIVERED = "delivered"
READ = "read"
FAILED = "failed"
DELETED = "deleted"
KNOWN_STATUSES = frozenset({ACCEPTED, SENT, DELIVERED, READ, FAILED, DELETED})

# Message types, Meta's names. Gupshup types are mapped onto these by the Gupshup parser.
MESSAGE_TYPES = frozenset({
    "text", "image", "video", "audio", "document", "sticker", "location", "contacts",
    "interactive", "button", "reaction", "order", "system", "unsupported",
})
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})


class ParseError(ValueError):
    """The body is structurally not a webhook of the expected kind (not an object, no
    ``entry`` list, no Gupshup ``type``/``payload`` ...). Unknown *content* never raises."""


@dataclass(frozen=True, slots=True)
class MediaRef:
    """Where an inbound file can be fetched. Meta gives an id (and lately a URL); Gupshup v2
    gives only a URL, so ``provider_media_id`` is ``""`` there. ``extra`` holds the rest,
    JSON-safe: Meta ``voice`` / ``animated``, Gupshup ``url_expires_at`` (ISO 8601, UTC)."""

    provider_media_id: str
    url: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    filename: str | None = None
    caption: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """One provider error: Meta ``errors[]`` items, or a Gupshup failure ``code``/``reason``."""

    code: int | None
    title: str
    message: str
    details: str


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a customer sent to a business number.

    ``type`` uses Meta's names; ``content`` is the Meta-shaped type object (``{"body": ...}``
    for text; for ``contacts``, whose Meta object is a list, ``{"contacts": [...]}``; for a
    flow reply, ``nfm_reply.response`` additionally holds ``response_json`` parsed, or None
    when it is not a JSON object). ``text`` is a short preview for lists and notifications.
    ``context_id`` is the id of the message replied to, as the provider knows it.
    """

    provider: str
    route_key: str
    wa_id: str
    profile_name: str
    provider_message_id: str
    timestamp: datetime
    type: str
    content: dict[str, Any]
    text: str
    context_id: str | None
    media: MediaRef | None
    errors: tuple[ErrorInfo, ...]
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery report for a message the business sent.

    ``provider_message_id`` is the id the send API answered (Meta: the wamid; Gupshup: its own
    message id), ``wa_message_id`` the WhatsApp id when the event carries it. ``status`` is one
    of ``KNOWN_STATUSES`` or, for anything else, the provider's value in lower case.
    ``callback_data`` echoes ``biz_opaque_callback_data`` from the send.
    """

    provider: str
    route_key: str
    provider_message_id: str
    wa_message_id: str | None
    status: str
    timestamp: datetime
    recipient_wa_id: str | None
    errors: tuple[ErrorInfo, ...]
    conversation: dict[str, Any]
    pricing: dict[str, Any]
    callback_data: str | None
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TemplateStatusUpdate:
    """``message_template_status_update``: ``status`` is Meta's ``event`` in upper case
    (APPROVED, REJECTED, PAUSED, DISABLED, FLAGGED ...); ``reason`` Meta's reason code, ``""``
    when absent or ``NONE``; ``details`` the human text of ``rejection_info`` / ``disable_info``;
    ``category`` the template category when the event names it."""

    provider: str
    route_key: str
    template_id: str
    name: str
    language: str
    status: str
    reason: str
    raw: dict[str, Any]
    details: str = ""
    category: str = ""


@dataclass(frozen=True, slots=True)
class TemplateUpdate:
    """Any other change to a template: ``kind`` is ``quality`` (``message_template_quality_update``:
    previous/new quality score), ``category`` (``template_category_update``: previous/new
    category; ``previous`` is ``""`` when Meta only announces the new one) or ``components``
    (``message_template_components_update``: previous/new are ``""``, the new text is in raw)."""

    provider: str
    route_key: str
    template_id: str
    name: str
    language: str
    kind: str
    previous: str
    new: str
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OptEvent:
    """A customer opted in to or out of messages. ``source`` says which kind: Gupshup v2
    ``user-event`` (the whole number), or Meta ``user_preferences`` category
    (``marketing_messages``: marketing templates only)."""

    provider: str
    route_key: str
    wa_id: str
    opted_in: bool
    timestamp: datetime
    source: str
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """Recognised but not acted on (account updates, quality updates, billing events, calls,
    group events, edits and revokes, echoes ...), or an item too broken to read; ``kind``
    names it (``account_update``, ``messages.revoke``, ``billing-event``, ``invalid.status``)
    and ``detail`` says what was wrong with an invalid item."""

    provider: str
    route_key: str
    kind: str
    raw: dict[str, Any]
    detail: str = ""


Event = InboundMessage | StatusUpdate | TemplateStatusUpdate | TemplateUpdate | OptEvent | OtherEvent
