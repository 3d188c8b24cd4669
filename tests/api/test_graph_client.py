"""An unmodified Cloud API client library (pywa) pointed at Parley's /graph/ with a Parley key
sends text, template, media and interactive messages over real HTTP and reads the answers.

pywa always talks to https://graph.facebook.com/v<version>; like any httpx-based client it
takes the ``httpx.Client`` to use (``session=``), and that client's transport sends each
request to the live test server's ``/graph/`` instead. Nothing in pywa is patched.
"""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from pywa import WhatsApp, errors, types
from pywa.types.templates import BodyText, TemplateLanguage

from apps.api.meta_format import BusinessNumber, message_id_from_wamid, meta_envelope
from apps.conversations.models import Conversation, Media, Message
from apps.conversations.services import message_receive
from apps.message_templates.models import MessageTemplate
from apps.providers.backends import locmem
from apps.providers.events import InboundMessage
from apps.tenants.services import api_key_create, api_key_revoke
from apps.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.factories import (
    ContactFactory,
    ConversationFactory,
    MessageTemplateFactory,
    PhoneNumberFactory,
    WebhookEndpointFactory,
)

PNID = "106540352242922"
WABA = "102290129340398"
CUSTOMER = "16505551234"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 256

pytestmark = pytest.mark.django_db(transaction=True)


class ToLiveServer(httpx.BaseTransport):
    """Sends what a client addresses to graph.facebook.com to ``<live server>/graph``."""

    def __init__(self, base_url: str) -> None:
        self.base = httpx.URL(base_url)
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme=self.base.scheme, host=self.base.host, port=self.base.port,
                                            path="/graph" + request.url.path)
        request.headers["Host"] = self.base.netloc.decode()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def client_for(live_server, key: str, api_version: str = "23.0") -> WhatsApp:
    session = httpx.Client(transport=ToLiveServer(live_server.url), timeout=30)
    return WhatsApp(phone_id=PNID, token=key, session=session, api_version=api_version)


@pytest.fixture
def number(tenant):
    return PhoneNumberFactory(tenant=tenant, phone_number_id=PNID, display_number="15550001111", waba_id=WABA)


@pytest.fixture
def conversation(tenant, number):
    contact = ContactFactory(tenant=tenant, wa_id=CUSTOMER, profile_name="Jessica")
    return ConversationFactory(tenant=tenant, phone_number=number, contact=contact,
                               window_expires_at=timezone.now() + timedelta(hours=12))


@pytest.fixture
def bot_key(tenant):
    row, plaintext = api_key_create(tenant=tenant, name="pywa")
    row.plaintext = plaintext
    return row


@pytest.fixture
def key(bot_key) -> str:
    return bot_key.plaintext


@pytest.fixture
def wa(live_server, key, number) -> WhatsApp:
    return client_for(live_server, key)


def stored(tenant, sent) -> Message:
    assert sent.id.startswith("wamid.")
    return Message.objects.for_tenant(tenant).get(pk=message_id_from_wamid(sent.id))


def test_text(wa, tenant, conversation):
    sent = wa.send_message(to=CUSTOMER, text="Hello from a Cloud API bot")

    assert isinstance(sent, types.SentMessage)
    assert (sent.input, sent.chat.id, sent.from_phone_id) == (CUSTOMER, CUSTOMER, PNID)
    message = stored(tenant, sent)
    assert (message.type, message.content) == ("text", {"body": "Hello from a Cloud API bot", "preview_url": False})
    assert message.conversation_id == conversation.pk


