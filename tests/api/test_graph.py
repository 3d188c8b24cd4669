"""The Meta-compatible endpoints under /graph/: Meta's bodies in, Meta's answers and error
envelope out, with a Parley key."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from apps.api import graph
from apps.api.meta_format import contact_user_id, message_id_from_wamid, message_wamid
from apps.contacts.models import Contact
from apps.conversations.models import Conversation, Media, Message
from apps.message_templates.models import MessageTemplate
from apps.phone_numbers.models import PhoneNumber
from apps.tenants.services import api_key_revoke
from tests.factories import (
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    MessageTemplateFactory,
    PhoneNumberFactory,
)

EXAMPLES_FILE = Path("/work/shared/fixtures/facebook-openapi/extracted/send_message_request_examples.json")
EXAMPLES: dict[str, dict] = json.loads(EXAMPLES_FILE.read_text())

PNID = "106540352242922"
RECIPIENT = "16505551234"
READ_WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUYzMjEzNDM2RTZGQ0MzMDJBRgA="
MEDIA_PLACEHOLDERS = {
    "<IMAGE_OBJECT_ID>": "image", "<AUDIO_OBJECT_ID>": "audio", "<VIDEO_OBJECT_ID>": "video",
    "<DOCUMENT_OBJECT_ID>": "document", "<MEDIA_OBJECT_ID>": "sticker",
}
FILES = {
    "image": ("photo.jpg", "image/jpeg", b"\xff\xd8\xff\xe0" + b"\x00" * 64),
    "audio": ("voice.ogg", "audio/ogg", b"OggS" + b"\x00" * 64),
    "video": ("clip.mp4", "video/mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64),
    "document": ("terms.pdf", "application/pdf", b"%PDF-1.4\n" + b"\x00" * 64),
    "sticker": ("smile.webp", "image/webp", b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 64),
}
# Every example of Meta's OpenAPI document is one Parley supports: none is left out. What
# Parley refuses (group sends, business-scoped user ids) is covered by its own tests below.
SUPPORTED = sorted(EXAMPLES)


MESSAGE_TYPES = ("text", "template", "image", "video", "audio", "document", "sticker", "location", "contacts",
                 "interactive", "reaction")


def body_type(body: dict) -> str:
    """The message type of a Meta body (Meta's examples sometimes leave ``type`` out)."""
    present = [name for name in MESSAGE_TYPES if name in body]
    return body.get("type") or (present[0] if len(present) == 1 else "text")


def url(number_id: str = PNID, what: str = "messages", version: str = "v23.0") -> str:
    return f"/graph/{version}/{number_id}/{what}"


@pytest.fixture
def number(tenant) -> PhoneNumber:
    return PhoneNumberFactory(tenant=tenant, phone_number_id=PNID, display_number="15550001111",
                              waba_id="102290129340398")


@pytest.fixture
def conversation(tenant, number) -> Conversation:
    """A conversation with +1 650 555 1234 whose 24-hour window is open."""
    contact = ContactFactory(tenant=tenant, wa_id=RECIPIENT, profile_name="Jessica")
    return ConversationFactory(tenant=tenant, phone_number=number, contact=contact,
                               window_expires_at=timezone.now() + timedelta(hours=20))


@pytest.fixture
def inbound(conversation) -> Message:
    return MessageFactory(conversation=conversation, direction=Message.Direction.INBOUND,
                          status=Message.Status.RECEIVED, wa_message_id=READ_WAMID, provider_message_id=READ_WAMID)


def post(client: APIClient, body, number_id: str = PNID, **kwargs):
    return client.post(url(number_id), body, format="json", **kwargs)


def text_body(to: str = "+16505551234", **extra) -> dict:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "text",
            "text": {"preview_url": False, "body": "Hello"}, **extra}


