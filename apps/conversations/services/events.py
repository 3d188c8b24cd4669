"""The data of tenant-facing message and conversation events (design.md's envelope ``data``).

Besides what Parley's own format shows, message events carry what Meta's webhook format needs
(``apps.api.meta_format`` builds it from the stored event alone): when the message happened and
when its status changed, the contact's WhatsApp profile name, the Parley media id, what a reply
quotes and the pricing the provider reported. Related rows are read only when already loaded,
so building the data of a batch costs no query per message.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, NullIf

from apps.conversations.models import Conversation, Message

# When the message reached each status (None until known on the row at hand).
STATUS_TIME_FIELDS = {
    Message.Status.ACCEPTED: "accepted_at",
    Message.Status.SENT: "sent_at",
    Message.Status.DELIVERED: "delivered_at",
    Message.Status.READ: "read_at",
    Message.Status.FAILED: "failed_at",
}


def message_rows_with_contact(qs: QuerySet[Message]) -> QuerySet[Message]:
    """``qs`` with the contact's number and display name as columns (``event_wa_id``,
    ``event_contact_name``, the WhatsApp profile name, else the name saved in Parley): for
    batch paths, where a Contact instance per message would cost as much as the message's own.
    Each is a lookup by the contact's primary key: joined instead, PostgreSQL hashes the whole
    contacts table for a batch of a few hundred messages."""
    from apps.contacts.models import Contact

    contact = Contact.all_tenants.filter(pk=OuterRef("contact_id"), tenant_id=OuterRef("tenant_id"))
    name = Coalesce(NullIf(F("profile_name"), Value("")), F("name"))
    return qs.annotate(event_wa_id=Subquery(contact.values("wa_id")[:1]),
                       event_contact_name=Subquery(contact.annotate(shown=name).values("shown")[:1]))


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def message_event_data(message: Message, *, wa_id: str | None = None, contact_name: str | None = None
                       ) -> dict[str, Any]:
    """``contact_name`` is the contact's display name when the caller read it without loading
    the contact; otherwise a contact loaded with the message gives it."""
    contact: dict[str, Any] = {"id": message.contact_id, "wa_id": wa_id}
    if contact_name is not None:
        contact["name"] = contact_name
    elif Message.contact.is_cached(message):
        contact["name"] = message.contact.profile_name or message.contact.name
    data: dict[str, Any] = {
        "id": message.pk,
        "phone_number_id": message.phone_number_id,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "type": message.type,
        "status": message.status,
        "wa_message_id": message.wa_message_id or message.provider_message_id,
        "contact": contact,
        "content": message.content,
        "created_at": message.created_at.isoformat() if message.created_at else None,
        "occurred_at": _iso(message.occurred_at or message.created_at),
        "status_at": _iso(getattr(message, STATUS_TIME_FIELDS[message.status], None))
        if message.status in STATUS_TIME_FIELDS else None,
        "media_id": message.media_id,
    }
    if message.reply_to_id or message.reply_to_provider_id:
        quoted = message.reply_to if Message.reply_to.is_cached(message) else None
        data["reply_to"] = {
            "id": message.reply_to_id,
            "direction": quoted.direction if quoted is not None else None,
            "wa_message_id": message.reply_to_provider_id or None,
        }
    if message.pricing:
        data["pricing"] = message.pricing
    if message.campaign_recipient_id:
        data["campaign_recipient_id"] = message.campaign_recipient_id
    if message.status == Message.Status.FAILED:
        data["error"] = {"code": message.error_code, "title": message.error_title, "detail": message.error_detail}
    return data


def conversation_event_data(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "phone_number_id": conversation.phone_number_id,
        "contact_id": conversation.contact_id,
        "status": conversation.status,
        "assignee_id": conversation.assignee_id,
        "window_expires_at": conversation.window_expires_at.isoformat() if conversation.window_expires_at else None,
    }
