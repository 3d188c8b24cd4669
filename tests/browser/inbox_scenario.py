"""A realistic inbox for the browser tests and their screenshots: every message type, notes,
activity lines, replies, reactions, a failed send, labels, an assignee."""

from __future__ import annotations

import struct
import zlib
from datetime import timedelta

from django.core.files.base import ContentFile
from django.utils import timezone

from apps.contacts.models import Contact
from apps.conversations.models import Conversation, ConversationLabel, Label, Media, Message
from apps.phone_numbers.models import PhoneNumber
from apps.tenants.models import Tenant


def png_bytes(width: int = 360, height: int = 220) -> bytes:
    """A small gradient PNG (a parcel-coloured photo stand-in), no imaging library needed."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            row += bytes((200 - y // 3, 160 + x // 8 % 60, 110 + (x + y) // 12 % 80))
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 6)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def _message(conversation: Conversation, *, direction: str, type: str, content, preview: str, at, **extra) -> Message:
    status = {"inbound": "received", "internal": "received"}.get(direction, "read")
    values = {"read_at": at, "delivered_at": at, "sent_at": at} if status == "read" else {}
    values.update(extra)
    return Message.objects.for_tenant(conversation.tenant_id).create(
        tenant_id=conversation.tenant_id, conversation=conversation, phone_number_id=conversation.phone_number_id,
        contact_id=conversation.contact_id, direction=direction, type=type, content=content, text_preview=preview,
        status=values.pop("status", status), occurred_at=at, status_updated_at=at, **values)


def build_rich_thread(*, tenant: Tenant, number: PhoneNumber, contact: Contact, agent=None) -> Conversation:
    now = timezone.now()
    conversation, _ = Conversation.objects.for_tenant(tenant).get_or_create(
        tenant=tenant, phone_number=number, contact=contact)
    yesterday = now - timedelta(days=1, hours=2)
    photo = Media.objects.for_tenant(tenant).create(tenant=tenant, phone_number=number, source="inbound",
                                                     status="ready", mime_type="image/png", filename="parcel.png")
    photo.file.save("parcel.png", ContentFile(png_bytes()), save=True)
    invoice = Media.objects.for_tenant(tenant).create(tenant=tenant, phone_number=number, source="upload",
                                                       status="ready", mime_type="application/pdf",
                                                       filename="invoice-10423.pdf", size=48213)
    invoice.file.save("invoice-10423.pdf", ContentFile(b"%PDF-1.4\n% demo\n"), save=True)

    first = _message(conversation, direction="inbound", type="text", at=yesterday,
                     content={"body": "Hi! I ordered a blender last week (#10423). Any news?"},
                     preview="Hi! I ordered a blender last week (#10423). Any news?",
                     provider_message_id="wamid.R1", wa_message_id="wamid.R1")
    _message(conversation, direction="outbound", type="template", at=yesterday + timedelta(minutes=3),
             content={"name": "order_update", "language": {"code": "en"},
                      "components": [{"type": "body", "parameters": [{"type": "text", "text": "Maya"},
                                                                     {"type": "text", "text": "#10423"}]}]},
             preview="Hi Maya, your order #10423 has shipped and is on its way.",
             provider_message_id="wamid.T1", wa_message_id="wamid.T1", sent_by=agent)
    _message(conversation, direction="internal", type="activity", at=yesterday + timedelta(minutes=4),
             content={"kind": "assigned", "text": "Ana Agent self-assigned this conversation"},
             preview="Ana Agent self-assigned this conversation")
    _message(conversation, direction="inbound", type="image", at=now - timedelta(minutes=50),
             content={"id": "media-1", "caption": "The box arrived like this 😕"}, media=photo,
             preview="The box arrived like this 😕", provider_message_id="wamid.R2", wa_message_id="wamid.R2")
    _message(conversation, direction="internal", type="note", at=now - timedelta(minutes=46),
             content={"body": "Damaged in transit — refund approved by @Sam. Ship a replacement, no return needed."},
             preview="Damaged in transit — refund approved", sent_by=agent)
    ours = _message(conversation, direction="outbound", type="text", at=now - timedelta(minutes=44),
                    content={"body": "So sorry about that, Maya! A replacement ships today. Tracking: https://track.example.com/10423"},
                    preview="So sorry about that, Maya! A replacement ships today.", reply_to=first,
                    provider_message_id="wamid.O1", wa_message_id="wamid.O1", sent_by=agent)
    _message(conversation, direction="outbound", type="document", at=now - timedelta(minutes=43),
             content={"id": str(invoice.pk), "filename": "invoice-10423.pdf"}, media=invoice,
             preview="📄 Document invoice-10423.pdf", status="delivered", read_at=None,
             provider_message_id="wamid.O2", wa_message_id="wamid.O2", sent_by=agent)
    _message(conversation, direction="inbound", type="reaction", at=now - timedelta(minutes=40),
             content={"message_id": ours.wa_message_id, "emoji": "🙏"}, preview="🙏",
             provider_message_id="wamid.R3", wa_message_id="wamid.R3")
    _message(conversation, direction="inbound", type="location", at=now - timedelta(minutes=30),
             content={"latitude": 37.7793, "longitude": -122.4193, "name": "Home", "address": "1 Dr Carlton B Goodlett Pl, San Francisco"},
             preview="📍 Home", provider_message_id="wamid.R4", wa_message_id="wamid.R4")
    _message(conversation, direction="outbound", type="interactive", at=now - timedelta(minutes=29),
             content={"type": "button", "body": {"text": "Shall we leave the parcel with a neighbour if you are out?"},
                      "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes, that's fine"}},
                                             {"type": "reply", "reply": {"id": "no", "title": "No, keep it"}}]}},
             preview="Shall we leave the parcel with a neighbour if you are out?",
             provider_message_id="wamid.O3", wa_message_id="wamid.O3", sent_by=agent)
    choice = _message(conversation, direction="inbound", type="interactive", at=now - timedelta(minutes=20),
                      content={"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes, that's fine"}},
                      preview="Yes, that's fine", provider_message_id="wamid.R5", wa_message_id="wamid.R5")
    Message.objects.for_tenant(tenant).filter(pk=choice.pk).update(
        reply_to=Message.objects.for_tenant(tenant).get(wa_message_id="wamid.O3"), reply_to_provider_id="wamid.O3")
    _message(conversation, direction="outbound", type="text", at=now - timedelta(minutes=18),
             content={"body": "Noted 👍"}, preview="Noted 👍", status="failed", read_at=None, delivered_at=None,
             sent_at=None, failed_at=now - timedelta(minutes=18), error_code=131026,
             error_title="Message undeliverable",
             error_detail="The customer's phone could not be reached: WhatsApp may not be installed, or the number "
                          "changed hands.", provider_message_id="wamid.O4", wa_message_id="wamid.O4", sent_by=agent)
    last = _message(conversation, direction="inbound", type="text", at=now - timedelta(minutes=3),
                    content={"body": "Perfect, thank you so much! *Great* service 🙌"},
                    preview="Perfect, thank you so much! *Great* service 🙌",
                    provider_message_id="wamid.R6", wa_message_id="wamid.R6")
    for name, color in (("shipping", "#2f6fd6"), ("vip", "#7b4fd6")):
        label, _ = Label.objects.for_tenant(tenant).get_or_create(tenant=tenant, name=name, defaults={"color": color})
        ConversationLabel.objects.for_tenant(tenant).get_or_create(tenant=tenant, conversation=conversation, label=label)
    Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk).update(
        last_message_at=last.occurred_at, last_inbound_at=last.occurred_at, last_message_preview=last.text_preview,
        last_message_type="text", last_message_direction="inbound", unread_count=1, assignee=agent,
        window_expires_at=last.occurred_at + timedelta(hours=24), updated_at=now)
    conversation.refresh_from_db()
    return conversation