def assert_meta_error(response, code: int, status: int, subcode: int | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    if subcode is None:
        assert error["message"].startswith(f"(#{code}) ")
        assert error["type"] == "OAuthException"
        assert "error_subcode" not in error
    else:
        assert error["error_subcode"] == subcode
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert error["error_data"]["details"]
    assert re.fullmatch(r"A[A-Za-z0-9_-]{22}", error["fbtrace_id"])
    return error


def assert_sent(response, to: str) -> Message:
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["messaging_product"] == "whatsapp"
    assert answer["contacts"] == [{"input": to, "wa_id": re.sub(r"\D", "", to)}]
    [sent] = answer["messages"]
    assert sent["id"].startswith("wamid.")
    pk = message_id_from_wamid(sent["id"])
    message = Message.objects.unscoped().get(pk=pk)
    assert message.direction == Message.Direction.OUTBOUND and message.status == Message.Status.QUEUED
    return message


# --- every example of Meta's OpenAPI document ----------------------------------------------

def stored_components(template: dict) -> tuple[list[dict], str]:
    """Stored (creation-shape) components that a send of ``template`` fits, and the format."""
    stored: list[dict] = []
    buttons: list[dict] = []
    parameter_format = "positional"
    for component in template.get("components", []):
        kind, params = component["type"].lower(), component.get("parameters", [])
        if kind == "header":
            media = [p["type"] for p in params if p["type"] in ("image", "video", "document", "location")]
            stored.append({"type": "HEADER", "format": media[0].upper()} if media else
                          {"type": "HEADER", "format": "TEXT",
                           "text": " ".join(f"{{{{{i}}}}}" for i in range(1, len(params) + 1))})
        elif kind == "body":
            names = [p["parameter_name"] for p in params if p.get("parameter_name")]
            if names:
                parameter_format = "named"
            placeholders = names or [str(i) for i in range(1, len(params) + 1)]
            stored.append({"type": "BODY", "text": "Hi " + " ".join(f"{{{{{n}}}}}" for n in placeholders)})
        elif kind == "button":
            sub_type = component["sub_type"].upper()
            button = {"type": sub_type, "text": f"Button {component['index']}"}
            if sub_type == "URL":
                button["url"] = "https://example.com/{{1}}"
            buttons.append(button)
    if not any(c["type"] == "BODY" for c in stored):
        stored.append({"type": "BODY", "text": "Hello World"})
    if buttons:
        stored.append({"type": "BUTTONS", "buttons": buttons})
    return stored, parameter_format


def prepared(name: str, media_ids: dict[str, str]) -> dict:
    """The example with its documentation placeholders filled in."""
    text = json.dumps(EXAMPLES[name])
    text = text.replace("{{Recipient-Phone-Number}}", "+16505551234")
    text = text.replace("{{Recipient-WA-Phone-Number}}", RECIPIENT)
    for placeholder, kind in MEDIA_PLACEHOLDERS.items():
        text = text.replace(placeholder, media_ids[kind])
    text = re.sub(r"<?http\(s\)://([^\"<>]+)>?", r"https://cdn.example.com/\1", text)
    text = text.replace("<MSGID_OF_PREV_MSG>", READ_WAMID).replace("<MSGID_OF_MSG_YOU_ARE_REPLYING_TO>", READ_WAMID)
    text = text.replace("language-and-locale-code", "en_US").replace("<TEMPLATE_NAME>", "flow_template")
    return json.loads(text)


def upload(client: APIClient, kind: str, number_id: str = PNID, **fields):
    filename, mime_type, content = FILES[kind]
    data = {"messaging_product": "whatsapp", "type": mime_type,
            "file": SimpleUploadedFile(filename, content, content_type=mime_type), **fields}
    return client.post(url(number_id, "media"), data, format="multipart")


@pytest.mark.parametrize("name", SUPPORTED)
def test_every_openapi_example_gets_metas_success_shape(api_client, tenant, number, conversation, inbound, name):
    media_ids = {kind: upload(api_client, kind).json()["id"] for kind in FILES}
    body = prepared(name, media_ids)
    if body_type(body) == "template":
        components, parameter_format = stored_components(body["template"])
        MessageTemplateFactory(tenant=tenant, phone_number=number, name=body["template"]["name"],
                               language=body["template"]["language"]["code"], components=components,
                               parameter_format=parameter_format, status=MessageTemplate.Status.APPROVED)

    response = post(api_client, body)

    if body.get("status") == "read":
        assert response.status_code == 200, response.content
        assert response.json() == {"success": True}
        return
    message = assert_sent(response, body["to"])
    type = body_type(body)
    assert message.type == type and message.phone_number_id == number.pk
    if type == "template":
        assert response.json()["messages"][0]["message_status"] == "accepted"
        assert message.content["name"] == body["template"]["name"]
    else:
        assert "message_status" not in response.json()["messages"][0]
        assert message.content == body[type]
    if type in MEDIA_PLACEHOLDERS.values() and "id" in body[type]:
        assert message.media_id == int(media_ids[type])
    if "context" in body:
        assert message.reply_to_id == inbound.pk


def test_the_examples_cover_every_kind_of_message():
    kinds = {body_type(body) for body in EXAMPLES.values() if "status" not in body}
    assert kinds == set(MESSAGE_TYPES)
    assert len(EXAMPLES) == 50


# --- what Parley sends and answers ---------------------------------------------------------

def test_text_send_is_queued_and_answers_a_stable_id(api_client, conversation):
    response = post(api_client, text_body())

    message = assert_sent(response, "+16505551234")
    assert response.json()["messages"][0]["id"] == message_wamid(message.pk)
    assert message.content == {"preview_url": False, "body": "Hello"}
    assert message.conversation_id == conversation.pk


def test_parley_number_id_works_in_the_path(api_client, number, conversation):
    response = post(api_client, text_body(), number_id=str(number.pk))

    assert assert_sent(response, "+16505551234").phone_number_id == number.pk


@pytest.mark.parametrize("version", ["v18.0", "v21.0", "v23.0", "v25.0"])
def test_versions_are_accepted(api_client, conversation, version):
    response = api_client.post(url(version=version), text_body(), format="json")

    assert_sent(response, "+16505551234")


def test_type_defaults_to_text_like_meta(api_client, conversation):
    body = text_body()
    del body["type"]

    assert assert_sent(post(api_client, body), "+16505551234").type == "text"


def test_form_encoded_body_like_curl(api_client, conversation):
    data = {"messaging_product": "whatsapp", "to": RECIPIENT, "type": "text", "text": json.dumps({"body": "Hi"})}

    response = api_client.post(url(), data, format="multipart")

    assert assert_sent(response, RECIPIENT).content == {"body": "Hi"}


def test_reply_by_the_id_this_endpoint_answered(api_client, conversation):
    first = assert_sent(post(api_client, text_body()), "+16505551234")

    second = assert_sent(post(api_client, text_body(context={"message_id": message_wamid(first.pk)})), "+16505551234")

    assert second.reply_to_id == first.pk


def test_reply_to_an_inbound_message_by_its_wamid(api_client, inbound):
    message = assert_sent(post(api_client, text_body(context={"message_id": READ_WAMID})), "+16505551234")

    assert message.reply_to_id == inbound.pk
    assert message.reply_to_provider_id == READ_WAMID


def test_reaction_to_a_sent_message_uses_its_whatsapp_id(api_client, conversation):
    sent = MessageFactory(conversation=conversation, status=Message.Status.SENT, wa_message_id="wamid.REAL1",
                          provider_message_id="wamid.REAL1")
    body = {"messaging_product": "whatsapp", "to": RECIPIENT, "type": "reaction",
            "reaction": {"message_id": message_wamid(sent.pk), "emoji": "👍"}}

    message = assert_sent(post(api_client, body), RECIPIENT)

    assert message.content == {"message_id": "wamid.REAL1", "emoji": "👍"}


def test_reaction_to_a_message_not_yet_sent_is_refused(api_client, conversation):
    queued = MessageFactory(conversation=conversation)
    body = {"messaging_product": "whatsapp", "to": RECIPIENT, "type": "reaction",
            "reaction": {"message_id": message_wamid(queued.pk), "emoji": "👍"}}

    assert_meta_error(post(api_client, body), 131009, 400)


def test_mark_as_read_records_the_read(api_client, tenant, conversation, inbound):
    later = MessageFactory(conversation=conversation, direction=Message.Direction.INBOUND,
                           status=Message.Status.RECEIVED, wa_message_id="wamid.LATER")
    Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk).update(unread_count=2)
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": READ_WAMID,
            "typing_indicator": {"type": "text"}}

    response = post(api_client, body)

    assert response.status_code == 200 and response.json() == {"success": True}
    assert Conversation.objects.for_tenant(tenant).get(pk=conversation.pk).unread_count == 1
    assert post(api_client, {**body, "message_id": later.wa_message_id}).json() == {"success": True}
    assert Conversation.objects.for_tenant(tenant).get(pk=conversation.pk).unread_count == 0


