"""Tenant webhooks in Meta's format: the translation of stored Parley events into Meta's
envelope (protocol.md A5), which events reach a Meta-format endpoint, and deliveries signed
with X-Hub-Signature-256 that a Cloud API bot (pywa) verifies and reads unchanged."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
import responses
from django.core.cache import cache
from django.utils import timezone
from pywa import WhatsApp, types
from rest_framework.test import APIClient

from apps.api.meta_format import (
    META_EVENT_TYPES,
    BusinessNumber,
    contact_id_from_user_id,
    contact_user_id,
    dashboard_sample_envelope,
    message_id_from_wamid,
    message_wamid,
    meta_envelope,
)
from apps.conversations.models import Message
from apps.conversations.services import message_receive, message_statuses_apply
from apps.core.scoping import tenant_scope
from apps.providers.backends import locmem
from apps.providers.events import ErrorInfo, InboundMessage, StatusUpdate
from apps.providers.webhooks.parsers.meta import parse_meta
from apps.tenants.services import api_key_create
from apps.webhooks import sender, services
from apps.webhooks.models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint
from tests.factories import PhoneNumberFactory, WebhookEndpointFactory

META_URL = "https://bot.example.com/whatsapp"
PARLEY_URL = "https://hooks.example.com/parley"
SECRET = "whsec_meta_format_test"
PNID = "106540352242922"
WABA = "102290129340398"
NUMBER = BusinessNumber(phone_number_id=PNID, display_phone_number="15550001111", waba_id=WABA)
AT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
EPOCH = str(int(AT.timestamp()))


@pytest.fixture(autouse=True)
def _clean():
    cache.clear()
    locmem.reset()
    yield
    locmem.reset()
    cache.clear()


@pytest.fixture
def number(tenant):
    return PhoneNumberFactory(tenant=tenant, phone_number_id=PNID, display_number="15550001111", waba_id=WABA)


@pytest.fixture
def meta_endpoint(tenant):
    return WebhookEndpointFactory(tenant=tenant, url=META_URL, secret=SECRET, format=WebhookEndpoint.Format.META)


def event(event_type: str, **data) -> dict:
    base = {"id": 7, "phone_number_id": 3, "conversation_id": 5, "direction": "outbound", "type": "text",
            "status": event_type.split(".")[1], "wa_message_id": "wamid.PROVIDER7",
            "contact": {"id": 9, "wa_id": "16505551234", "name": "Jessica"}, "content": {"body": "Hi"},
            "created_at": AT.isoformat(), "occurred_at": AT.isoformat(), "status_at": AT.isoformat(),
            "media_id": None}
    return {"id": "evt_1", "type": event_type, "created_at": "2026-11-21T10:00:05.000Z", "data": {**base, **data}}


def received(**data) -> dict:
    return event("message.received", direction="inbound", status="received", wa_message_id="wamid.IN1",
                 status_at=None, **data)


def value_of(envelope: dict) -> dict:
    [entry] = envelope["entry"]
    [change] = entry["changes"]
    assert change["field"] == "messages"
    return change["value"]


def bot(**kwargs) -> tuple[WhatsApp, list]:
    """A pywa bot for the business number, as its author would write it for the Cloud API."""
    wa = WhatsApp(phone_id=PNID, token="unused", waba_id=WABA, app_secret=kwargs.pop("app_secret", SECRET),
                  verify_token="verify", **kwargs)
    updates: list = []
    wa.on_message()(lambda _, message: updates.append(message))
    wa.on_message_status()(lambda _, status: updates.append(status))
    return wa, updates


# --- ids -----------------------------------------------------------------------------------

def test_message_ids_round_trip():
    wamid = message_wamid(12345)

    assert wamid.startswith("wamid.") and "=" not in wamid and "+" not in wamid and "/" not in wamid
    assert message_id_from_wamid(wamid) == 12345
    assert message_wamid(12345) == wamid


@pytest.mark.parametrize("value", ["wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUYzMjEzNDM2RTZGQ0MzMDJBRgA=", "wamid.",
                                   "wamid.!!!", "12345", "", None, "wamid." + "A" * 80])
def test_other_ids_are_not_parley_ids(value):
    assert message_id_from_wamid(value) is None


def test_user_ids():
    assert contact_user_id(9, "16505551234") == "US.9"
    assert contact_user_id(9, "919876543210") == "IN.9"
    assert contact_user_id(9, "") == "ZZ.9"
    assert contact_id_from_user_id("US.9") == 9
    assert contact_id_from_user_id("US.ENT.9") is None and contact_id_from_user_id("9") is None


# --- translation ---------------------------------------------------------------------------

def test_received_text_is_metas_envelope():
    assert meta_envelope(received(content={"body": "Is this still available?"}), NUMBER) == {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA, "changes": [{"value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": PNID},
            "contacts": [{"profile": {"name": "Jessica"}, "wa_id": "16505551234", "user_id": "US.9"}],
            "messages": [{"from": "16505551234", "from_user_id": "US.9", "id": "wamid.IN1", "timestamp": EPOCH,
                          "type": "text", "text": {"body": "Is this still available?"}}],
        }, "field": "messages"}]}],
    }


def test_parleys_own_meta_parser_reads_it_back():
    [inbound] = parse_meta(meta_envelope(received(content={"body": "Hello"}), NUMBER))

    assert isinstance(inbound, InboundMessage)
    assert (inbound.route_key, inbound.wa_id, inbound.profile_name, inbound.provider_message_id) == (
        PNID, "16505551234", "Jessica", "wamid.IN1")
    assert (inbound.type, inbound.text, inbound.timestamp) == ("text", "Hello", AT)


def test_received_file_names_the_parley_media():
    content = {"caption": "Taj Mahal", "mime_type": "image/jpeg", "sha256": "SfInY0", "id": "1003383421387256",
               "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=133"}

    [message] = value_of(meta_envelope(received(type="image", content=content, media_id=44), NUMBER))["messages"]

    assert message["image"] == {"caption": "Taj Mahal", "mime_type": "image/jpeg", "sha256": "SfInY0", "id": "44"}


def test_received_contacts_location_and_interactive_keep_metas_objects():
    cards = [{"name": {"formatted_name": "Barbara J. Johnson"}, "phones": [{"phone": "+1 415 555 0829"}]}]
    flow = {"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent", "response_json": "{\"a\": 1}",
                                               "response": {"a": 1}}}
    location = {"latitude": 37.46, "longitude": -122.21, "name": "HQ"}

    def only(envelope):
        return value_of(envelope)["messages"][0]

    assert only(meta_envelope(received(type="contacts", content={"contacts": cards}), NUMBER))["contacts"] == cards
    assert only(meta_envelope(received(type="location", content=location), NUMBER))["location"] == location
    assert only(meta_envelope(received(type="interactive", content=flow), NUMBER))["interactive"] == {
        "type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent", "response_json": "{\"a\": 1}"}}


def test_received_reply_quotes_the_id_the_bot_knows():
    to_outbound = received(reply_to={"id": 3, "direction": "outbound", "wa_message_id": "wamid.PROVIDER3"})
    to_inbound = received(reply_to={"id": 4, "direction": "inbound", "wa_message_id": "wamid.IN4"})
    unknown = received(reply_to={"id": None, "direction": None, "wa_message_id": "wamid.OLD"})

    assert value_of(meta_envelope(to_outbound, NUMBER))["messages"][0]["context"] == {
        "from": "15550001111", "id": message_wamid(3)}
    assert value_of(meta_envelope(to_inbound, NUMBER))["messages"][0]["context"]["id"] == "wamid.IN4"
    assert value_of(meta_envelope(unknown, NUMBER))["messages"][0]["context"]["id"] == "wamid.OLD"


def test_received_unsupported_type():
    data = received(type="unsupported", content={"type": "poll"},
                    error={"code": 131051, "title": "Message type unknown", "detail": "Not supported."})

    [message] = value_of(meta_envelope(data, NUMBER))["messages"]

    assert message["type"] == "unsupported" and message["unsupported"] == {"type": "poll"}
    assert message["errors"] == [{"code": 131051, "title": "Message type unknown", "message": "Message type unknown",
                                  "error_data": {"details": "Not supported."}}]


@pytest.mark.parametrize("type, status", [("message.sent", "sent"), ("message.delivered", "delivered"),
                                          ("message.read", "read")])
def test_statuses_use_the_id_the_endpoint_answered(type, status):
    value = value_of(meta_envelope(event(type), NUMBER))

    assert value["statuses"] == [{"id": message_wamid(7), "status": status, "timestamp": EPOCH,
                                  "recipient_id": "16505551234"}]
    assert value["contacts"] == [{"profile": {"name": "Jessica"}, "wa_id": "16505551234", "user_id": "US.9"}]
    [update] = parse_meta(meta_envelope(event(type), NUMBER))
    assert isinstance(update, StatusUpdate)
    assert (update.provider_message_id, update.status, update.timestamp) == (message_wamid(7), status, AT)


def test_sent_carries_pricing_and_conversation():
    pricing = {"pricing": {"billable": True, "pricing_model": "PMP", "category": "utility"},
               "conversation": {"id": "c1", "origin": {"type": "utility"}}}

    [status] = value_of(meta_envelope(event("message.sent", pricing=pricing), NUMBER))["statuses"]

    assert status["pricing"] == pricing["pricing"] and status["conversation"] == pricing["conversation"]


def test_failed_carries_metas_error():
    data = event("message.failed", error={"code": 131047, "title": "Re-engagement message",
                                          "detail": "More than 24 hours have passed."})

    [status] = value_of(meta_envelope(data, NUMBER))["statuses"]

    assert status["status"] == "failed"
    assert status["errors"] == [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
                                 "error_data": {"details": "More than 24 hours have passed."}}]


def test_failure_without_a_provider_code_is_metas_generic_error():
    data = event("message.failed", error={"code": None, "title": "", "detail": ""})

    [status] = value_of(meta_envelope(data, NUMBER))["statuses"]

    assert status["errors"] == [{"code": 131000, "title": "Something went wrong", "message": "Something went wrong"}]


def test_status_time_falls_back_to_the_event_time():
    [status] = value_of(meta_envelope(event("message.failed", status_at=None, error={}), NUMBER))["statuses"]

    assert status["timestamp"] == str(int(datetime(2026, 11, 21, 10, 0, 5, tzinfo=UTC).timestamp()))


@pytest.mark.parametrize("type", sorted(set(EVENT_TYPES) - META_EVENT_TYPES))
def test_events_meta_has_no_webhook_for(type):
    assert meta_envelope(event(type), NUMBER) is None


def test_test_event_is_metas_dashboard_sample():
    envelope = meta_envelope({"id": "evt_t", "type": "webhook.test", "created_at": "x", "data": {}}, None)

    assert envelope == dashboard_sample_envelope()
    assert value_of(envelope)["messages"][0]["text"] == {"body": "this is a text message"}


# --- which events reach a Meta-format endpoint ---------------------------------------------

def test_only_metas_events_are_emitted_to_a_meta_endpoint(tenant, meta_endpoint):
    parley = WebhookEndpointFactory(tenant=tenant, url=PARLEY_URL)
    every = [(type, {"n": index}) for index, type in enumerate(EVENT_TYPES)]

    written = services.event_emit_many(tenant=tenant, events=every)
    services.event_emit(tenant=tenant, type="template.status_changed", data={"name": "t"})
    services.event_emit(tenant=tenant, type="message.received", data={"n": 99})

    types_for = {
        endpoint.pk: sorted(WebhookDelivery.objects.for_tenant(tenant).filter(endpoint=endpoint)
                            .values_list("event_type", flat=True))
        for endpoint in (meta_endpoint, parley)
    }
    assert types_for[meta_endpoint.pk] == sorted([*META_EVENT_TYPES, "message.received"])
    assert types_for[parley.pk] == sorted([*EVENT_TYPES, "template.status_changed", "message.received"])
    assert written == len(EVENT_TYPES) + len(META_EVENT_TYPES)


def test_a_meta_endpoints_event_filter_still_applies(tenant):
    endpoint = WebhookEndpointFactory(tenant=tenant, format=WebhookEndpoint.Format.META,
                                      events=["message.received", "conversation.opened"])

    services.event_emit_many(tenant=tenant, events=[(type, {}) for type in EVENT_TYPES])

    assert list(WebhookDelivery.objects.for_tenant(tenant).filter(endpoint=endpoint)
                .values_list("event_type", flat=True)) == ["message.received"]


# --- deliveries ----------------------------------------------------------------------------

def dispatch(tenant) -> services.DispatchReport:
    with tenant_scope(tenant):
        return services.webhook_deliveries_dispatch(tenant_id=tenant.pk)


def meta_posts() -> list:
    return [call.request for call in responses.calls if call.request.url == META_URL]


def inbound_message(**kwargs) -> InboundMessage:
    values = {"provider": "meta_cloud", "route_key": PNID, "wa_id": "16505551234", "profile_name": "Jessica",
              "provider_message_id": "wamid.IN1", "timestamp": AT, "type": "text",
              "content": {"body": "Is this still available?"}, "text": "Is this still available?",
              "context_id": None, "media": None, "errors": (), "raw": {}}
    return InboundMessage(**{**values, **kwargs})


@responses.activate
def test_received_message_is_delivered_signed_like_meta(tenant, number, meta_endpoint):
    responses.add(responses.POST, META_URL, status=200)
    responses.add(responses.POST, PARLEY_URL, status=200)
    WebhookEndpointFactory(tenant=tenant, url=PARLEY_URL, secret="whsec_parley")
    message = message_receive(phone_number=number, inbound=inbound_message())

    report = dispatch(tenant)

    assert report.succeeded == 3  # Meta: message.received; Parley: it and conversation.opened
    [request] = meta_posts()
    body = request.body
    assert request.headers["X-Hub-Signature-256"] == "sha256=" + hmac.new(SECRET.encode(), body,
                                                                            hashlib.sha256).hexdigest()
    assert "Parley-Signature" not in request.headers
    assert request.headers["Content-Type"] == "application/json"
    envelope = json.loads(body)
    assert envelope["object"] == "whatsapp_business_account" and envelope["entry"][0]["id"] == WABA
    value = value_of(envelope)
    assert value["metadata"] == {"display_phone_number": "15550001111", "phone_number_id": PNID}
    assert value["contacts"] == [{"profile": {"name": "Jessica"}, "wa_id": "16505551234",
                                  "user_id": contact_user_id(message.contact_id, "16505551234")}]
    assert value["messages"] == [{"from": "16505551234", "from_user_id": contact_user_id(message.contact_id,
                                                                                         "16505551234"),
                                  "id": "wamid.IN1", "timestamp": EPOCH, "type": "text",
                                  "text": {"body": "Is this still available?"}}]
    parley = [call.request for call in responses.calls if call.request.url == PARLEY_URL]
    assert all("Parley-Signature" in r.headers and "X-Hub-Signature-256" not in r.headers for r in parley)

    wa, updates = bot()
    assert wa.webhook_update_validator(body, request.headers["X-Hub-Signature-256"]) is None
    assert wa.webhook_update_handler(body) == ("ok", 200)
    [parsed] = updates
    assert isinstance(parsed, types.Message)
    assert (parsed.id, parsed.text, parsed.from_user.wa_id, parsed.from_user.name) == (
        "wamid.IN1", "Is this still available?", "16505551234", "Jessica")
    assert parsed.timestamp == AT
    other_secret, _ = bot(app_secret="whsec_someone_else")
    assert other_secret.webhook_update_validator(body, request.headers["X-Hub-Signature-256"]) == ("Forbidden", 403)


@responses.activate
def test_outbound_statuses_carry_the_id_the_graph_endpoint_answered(tenant, number, meta_endpoint,
                                                                   django_capture_on_commit_callbacks):
    responses.add(responses.POST, META_URL, status=200)
    # Opens the window, which lasts 24 hours from now (not from a fixed date).
    message_receive(phone_number=number, inbound=inbound_message(timestamp=timezone.now().replace(microsecond=0)))
    dispatch(tenant)
    responses.calls.reset()
    _, key = api_key_create(tenant=tenant, name="bot")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"/graph/v23.0/{PNID}/messages", {
            "messaging_product": "whatsapp", "to": "16505551234", "type": "text", "text": {"body": "Yes!"}},
            format="json").json()
    wamid = answer["messages"][0]["id"]
    sent = Message.objects.for_tenant(tenant).get(pk=message_id_from_wamid(wamid))
    assert sent.status == Message.Status.ACCEPTED and sent.provider_message_id.startswith("wamid.LOCMEM")
    assert not WebhookDelivery.objects.for_tenant(tenant).filter(event_type="message.accepted").exists()

    at = timezone.now().replace(microsecond=0)

    def status(kind: str, errors=()) -> StatusUpdate:
        return StatusUpdate(provider="meta_cloud", route_key=PNID, provider_message_id=sent.provider_message_id,
                            wa_message_id=sent.provider_message_id, status=kind, timestamp=at,
                            recipient_wa_id="16505551234", errors=errors, conversation={}, pricing={},
                            callback_data=str(sent.pk), raw={})

    message_statuses_apply(phone_number=number, updates=[status("sent")])
    message_statuses_apply(phone_number=number, updates=[status("failed", errors=(ErrorInfo(
        code=131026, title="Message undeliverable", message="Message undeliverable",
        details="Unable to deliver message."),))])
    dispatch(tenant)

    bodies = [request.body for request in meta_posts()]
    statuses = [value_of(json.loads(body))["statuses"][0] for body in bodies]
    assert [(s["id"], s["status"], s["timestamp"], s["recipient_id"]) for s in statuses] == [
        (wamid, "sent", str(int(at.timestamp())), "16505551234"),
        (wamid, "failed", str(int(at.timestamp())), "16505551234"),
    ]
    assert statuses[1]["errors"][0]["code"] == 131026

    wa, updates = bot()
    for request in meta_posts():
        assert wa.webhook_update_validator(request.body, request.headers["X-Hub-Signature-256"]) is None
        wa.webhook_update_handler(request.body)
    assert [(u.id, u.status) for u in updates] == [(wamid, types.MessageStatusType.SENT),
                                                   (wamid, types.MessageStatusType.FAILED)]
    assert updates[1].error.code == 131026


@responses.activate
def test_test_event_to_a_meta_endpoint(tenant, meta_endpoint):
    responses.add(responses.POST, META_URL, status=200)

    services.webhook_test_event_send(tenant=tenant, endpoint_id=meta_endpoint.pk)
    dispatch(tenant)

    [request] = meta_posts()
    assert json.loads(request.body) == dashboard_sample_envelope()
    assert request.headers["X-Hub-Signature-256"] == sender.meta_signature(SECRET, request.body)


@responses.activate
def test_event_stored_before_the_switch_to_metas_format_is_not_posted(tenant):
    endpoint = WebhookEndpointFactory(tenant=tenant, url=META_URL, secret=SECRET)
    services.event_emit(tenant=tenant, type="contact.opted_out", data={"contact_id": 1})
    WebhookEndpoint.objects.for_tenant(tenant).filter(pk=endpoint.pk).update(format=WebhookEndpoint.Format.META)

    report = dispatch(tenant)

    assert not responses.calls
    assert report.retrying == 1
    attempt = WebhookDelivery.objects.for_tenant(tenant).get().attempts.get()
    assert "has no Meta webhook form" in attempt.error
