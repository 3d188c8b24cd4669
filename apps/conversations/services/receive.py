"""Inbound messages: contact upsert, conversation found or (re)opened, the 24-hour window
(inbound time + 24 h), dedupe on the provider's id, replies linked to what they quote,
opt-out / opt-in keywords, media fetched later by a task, campaign replies counted."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.campaigns.models import CampaignRecipient
from apps.contacts.models import Contact
from apps.contacts.services import contact_get_or_create, contact_opt_set
from apps.conversations.models import Conversation, Media, Message
from apps.phone_numbers.models import PhoneNumber
from apps.providers.events import InboundMessage, OptEvent

from .events import conversation_event_data, message_event_data

WINDOW = timedelta(hours=24)
# Types that exist in Parley's model; anything else is kept as "unsupported" with its raw body.
KNOWN_TYPES = set(Message.Type.values)


def _matches_keyword(text: str, keywords: list[str]) -> bool:
    normalized = text.strip().strip(".!").upper()
    return bool(normalized) and normalized in {k.strip().upper() for k in keywords}


@transaction.atomic
def message_receive(*, phone_number: PhoneNumber, inbound: InboundMessage) -> Message | None:
    """Store one inbound message. Returns None for a duplicate (providers retry webhooks)."""
    from apps.webhooks.services import event_emit_many

    tenant = phone_number.tenant
    scoped = Message.objects.for_tenant(tenant)
    if scoped.filter(phone_number=phone_number, provider_message_id=inbound.provider_message_id).exists():
        return None
    contact, _ = contact_get_or_create(tenant=tenant, wa_id=inbound.wa_id, profile_name=inbound.profile_name)
    conversation, created = Conversation.objects.for_tenant(tenant).get_or_create(
        tenant=tenant, phone_number=phone_number, contact=contact)
    reply_to = None
    if inbound.context_id:
        reply_to = scoped.filter(phone_number=phone_number).filter(
            wa_message_id=inbound.context_id).first() or scoped.filter(
            phone_number=phone_number, provider_message_id=inbound.context_id).first()
    media = None
    if inbound.media is not None:
        media = Media.objects.for_tenant(tenant).create(
            tenant=tenant, phone_number=phone_number, source=Media.Source.INBOUND,
            filename=inbound.media.filename or "", mime_type=inbound.media.mime_type or "",
            sha256=inbound.media.sha256 or "", provider_media_id=inbound.media.provider_media_id or "",
            source_url=(inbound.media.url or "")[:2000],
        )
    message_type = inbound.type if inbound.type in KNOWN_TYPES else Message.Type.UNSUPPORTED
    error = inbound.errors[0] if inbound.errors else None
    try:
        with transaction.atomic():
            message = scoped.create(
                tenant=tenant, conversation=conversation, phone_number=phone_number, contact=contact,
                direction=Message.Direction.INBOUND, type=message_type,
                content=inbound.content if message_type == inbound.type else {"type": inbound.type, **inbound.content},
                text_preview=inbound.text[:255], media=media, reply_to=reply_to,
                reply_to_provider_id=inbound.context_id or "", status=Message.Status.RECEIVED,
                status_updated_at=inbound.timestamp, occurred_at=inbound.timestamp,
                provider_message_id=inbound.provider_message_id, wa_message_id=inbound.provider_message_id,
                error_code=error.code if error else None, error_title=(error.title if error else "")[:255],
                error_detail=error.details if error else "",
            )
    except IntegrityError:
        return None  # the same message arrived twice at once; the other copy stored it
    now = timezone.now()
    window = inbound.timestamp + WINDOW
    reopened = conversation.status == Conversation.Status.RESOLVED
    updates = {
        "last_message_at": inbound.timestamp, "last_inbound_at": inbound.timestamp,
        "last_message_preview": inbound.text[:255], "last_message_type": message_type,
        "last_message_direction": Message.Direction.INBOUND, "unread_count": F("unread_count") + 1,
        "updated_at": now,
    }
    if conversation.window_expires_at is None or window > conversation.window_expires_at:
        updates["window_expires_at"] = window
        conversation.window_expires_at = window
    if reopened:
        updates["status"] = Conversation.Status.OPEN
        conversation.status = Conversation.Status.OPEN
    Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk).update(**updates)
    Contact.objects.for_tenant(tenant).filter(pk=contact.pk).update(last_inbound_at=inbound.timestamp)
    _count_campaign_reply(conversation=conversation, at=inbound.timestamp)
    events = [("message.received", message_event_data(message, wa_id=contact.wa_id))]
    if created or reopened:
        events.append(("conversation.opened", conversation_event_data(conversation)))
    if message_type == Message.Type.TEXT:
        events += _keywords(tenant=tenant, phone_number=phone_number, contact=contact, text=inbound.text,
                            at=inbound.timestamp, conversation=conversation)
    event_emit_many(tenant=tenant, events=events)
    if media is not None:
        from apps.conversations.tasks import media_fetch_task

        transaction.on_commit(lambda: media_fetch_task.delay(tenant_id=tenant.pk, media_id=media.pk))
    return message


def _count_campaign_reply(*, conversation: Conversation, at) -> None:
    """A reply within 72 h of a campaign message counts toward that campaign."""
    last_campaign = (Message.objects.for_tenant(conversation.tenant_id)
                     .filter(conversation=conversation, direction=Message.Direction.OUTBOUND,
                             campaign_recipient__isnull=False, created_at__gte=at - timedelta(hours=72))
                     .order_by("-id").values_list("campaign_recipient_id", flat=True).first())
    if last_campaign:
        CampaignRecipient.objects.for_tenant(conversation.tenant_id).filter(
            pk=last_campaign, replied_at__isnull=True).update(replied_at=at)


def _keywords(*, tenant, phone_number: PhoneNumber, contact: Contact, text: str, at,
              conversation: Conversation) -> list[tuple[str, dict]]:
    from .inbox import conversation_activity_add
    from .send import message_send

    if _matches_keyword(text, tenant.opt_out_keywords):
        if contact_opt_set(contact=contact, opted_in=False, source="keyword", at=at):
            conversation_activity_add(tenant=tenant, conversation=conversation, kind="opted_out",
                                      text=f"{contact.display_name} opted out of messages (replied “{text.strip()}”)")
            if tenant.opt_out_confirmation:
                # The STOP message itself opened the window, so a plain confirmation may go out.
                message_send(tenant=tenant, to=contact.wa_id, type="text", contact=contact,
                             content={"body": tenant.opt_out_confirmation}, phone_number=phone_number,
                             opt_out_confirmation=True)
            return [("contact.opted_out", {"contact_id": contact.pk, "wa_id": contact.wa_id, "source": "keyword"})]
    elif _matches_keyword(text, tenant.opt_in_keywords):
        if contact_opt_set(contact=contact, opted_in=True, source="keyword", at=at):
            conversation_activity_add(tenant=tenant, conversation=conversation, kind="opted_in",
                                      text=f"{contact.display_name} opted back in to messages (replied “{text.strip()}”)")
    return []


@transaction.atomic
def contact_opt_event_apply(*, phone_number: PhoneNumber, event: OptEvent) -> bool:
    from apps.webhooks.services import event_emit

    tenant = phone_number.tenant
    contact, _ = contact_get_or_create(tenant=tenant, wa_id=event.wa_id)
    changed = contact_opt_set(contact=contact, opted_in=event.opted_in, source=event.source or phone_number.provider,
                              at=event.timestamp)
    if changed and not event.opted_in:
        event_emit(tenant=tenant, type="contact.opted_out",
                   data={"contact_id": contact.pk, "wa_id": contact.wa_id, "source": event.source})
    conversation = Conversation.objects.for_tenant(tenant).filter(phone_number=phone_number, contact=contact).first()
    if changed and conversation is not None:
        from .inbox import conversation_activity_add

        verb = "opted back in to messages" if event.opted_in else "opted out of messages"
        conversation_activity_add(tenant=tenant, conversation=conversation, kind="opted_in" if event.opted_in
                                  else "opted_out", text=f"{contact.display_name} {verb} ({event.source or 'provider'})")
    return changed