def test_mark_as_read_of_an_unknown_message(api_client, number):
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.NOPE"}

    assert_meta_error(post(api_client, body), 131009, 400)


def test_media_upload_answers_the_parley_media_id(api_client, tenant, number):
    response = upload(api_client, "image")

    assert response.status_code == 200, response.content
    answer = response.json()
    assert set(answer) == {"id"} and answer["id"].isdigit()
    media = Media.objects.for_tenant(tenant).get(pk=int(answer["id"]))
    assert (media.mime_type, media.source, media.phone_number_id) == ("image/jpeg", Media.Source.UPLOAD, number.pk)


def test_uploaded_media_is_sent_by_id(api_client, conversation):
    media_id = upload(api_client, "image").json()["id"]
    body = {"messaging_product": "whatsapp", "to": RECIPIENT, "type": "image",
            "image": {"id": media_id, "caption": "Look"}}

    message = assert_sent(post(api_client, body), RECIPIENT)

    assert message.media_id == int(media_id)
    assert message.content == {"id": media_id, "caption": "Look"}


def test_media_upload_without_file(api_client, number):
    response = api_client.post(url(what="media"), {"messaging_product": "whatsapp"}, format="multipart")

    assert_meta_error(response, 131008, 400)


def test_media_upload_of_an_unaccepted_type(api_client, number):
    data = {"messaging_product": "whatsapp", "file": SimpleUploadedFile("a.exe", b"MZ\x90\x00", "application/x-dosexec")}

    assert_meta_error(api_client.post(url(what="media"), data, format="multipart"), 131053, 400)


