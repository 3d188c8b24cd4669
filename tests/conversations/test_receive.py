from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.contacts.models import Contact
from apps.conversations.models import Conversation, Media, Message
from apps.conversations.services import contact_opt_event_apply, message_receive
from apps.providers.events import InboundMessage, MediaRef, OptEvent
from apps.webhooks.models import WebhookDelivery
from tests.factories import MessageFactory, WebhookEndpointFactory


def inbound(wamid="wamid.IN1", text="Hello", at=None, **kwargs):
    values = {"provider": "meta_cloud", "route_key": "5550001", "wa_id": "14155550177", "profile_name": "Grace",
              "provider_message_id": wamid, "timestamp": at or timezone.now().replace(microsecond=0),
              "type": "text", "content": {"body": text}, "text": text, "context_id": None, "media": None,
              "errors": (), "raw": {}}
    values.update(kwargs)
    return InboundMessage(**values)


@pytest.fixture(autouse=True)
def endpoint(tenant):
    return WebhookEndpointFactory(tenant=tenant)


def test_first_message_creates_contact_and_conversation_and_opens_the_window(scoped, number):
    at = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    message = message_receive(phone_number=number, inbound=inbound(at=at))
    conversation = message.conversation
    assert message.direction == "inbound" and message.status == "received" and message.occurred_at == at
    assert conversation.contact.wa_id == "14155550177" and conversation.contact.profile_name == "Grace"
    conversation.refresh_from_db()
    assert conversation.window_expires_at == at + timedelta(hours=24)
    assert conversation.unread_count == 1 and conversation.last_message_preview == "Hello"
    types = set(WebhookDelivery.objects.values_list("event_type", flat=True))
    assert types == {"message.received", "conversation.opened"}


def test_duplicates_are_dropped(scoped, number):
    assert message_receive(phone_number=number, inbound=inbound()) is not None
    assert message_receive(phone_number=number, inbound=inbound()) is None
    assert Message.objects.count() == 1
    assert Conversation.objects.get().unread_count == 1


def test_the_window_only_moves_forward(scoped, number):
    late = timezone.now()
    message_receive(phone_number=number, inbound=inbound("wamid.1", at=late))
    message_receive(phone_number=number, inbound=inbound("wamid.0", at=late - timedelta(hours=2)))
    assert Conversation.objects.get().window_expires_at == late.replace(microsecond=late.microsecond) + timedelta(hours=24)


def test_a_resolved_conversation_reopens(scoped, number):
    first = message_receive(phone_number=number, inbound=inbound("wamid.1"))
    Conversation.objects.filter(pk=first.conversation_id).update(status="resolved")
    message_receive(phone_number=number, inbound=inbound("wamid.2"))
    assert Conversation.objects.get().status == "open"
    assert WebhookDelivery.objects.filter(event_type="conversation.opened").count() == 2


def test_replies_link_to_what_they_quote(scoped, number):
    first = message_receive(phone_number=number, inbound=inbound("wamid.1"))
    ours = MessageFactory(conversation=first.conversation, provider_message_id="wamid.OURS", wa_message_id="wamid.OURS",
                          status="read")
    reply = message_receive(phone_number=number, inbound=inbound("wamid.2", context_id="wamid.OURS"))
    assert reply.reply_to == ours and reply.reply_to_provider_id == "wamid.OURS"


def test_stop_opts_out_and_confirms_start_opts_back_in(scoped, tenant, number):
    message_receive(phone_number=number, inbound=inbound("wamid.1", text="stop"))
    contact = Contact.objects.get(wa_id="14155550177")
    assert contact.opt_in_status == "opted_out" and contact.opt_in_source == "keyword"
    confirmation = Message.objects.get(direction="outbound")
    assert confirmation.content == {"body": tenant.opt_out_confirmation} and confirmation.status == "queued"
    assert WebhookDelivery.objects.filter(event_type="contact.opted_out").count() == 1
    message_receive(phone_number=number, inbound=inbound("wamid.2", text="START"))
    contact.refresh_from_db()
    assert contact.opt_in_status == "opted_in"


def test_media_is_recorded_for_the_fetch_task(scoped, number, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = message_receive(phone_number=number, inbound=inbound(
            type="image", content={"id": "MEDIA1", "mime_type": "image/jpeg"}, text="📷 Photo",
            media=MediaRef(provider_media_id="MEDIA1", mime_type="image/jpeg", sha256="abc", caption="cat")))
    assert message.media.provider_media_id == "MEDIA1" and message.media.status == Media.Status.PENDING
    assert len(callbacks) >= 1  # the fetch task is queued only once the row is committed


def test_unknown_types_are_kept_as_unsupported(scoped, number):
    message = message_receive(phone_number=number, inbound=inbound(type="hologram", content={"x": 1}, text="?"))
    assert message.type == "unsupported" and message.content == {"type": "hologram", "x": 1}


def test_gupshup_opt_events(scoped, number):
    contact_opt_event_apply(phone_number=number, event=OptEvent(
        provider="gupshup", route_key="app", wa_id="14155550188", opted_in=False, timestamp=timezone.now(),
        source="user-event", raw={}))
    assert Contact.objects.get(wa_id="14155550188").opt_in_status == "opted_out"
    assert WebhookDelivery.objects.filter(event_type="contact.opted_out").count() == 1