def test_template(wa, tenant, number):
    MessageTemplateFactory(tenant=tenant, phone_number=number, name="order_update", language="en_US",
                           components=[{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."}],
                           status=MessageTemplate.Status.APPROVED)

    sent = wa.send_template(to=CUSTOMER, name="order_update", language=TemplateLanguage.ENGLISH_US,
                            params=[BodyText.params("Jessica", "SKBUP2")])

    assert isinstance(sent, types.SentTemplate)
    assert sent.status == types.SentTemplateStatus.ACCEPTED
    message = stored(tenant, sent)
    assert message.type == "template" and message.text_preview == "Hi Jessica, your order SKBUP2 has shipped."


def test_image_by_link(wa, tenant, conversation):
    sent = wa.send_image(to=CUSTOMER, image="https://cdn.example.com/photo.jpg", caption="Our new shop")

    message = stored(tenant, sent)
    assert message.content == {"link": "https://cdn.example.com/photo.jpg", "caption": "Our new shop"}


def test_image_by_uploaded_media(wa, tenant, conversation):
    media = wa.upload_media(media=JPEG, mime_type="image/jpeg", filename="photo.jpg")

    stored_media = Media.objects.for_tenant(tenant).get(pk=int(media.id))
    assert stored_media.mime_type == "image/jpeg" and stored_media.size == len(JPEG)

    sent = wa.send_image(to=CUSTOMER, image=media, caption="Uploaded")

    message = stored(tenant, sent)
    assert message.media_id == stored_media.pk and message.content == {"id": media.id, "caption": "Uploaded"}


def test_interactive_buttons(wa, tenant, conversation):
    sent = wa.send_message(to=CUSTOMER, text="Was this helpful?", header="Survey", footer="Tap one",
                           buttons=[types.Button(title="Yes", callback_data="yes"),
                                    types.Button(title="No", callback_data="no")])

    message = stored(tenant, sent)
    assert message.type == "interactive"
    assert message.content["type"] == "button"
    assert [b["reply"]["id"] for b in message.content["action"]["buttons"]] == ["yes", "no"]


def test_the_queued_message_is_sent_by_the_provider(wa, tenant, conversation):
    sent = wa.send_message(to=CUSTOMER, text="Goes out")

    message = stored(tenant, sent)
    assert message.status == Message.Status.ACCEPTED
    [(number_id, outbound)] = locmem.outbox
    assert (number_id, outbound.to, outbound.content) == (PNID, CUSTOMER, {"body": "Goes out", "preview_url": False})


def test_metas_errors_become_the_clients_exceptions(wa, tenant, conversation, bot_key):
    Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk).update(
        window_expires_at=timezone.now() - timedelta(hours=1))

    with pytest.raises(errors.ReEngagementMessage) as closed:
        wa.send_message(to=CUSTOMER, text="Too late")
    assert closed.value.status_code == 400 and closed.value.details

    with pytest.raises(errors.TemplateNotExists):
        wa.send_template(to=CUSTOMER, name="nope", language=TemplateLanguage.ENGLISH_US)

    with pytest.raises(errors.InvalidParameter):
        wa.send_image(to=CUSTOMER, image="https://cdn.example.com/a.jpg",
                      reply_to_message_id="wamid.NOT_A_MESSAGE_HERE")

    api_key_revoke(tenant=tenant, api_key_id=bot_key.pk)
    with pytest.raises(errors.ExpiredAccessToken) as revoked:
        wa.send_message(to=CUSTOMER, text="Hi")
    assert revoked.value.status_code == 401


def test_rate_limit(live_server, tenant, number, conversation, key):
    tenant.api_requests_per_minute = 1
    tenant.save(update_fields=["api_requests_per_minute"])
    wa = client_for(live_server, key)
    wa.send_message(to=CUSTOMER, text="one")

    with pytest.raises(errors.RateLimitHit) as limited:
        wa.send_message(to=CUSTOMER, text="two")
    assert limited.value.status_code == 429
    assert 1 <= int(limited.value.raw_response.headers["Retry-After"]) <= 60


def test_another_tenants_number(live_server, other_tenant, key, number):
    PhoneNumberFactory(tenant=other_tenant, phone_number_id="200000000000001")
    wa = WhatsApp(phone_id="200000000000001", token=key, api_version="23.0",
                  session=httpx.Client(transport=ToLiveServer(live_server.url)))

    with pytest.raises(errors.WhatsAppError) as refused:
        wa.send_message(to=CUSTOMER, text="Hi")
    assert (refused.value.code, refused.value.subcode, refused.value.type) == (100, 33, "GraphMethodException")


def test_a_bot_reads_a_meta_format_webhook_and_replies(live_server, wa, tenant, number):
    WebhookEndpointFactory(tenant=tenant, url="https://bot.example.com/", format=WebhookEndpoint.Format.META)
    received = message_receive(phone_number=number, inbound=InboundMessage(
        provider="meta_cloud", route_key=PNID, wa_id=CUSTOMER, profile_name="Jessica",
        provider_message_id="wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUYzMjEzNDM2RTZGQ0MzMDJBRgA=",
        timestamp=timezone.now().replace(microsecond=0), type="text", content={"body": "Where is my order?"},
        text="Where is my order?", context_id=None, media=None, errors=(), raw={}))
    delivery = WebhookDelivery.objects.for_tenant(tenant).get(event_type="message.received")
    body = meta_envelope(delivery.payload, BusinessNumber(PNID, "15550001111", WABA))
    replies = []
    wa.on_message()(lambda client, message: replies.append(message.reply_text("On its way!", quote=True)))

    assert wa.webhook_update_handler(json.dumps(body).encode()) == ("ok", 200)

    [sent] = replies
    reply = stored(tenant, sent)
    assert reply.reply_to_id == received.pk and reply.content["body"] == "On its way!"
    assert reply.contact_id == received.contact_id

    assert wa.mark_message_as_read(message_id=received.wa_message_id).success is True
    assert Conversation.objects.for_tenant(tenant).get(pk=received.conversation_id).unread_count == 0