def test_media_upload_needs_messaging_product(api_client, number):
    filename, mime_type, content = FILES["image"]
    data = {"file": SimpleUploadedFile(filename, content, mime_type)}

    assert_meta_error(api_client.post(url(what="media"), data, format="multipart"), 131008, 400)


def test_media_upload_to_another_tenants_number(api_client, other_tenant):
    other = PhoneNumberFactory(tenant=other_tenant)

    assert_meta_error(upload(api_client, "image", number_id=other.phone_number_id), 100, 400, subcode=33)
    assert not Media.objects.unscoped().exists()


# --- errors --------------------------------------------------------------------------------

def test_missing_key(number):
    response = APIClient().post(url(), text_body(), format="json")

    assert_meta_error(response, 190, 401)
    assert response["WWW-Authenticate"]


@pytest.mark.parametrize("header", ["Bearer pk_nope.nope", "Token abc", "Bearer"])
def test_invalid_key(number, header):
    response = APIClient().post(url(), text_body(), format="json", HTTP_AUTHORIZATION=header)

    assert_meta_error(response, 190, 401)


def test_revoked_key(api_client, api_key, tenant, number):
    api_key_revoke(tenant=tenant, api_key_id=api_key.pk)

    assert_meta_error(post(api_client, text_body()), 190, 401)


def test_disabled_workspace(api_client, tenant, number):
    tenant.is_active = False
    tenant.save(update_fields=["is_active"])

    assert_meta_error(post(api_client, text_body()), 190, 401)


def test_throttled(api_client, tenant, conversation):
    tenant.api_requests_per_minute = 1
    tenant.save(update_fields=["api_requests_per_minute"])
    assert_sent(post(api_client, text_body()), "+16505551234")

    response = post(api_client, text_body())

    assert_meta_error(response, 130429, 429)
    assert 1 <= int(response["Retry-After"]) <= 60


def test_window_closed(api_client, tenant, conversation):
    Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk).update(
        window_expires_at=timezone.now() - timedelta(minutes=1))

    error = assert_meta_error(post(api_client, text_body()), 131047, 400)

    assert error["message"] == "(#131047) Re-engagement message"
    assert not Message.objects.unscoped().filter(direction=Message.Direction.OUTBOUND).exists()


def template_body(name="order_update", parameters=("Jessica",)) -> dict:
    return {"messaging_product": "whatsapp", "to": RECIPIENT, "type": "template",
            "template": {"name": name, "language": {"code": "en_US"}, "components": [
                {"type": "body", "parameters": [{"type": "text", "text": value} for value in parameters]}]}}


def test_template_outside_the_window_is_accepted(api_client, tenant, number):
    MessageTemplateFactory(tenant=tenant, phone_number=number, name="order_update", language="en_US")

    response = post(api_client, template_body())

    assert assert_sent(response, RECIPIENT).type == "template"
    assert response.json()["messages"][0]["message_status"] == "accepted"


def test_template_that_does_not_exist(api_client, number):
    assert_meta_error(post(api_client, template_body()), 132001, 404)


def test_template_not_approved(api_client, tenant, number):
    MessageTemplateFactory(tenant=tenant, phone_number=number, name="order_update", language="en_US",
                           status=MessageTemplate.Status.PENDING)

    assert_meta_error(post(api_client, template_body()), 132001, 404)


def test_template_parameters_mismatch(api_client, tenant, number):
    MessageTemplateFactory(tenant=tenant, phone_number=number, name="order_update", language="en_US")

    assert_meta_error(post(api_client, template_body(parameters=("a", "b"))), 132000, 400)


def test_contact_opted_out(api_client, tenant, conversation):
    Contact.objects.for_tenant(tenant).filter(pk=conversation.contact_id).update(
        opt_in_status=Contact.OptIn.OPTED_OUT)

    assert_meta_error(post(api_client, text_body()), 131050, 400)


def test_invalid_recipient(api_client, number):
    assert_meta_error(post(api_client, text_body(to="not a phone")), 100, 400)


@pytest.mark.parametrize("field", ["messaging_product", "to", "text"])
def test_missing_required_field(api_client, conversation, field):
    body = text_body()
    del body[field]

    assert_meta_error(post(api_client, body), 131008, 400)


@pytest.mark.parametrize("change", [
    {"messaging_product": "sms"},
    {"type": "fax", "fax": {}},
    {"type": "mark_read", "mark_read": {"message_id": READ_WAMID}},
    {"text": {"preview_url": False}},
    {"text": {"body": ""}},
    {"text": {"body": "x" * 4097}},
    {"text": "Hello"},
    {"recipient_type": "group"},
    {"recipient_type": "channel"},
    {"type": "image", "image": {"caption": "no file"}},
    {"type": "image", "image": {"link": "ftp://example.com/a.jpg"}},
    {"type": "image", "image": {"id": "1", "link": "https://example.com/a.jpg"}},
    {"type": "location", "location": {"latitude": 100, "longitude": 0}},
    {"type": "contacts", "contacts": [{"phones": []}]},
    {"type": "interactive", "interactive": {"type": "carousel", "action": {}}},
    {"type": "interactive", "interactive": {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": []}}},
    {"type": "interactive", "interactive": {"type": "list", "body": {"text": "Pick"},
                                            "action": {"button": "Open", "sections": []}}},
    {"type": "template", "template": {"name": "order_update"}},
    {"type": "reaction", "reaction": {"emoji": "👍"}},
    {"context": {"message_id": "wamid.UNKNOWN"}},
    {"biz_opaque_callback_data": {"not": "a string"}},
])
def test_invalid_value(api_client, conversation, change):
    assert_meta_error(post(api_client, {**text_body(), **change}), 131009, 400)


def test_reply_to_the_user_id_of_a_meta_format_webhook(api_client, conversation):
    user_id = contact_user_id(conversation.contact_id, RECIPIENT)
    body = text_body()
    del body["to"]
    body["recipient"] = user_id

    response = post(api_client, body)

    assert response.status_code == 200, response.content
    assert response.json()["contacts"] == [{"input": user_id, "wa_id": RECIPIENT, "user_id": user_id}]
    message = Message.objects.unscoped().get(pk=message_id_from_wamid(response.json()["messages"][0]["id"]))
    assert message.contact_id == conversation.contact_id


@pytest.mark.parametrize("user_id", ["US.13491208655302741918", "US.9999999999999999999", "US.0", "nonsense"])
def test_unknown_user_id_recipient(api_client, conversation, user_id):
    body = text_body()
    del body["to"]
    body["recipient"] = user_id

    assert_meta_error(post(api_client, body), 131062, 400)


def test_another_tenants_user_id_is_unknown(api_client, other_tenant, conversation):
    stranger = ContactFactory(tenant=other_tenant, wa_id=RECIPIENT)
    body = text_body()
    del body["to"]
    body["recipient"] = contact_user_id(stranger.pk, RECIPIENT)

    assert_meta_error(post(api_client, body), 131062, 400)
    assert not Message.objects.unscoped().exists()


@pytest.mark.parametrize("reference", ["99999999999999999999", "9223372036854775808"])
def test_ids_beyond_any_row_are_refused_not_crashed(api_client, conversation, reference):
    assert_meta_error(post(api_client, text_body(context={"message_id": reference})), 131009, 400)
    image = {"messaging_product": "whatsapp", "to": RECIPIENT, "type": "image", "image": {"id": reference}}
    assert_meta_error(post(api_client, image), 131009, 400)
    assert_meta_error(post(api_client, text_body(), number_id=reference), 100, 400, subcode=33)


def test_body_that_is_not_json(api_client, number):
    response = api_client.post(url(), b"{not json", content_type="application/json")

    assert_meta_error(response, 100, 400)


def test_body_too_big(api_client, number, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    assert_meta_error(post(api_client, text_body(text={"body": "x" * 2000})), 100, 400)


def test_body_that_is_not_an_object(api_client, number):
    assert_meta_error(post(api_client, [text_body()]), 100, 400)


def test_unknown_number(api_client, number):
    error = assert_meta_error(post(api_client, text_body(), number_id="999999999"), 100, 400, subcode=33)

    assert error["type"] == "GraphMethodException"
    assert error["message"].startswith("Unsupported post request. Object with ID '999999999' does not exist")


def test_another_tenants_number_looks_like_an_unknown_one(api_client, other_tenant, number):
    other = PhoneNumberFactory(tenant=other_tenant, phone_number_id="200000000000001")
    ContactFactory(tenant=other_tenant, wa_id=RECIPIENT)

    for number_id in (other.phone_number_id, str(other.pk)):
        response = post(api_client, text_body(), number_id=number_id)
        error = assert_meta_error(response, 100, 400, subcode=33)
        unknown = post(api_client, text_body(), number_id="200000000000999").json()["error"]
        assert error["type"] == unknown["type"] == "GraphMethodException"
        assert error["message"].replace(number_id, "X") == unknown["message"].replace("200000000000999", "X")
    assert not Message.objects.unscoped().exists()


def test_disabled_number(api_client, tenant, number, conversation):
    PhoneNumber.objects.for_tenant(tenant).filter(pk=number.pk).update(status=PhoneNumber.Status.DISABLED)

    assert_meta_error(post(api_client, text_body()), 100, 400, subcode=33)


def test_other_methods_and_paths_answer_in_metas_envelope(api_client, number):
    assert_meta_error(api_client.get(url()), 100, 400, subcode=33)
    assert_meta_error(api_client.get("/graph/v23.0/1234567890"), 100, 400, subcode=33)
    assert_meta_error(api_client.post("/graph/v23.0/1234567890/message_templates", {}, format="json"),
                      100, 400, subcode=33)
    assert_meta_error(APIClient().get("/graph/v23.0/1234567890"), 190, 401)


def test_unexpected_error_is_logged_and_answered_in_metas_envelope(api_client, conversation, caplog):
    with mock.patch.object(graph, "message_send", side_effect=RuntimeError("boom")):
        response = post(api_client, text_body())

    error = assert_meta_error(response, 131000, 500)
    assert "boom" not in json.dumps(error)
    assert any(record.exc_info and "boom" in str(record.exc_info[1]) for record in caplog.records)


# --- robustness ----------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)


def paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


def replaced(value, path, new):
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mangled_example_gets_an_answer_never_a_500(api_client, tenant, number, conversation, inbound, data):
    tenant.api_requests_per_minute = 1_000_000
    tenant.save(update_fields=["api_requests_per_minute"])
    name = data.draw(st.sampled_from(SUPPORTED))
    body = prepared(name, {kind: "1" for kind in FILES})
    path = data.draw(st.sampled_from(list(paths(body))))
    body = replaced(body, path, data.draw(JSON_VALUES))

    response = post(api_client, body)

    assert response.status_code in (200, 400, 404), (body, response.content)
    answer = response.json()
    if response.status_code == 200:
        assert answer == {"success": True} or answer["messaging_product"] == "whatsapp"
    else:
        assert set(answer["error"]) >= {"message", "type", "code", "error_data", "fbtrace_id"}
