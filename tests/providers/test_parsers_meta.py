"""Meta Cloud API webhook parser, over real third-party payloads (tests/fixtures/README.md).

Also home of the walk over *every* webhook fixture, whatever its provider.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from apps.conversations import statuses
from apps.providers import events
from apps.providers.events import (
    KNOWN_STATUSES,
    MEDIA_TYPES,
    MESSAGE_TYPES,
    InboundMessage,
    MediaRef,
    OptEvent,
    OtherEvent,
    ParseError,
    StatusUpdate,
    TemplateStatusUpdate,
    TemplateUpdate,
)
from apps.providers.webhooks import meta_route_keys, parse_gupshup, parse_gupshup_partner, parse_meta
from apps.providers.webhooks.parsers import parse_timestamp

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks"
# Not strict JSON upstream (a stray "{" after the first object); read its first object.
LENIENT_JSON = {"meta/java/textMessageStatusRead.json"}
PROVIDERS = {events.PROVIDER_META, events.PROVIDER_GUPSHUP, events.PROVIDER_GUPSHUP_PARTNER}
EARLIEST = datetime(2015, 1, 1, tzinfo=UTC)
LATEST = datetime(2030, 1, 1, tzinfo=UTC)


def read_json(relative: str) -> Any:
    text = (FIXTURES / relative).read_text(encoding="utf-8")
    if relative in LENIENT_JSON:
        body, _end = json.JSONDecoder().raw_decode(text)
        return body
    return json.loads(text)


def is_body(data: dict[str, Any]) -> bool:
    return any(key in data for key in ("object", "entry", "type"))


def body(relative: str, case: str | None = None) -> dict[str, Any]:
    data = read_json(relative)
    return copy.deepcopy(data[case] if case is not None else data)


def only(found: list[Any]) -> Any:
    assert len(found) == 1, found
    return found[0]


def at(timestamp: int, milliseconds: int = 0) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC) + timedelta(milliseconds=milliseconds)


def first_value(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["entry"][0]["changes"][0]["value"]


# --- every fixture ----------------------------------------------------------------------------


def fixture_cases() -> list[tuple[str, str | None]]:
    """(file, case) for every webhook body under tests/fixtures/webhooks: whole files, or each
    named case of files shaped ``{case: body}`` (pywa, openapi)."""
    cases: list[tuple[str, str | None]] = []
    for path in sorted(FIXTURES.rglob("*.json")):
        relative = path.relative_to(FIXTURES).as_posix()
        data = read_json(relative)
        if is_body(data):
            cases.append((relative, None))
        else:
            cases.extend((relative, name) for name in data)
    return cases


def parser_for(relative: str, payload: dict[str, Any]):
    if relative.startswith("meta/"):
        return parse_meta
    return parse_gupshup_partner if "entry" in payload else parse_gupshup


def assert_meaningful(event: Any) -> None:
    assert event.provider in PROVIDERS
    assert isinstance(event.route_key, str) and event.route_key
    assert isinstance(event.raw, dict) and event.raw
    if isinstance(event, InboundMessage):
        assert event.wa_id and event.provider_message_id
        assert_utc(event.timestamp)
        assert event.type in MESSAGE_TYPES
        assert isinstance(event.content, dict)
        assert event.text or event.type == "reaction"  # an un-reaction has no preview
        if event.type in MEDIA_TYPES:
            assert isinstance(event.media, MediaRef)
            assert event.media.provider_media_id or event.media.url
        else:
            assert event.media is None
    elif isinstance(event, StatusUpdate):
        assert event.provider_message_id
        assert event.status in KNOWN_STATUSES
        assert_utc(event.timestamp)
        if event.status == events.FAILED:
            assert event.errors
    elif isinstance(event, TemplateStatusUpdate):
        assert event.template_id and event.name and event.language
        assert event.status and event.status == event.status.upper()
    elif isinstance(event, TemplateUpdate):
        assert event.template_id and event.name
        assert event.kind in {"quality", "category", "components"}
    elif isinstance(event, OptEvent):
        assert event.wa_id and event.source
        assert_utc(event.timestamp)
    else:
        assert isinstance(event, OtherEvent)
        assert event.kind and not event.kind.startswith("invalid."), event


def assert_utc(value: datetime) -> None:
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    assert EARLIEST < value < LATEST


ALL_CASES = fixture_cases()


def test_the_walk_covers_every_source_folder() -> None:
    folders = {relative.rsplit("/", 1)[0] for relative, _case in ALL_CASES}
    assert folders == {"meta/pywa", "meta/java", "meta/openapi", "meta/docs", "gupshup"}
    files = {relative for relative, _case in ALL_CASES}
    assert len(files) == len(list(FIXTURES.rglob("*.json"))) >= 120
    assert len(ALL_CASES) >= 190


@pytest.mark.parametrize(("relative", "case"), ALL_CASES,
                         ids=[f"{relative}#{case}" if case else relative for relative, case in ALL_CASES])
def test_every_fixture_parses_to_meaningful_events(relative: str, case: str | None) -> None:
    payload = body(relative, case)
    found = parser_for(relative, payload)(payload)
    assert found
    for event in found:
        assert_meaningful(event)


def test_nested_body_inside_a_pywa_case_parses_too() -> None:
    # template_components_update.json#element carries a second full body under "all".
    payload = body("meta/pywa/template_components_update.json", "element")
    outer = only(parse_meta(payload))
    inner = only(parse_meta(payload["all"]))
    assert (outer.kind, outer.template_id) == ("components", "12345678")
    assert (inner.kind, inner.template_id, inner.name) == ("components", "1315502779341834", "order_confirmation")


def test_lenient_fixture_is_really_not_strict_json_and_its_first_object_parses() -> None:
    text = (FIXTURES / "meta/java/textMessageStatusRead.json").read_text(encoding="utf-8")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    first, end = json.JSONDecoder().raw_decode(text)
    assert text[end:].strip() == "{"
    status = only(parse_meta(first))
    assert (status.status, status.recipient_wa_id) == ("read", "1111111111111")
    assert status.conversation == {} and status.pricing == {}


# --- inbound messages -------------------------------------------------------------------------


def test_text_message() -> None:
    payload = body("meta/pywa/message.json", "text")
    message = only(parse_meta(payload))
    assert isinstance(message, InboundMessage)
    assert message.provider == "meta_cloud"
    assert message.route_key == "1122334455667"
    assert message.wa_id == "972987654321"
    assert message.profile_name == "Test Name"
    assert message.provider_message_id == "wamid.xyzxyz"
    assert message.timestamp == datetime(2023, 10, 11, 16, 53, 43, tzinfo=UTC)
    assert (message.type, message.content, message.text) == ("text", {"body": "Body Text"}, "Body Text")
    assert message.context_id is None and message.media is None and message.errors == ()
    assert message.raw is first_value(payload)["messages"][0]


def test_text_message_from_the_official_spec_and_docs() -> None:
    spec = only(parse_meta(body("meta/openapi/webhook_examples.json", "Text Message")))
    docs = only(parse_meta(body("meta/docs/text_messages_webhook_reference_1.json")))
    for message in (spec, docs):
        assert (message.wa_id, message.profile_name) == ("16505551234", "Sheena Nelson")
        assert message.route_key == "106540352242922"
        assert message.text == "Does it come in another color?"
        assert message.timestamp == at(1749416383)


def test_profile_name_is_only_taken_from_the_matching_contact() -> None:
    # Here "from" is not the wa_id of the one contact listed: no name is borrowed from it.
    message = only(parse_meta(body("meta/java/textMessage2.json")))
    assert message.wa_id == "409552778964973"
    assert message.profile_name == ""


@pytest.mark.parametrize(
    ("case", "kind", "expected"),
    [
        ("image", "image", MediaRef("65463453", None, "image/jpeg", "4654+8g=", None, None, {})),
        ("media_with_url", "image", MediaRef(
            "65463453",
            "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=65463453&source=webhook&ext=487r9re&hash=heiwchueowbcew-dnedcw",
            "image/jpeg", "4654+8g=", None, None, {})),
        ("video", "video", MediaRef("765756756", None, "video/mp4", "Jh+2ij6PzUv/J2y+grrtegr/ZMzRxkEPwc24Oyib4s03w9Jc=",
                                    None, "caption", {})),
        ("document", "document", MediaRef("1234567890987654321", None, "application/pdf",
                                          "grwfwe/ZPx0wAbdfbdeFUNItPZ0RylL8gGUvdt3YFqc18SY=", "filename.pdf", "caption", {})),
        ("audio", "audio", MediaRef("1234567890987654321", None, "audio/ogg; codecs=opus",
                                    "E3dxS/PdYZE7ppA3pQ4mpCFaXBJ8pX4SRN/dsfvds/iPGA=", None, None, {"voice": False})),
        ("voice", "audio", MediaRef("1234567890987654321", None, "audio/ogg; codecs=opus",
                                    "m04pFf2ERdaopTyFkGPA0+bX3i+YY2dYgVFwOgDLSDI=", None, None, {"voice": True})),
        ("static_sticker", "sticker", MediaRef("1234567890987654321", None, "image/webp",
                                               "OmT4nhjUhCMIPNmj7eeOZeCYjTXkLxoOv85OMCFwSuc=", None, None, {"animated": False})),
        ("animated_sticker", "sticker", MediaRef("1234567890987654321", None, "image/webp",
                                                 "HcwyCKrTKXHk0a00ms4HWIA76GY0Du6q4Z/iuwevw=", None, None, {"animated": True})),
    ],
)
def test_media_messages(case: str, kind: str, expected: MediaRef) -> None:
    payload = body("meta/pywa/message.json", case)
    message = only(parse_meta(payload))
    assert message.type == kind
    assert message.media == expected
    assert message.content == first_value(payload)["messages"][0][kind]
    assert message.content is not first_value(payload)["messages"][0][kind]  # a copy


@pytest.mark.parametrize(
    ("case", "preview"),
    [("image", "📷 Photo"), ("video", "caption"), ("document", "caption"), ("audio", "🎵 Audio"),
     ("voice", "🎤 Voice message"), ("static_sticker", "Sticker")],
)
def test_media_previews(case: str, preview: str) -> None:
    assert only(parse_meta(body("meta/pywa/message.json", case))).text == preview


def test_media_from_the_docs_carries_url_caption_and_filename() -> None:
    document = only(parse_meta(body("meta/docs/document_messages_webhook_reference_1.json")))
    assert document.media == MediaRef(
        provider_media_id="622684793477189",
        url="https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=133...",
        mime_type="application/pdf",
        sha256="V5OPpLD/gEG6Xjg0MbmQDLFgcKsL+j5LfY4ny/pZ4MY=",
        filename="receipt.pdf",
        caption="my receipt",
    )
    uncaptioned = only(parse_meta(body("meta/java/documentMessage.json")))
    assert uncaptioned.text == "📄 4_641947.pdf"
    video = only(parse_meta(body("meta/docs/video_messages_webhook_reference_1.json")))
    assert (video.media.caption, video.text) == ("Timelapse of growth", "Timelapse of growth")


def test_location_current_and_chosen() -> None:
    current = only(parse_meta(body("meta/pywa/message.json", "current_location")))
    assert current.type == "location"
    assert current.content == {"latitude": 12.25089, "longitude": 43.90539}
    assert current.text == "📍 12.25089, 43.90539"
    chosen = only(parse_meta(body("meta/pywa/message.json", "chosen_location")))
    assert chosen.content["name"] == "Facebook HQ"
    assert chosen.content["address"] == "1 Hacker Way, Menlo Park, CA 94025"
    assert chosen.text == "📍 Facebook HQ"


def test_contacts() -> None:
    message = only(parse_meta(body("meta/pywa/message.json", "contacts")))
    assert message.type == "contacts"
    assert [card["name"]["formatted_name"] for card in message.content["contacts"]] == [
        "Chandler Bing", "Monica", "Rachel Green"]
    assert message.text == "👤 Chandler Bing, Monica, Rachel Green"
    docs = only(parse_meta(body("meta/docs/contacts_messages_webhook_reference_1.json")))
    assert docs.content["contacts"][0]["phones"][0]["wa_id"] == "14125550829"


def test_reaction_and_unreaction() -> None:
    reaction = only(parse_meta(body("meta/pywa/message.json", "reaction")))
    assert reaction.type == "reaction"
    assert reaction.content == {"message_id": "wamid.yzxyzx=", "emoji": "😮"}
    assert reaction.text == "😮"
    for case in ("unreaction_empty", "unreaction_no_emoji"):
        removed = only(parse_meta(body("meta/pywa/message.json", case)))
        assert removed.type == "reaction"
        assert removed.content["message_id"] == "wamid.yzxyzx="
        assert not removed.content.get("emoji")
        assert removed.text == ""


def test_reply_context_and_forwarded() -> None:
    reply = only(parse_meta(body("meta/pywa/message.json", "reply")))
    assert reply.context_id == "wamid.xyzxyz=="
    assert reply.text == "replied text"
    for case in ("forwarded", "forwarded_many_times"):
        assert only(parse_meta(body("meta/pywa/message.json", case))).context_id is None
    inquiry = only(parse_meta(body("meta/openapi/webhook_examples.json", "Text Message with Context (Product Inquiry)")))
    assert inquiry.context_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGA9wcm9kdWN0X2lucXVpcnkA"
    assert inquiry.raw["context"]["referred_product"]["product_retailer_id"] == "di9ozbzfi4"


def test_referral_is_kept_in_raw() -> None:
    message = only(parse_meta(body("meta/docs/text_messages_webhook_reference_3.json")))
    assert message.type == "text"
    assert message.raw["referral"]["ctwa_clid"].startswith("Aff-n8ZTOD")


def test_interactive_button_reply() -> None:
    message = only(parse_meta(body("meta/pywa/callback_button.json", "button")))
    assert message.type == "interactive"
    assert message.content == {"type": "button_reply", "button_reply": {"id": "callback_data", "title": "title"}}
    assert message.text == "title"
    assert message.context_id == "wamid.xyzxyz"


def test_interactive_list_reply_with_description() -> None:
    message = only(parse_meta(body("meta/docs/interactive_messages_webhook_reference_1.json")))
    assert message.content == {
        "type": "list_reply",
        "list_reply": {"id": "priority_express", "title": "Priority Mail Express", "description": "Next Day to 2 Days"},
    }
    assert message.text == "Priority Mail Express"
    plain = only(parse_meta(body("meta/pywa/callback_selection.json", "callback")))
    assert plain.content["list_reply"] == {"id": "callback_data", "title": "title"}


def test_flow_reply_keeps_response_json_and_its_parsed_form() -> None:
    payload = body("meta/pywa/flow_completion.json", "completion")
    message = only(parse_meta(payload))
    reply = message.content["nfm_reply"]
    assert message.content["type"] == "nfm_reply"
    assert reply["response_json"] == first_value(payload)["messages"][0]["interactive"]["nfm_reply"]["response_json"]
    assert reply["response"]["flow_token"] == "AQAAAAACS5FpgQ_cAAAAAD0QI3s."
    assert reply["response"]["delivery_rating"] == "4"
    assert (reply["body"], reply["name"], message.text) == ("Sent", "flow", "Sent")
    # The input is not modified.
    assert "response" not in first_value(payload)["messages"][0]["interactive"]["nfm_reply"]
    without_token = only(parse_meta(body("meta/pywa/flow_completion.json", "without_flow_token")))
    assert "flow_token" not in without_token.content["nfm_reply"]["response"]


def test_flow_reply_with_unreadable_response_json() -> None:
    payload = body("meta/pywa/flow_completion.json", "completion")
    first_value(payload)["messages"][0]["interactive"]["nfm_reply"]["response_json"] = "{not json"
    message = only(parse_meta(payload))
    assert message.content["nfm_reply"]["response"] is None
    assert message.content["nfm_reply"]["response_json"] == "{not json"


def test_call_permission_reply_is_an_interactive_message() -> None:
    message = only(parse_meta(body("meta/pywa/call_permission_update.json", "accept")))
    assert message.type == "interactive"
    assert message.content["call_permission_reply"]["response"] == "accept"
    assert message.text == "📞 Call permission: accept"


def test_template_quick_reply_button() -> None:
    message = only(parse_meta(body("meta/pywa/callback_button.json", "quick_reply")))
    assert message.type == "button"
    assert message.content == {"payload": "callback_data", "text": "title"}
    assert message.text == "title"
    assert message.context_id == "wamid.xyzxyz=="
    docs = only(parse_meta(body("meta/docs/button_messages_webhook_reference_1.json")))
    assert docs.content == {"payload": "Unsubscribe", "text": "Unsubscribe"}
    no_context = only(parse_meta(body("meta/pywa/callback_button.json", "quick_reply_without_context")))
    assert no_context.context_id is None and no_context.wa_id == "972987654321"


def test_unsupported_message_carries_error_131051() -> None:
    for relative, case in [("meta/pywa/message.json", "unsupported"), ("meta/java/messageDeleted.json", None),
                           ("meta/openapi/webhook_examples.json", "Unsupported Message")]:
        message = only(parse_meta(body(relative, case)))
        assert message.type == "unsupported"
        assert message.text == "[unsupported: message]"
        error = only(list(message.errors))
        assert (error.code, error.title, error.message) == (131051, "Message type unknown", "Message type unknown")
        assert error.details == "Message type is currently not supported."
    typed = only(parse_meta(body("meta/pywa/message.json", "unsupported_with_type")))
    assert typed.content == {"type": "pool"}
    assert typed.text == "[unsupported: pool]"
    docs = only(parse_meta(body("meta/docs/unsupported_messages_webhook_reference_1.json")))
    assert docs.text == "[unsupported: edit]"


def test_value_level_errors_attach_to_the_message_of_that_change() -> None:
    message = only(parse_meta(body("meta/pywa/message.json", "interactive_message_with_err")))
    assert message.type == "interactive"
    assert message.content == {}
    assert message.text == "[unsupported: interactive]"
    assert [(error.code, error.details) for error in message.errors] == [(131000, "Unsupported webhook payload")]


def test_order() -> None:
    message = only(parse_meta(body("meta/docs/order_messages_webhook_reference_1.json")))
    assert message.type == "order"
    assert message.content["catalog_id"] == "194836987003835"
    assert [item["product_retailer_id"] for item in message.content["product_items"]] == ["di9ozbzfi4", "nqryix03ez"]
    assert message.text == "🛒 Order (2 items): Love these!"
    assert only(parse_meta(body("meta/pywa/message.json", "order"))).text == "🛒 Order (3 items)"


def test_system_messages() -> None:
    changed = only(parse_meta(body("meta/pywa/system.json", "phone_number_change")))
    assert changed.type == "system"
    assert changed.content == {"body": "User A changed from 972987654321 to 972912345678", "wa_id": "972912345678",
                               "type": "user_changed_number"}
    assert changed.text == "User A changed from 972987654321 to 972912345678"
    assert changed.profile_name == ""  # no contacts in that change
    identity = only(parse_meta(body("meta/pywa/system.json", "identity_change")))
    assert identity.content["type"] == "customer_identity_changed"
    assert identity.raw["identity"]["hash"] == "xyzxyz"


def test_group_message_keeps_its_group_id_in_raw() -> None:
    message = only(parse_meta(body("meta/docs/group_messages_webhook_reference_1.json")))
    assert (message.wa_id, message.profile_name) == ("16505551234", "Tiago Mingo")
    assert message.raw["group_id"] == "HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA"


def test_long_text_preview_is_shortened_but_content_is_whole() -> None:
    payload = body("meta/pywa/message.json", "text")
    long_body = "word " * 1000
    first_value(payload)["messages"][0]["text"]["body"] = long_body
    message = only(parse_meta(payload))
    assert len(message.text) == 255 and message.text.endswith("…")
    assert message.content["body"] == long_body


# --- statuses ---------------------------------------------------------------------------------


def test_status_sent_keeps_conversation_and_pricing() -> None:
    payload = body("meta/pywa/message_status.json", "sent")
    status = only(parse_meta(payload))
    assert isinstance(status, StatusUpdate)
    assert status.provider_message_id == status.wa_message_id == "wamid.xyzxyz"
    assert status.status == "sent"
    assert status.timestamp == datetime(2023, 10, 25, 20, 49, 5, tzinfo=UTC)
    assert status.recipient_wa_id == "972987654321"
    assert status.route_key == "1122334455667"
    assert status.conversation == {"id": "7270432eae37498234f4444b35ffc5", "expiration_timestamp": "1698339900",
                                   "origin": {"type": "service"}}
    assert status.pricing == {"billable": True, "pricing_model": "CBP", "category": "service"}
    assert status.errors == () and status.callback_data is None
    assert status.raw is first_value(payload)["statuses"][0]


@pytest.mark.parametrize(("case", "expected"), [("delivered", "delivered"), ("read", "read"), ("played", "read")])
def test_status_delivered_read_and_played(case: str, expected: str) -> None:
    status = only(parse_meta(body("meta/pywa/message_status.json", case)))
    assert status.status == expected
    assert status.raw["status"] == case


def test_status_pmp_pricing_from_the_docs_and_legacy_cbp_categories() -> None:
    pmp = only(parse_meta(body("meta/docs/status_messages_webhook_reference_1.json")))
    assert pmp.pricing == {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
    assert pmp.conversation["origin"] == {"type": "marketing"}
    bare = only(parse_meta(body("meta/docs/status_messages_webhook_reference_2.json")))
    assert (bare.conversation, bare.pricing) == ({}, {})
    legacy = only(parse_meta(body("meta/java/textMessageStatusSent.json")))
    assert legacy.pricing["category"] == "business_initiated"  # pre-2023 value, passed through


@pytest.mark.parametrize(
    ("relative", "case", "code", "title", "details"),
    [
        ("meta/pywa/message_status.json", "failed", 130472, "User's number is part of an experiment",
         "Failed to send message because this user's phone number is part of an experiment"),
        ("meta/java/reEngagementMessageError.json", None, 131047, "Re-engagement message",
         "Message failed to send because more than 24 hours have passed since the customer last replied to this number."),
        ("meta/java/mediaUploadError.json", None, 131053, "Media upload error",
         "Unsupported Video mime type text/html. Please use one of video/3gpp, video/mp4."),
        ("meta/docs/status_messages_webhook_reference_3.json", None, 131049,
         "This message was not delivered to maintain healthy ecosystem engagement.",
         "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."),
    ],
)
def test_failed_statuses_carry_their_errors(relative: str, case: str | None, code: int, title: str, details: str) -> None:
    status = only(parse_meta(body(relative, case)))
    assert status.status == "failed"
    error = only(list(status.errors))
    assert (error.code, error.title, error.details) == (code, title, details)
    assert error.message == title


def test_biz_opaque_callback_data_becomes_callback_data() -> None:
    status = only(parse_meta(body("meta/pywa/message_status.json", "with_tracker")))
    assert status.callback_data == "some data"
    assert status.status == "sent"


def test_group_status() -> None:
    status = only(parse_meta(body("meta/pywa/message_status.json", "group")))
    assert status.status == "read"
    assert status.recipient_wa_id == "fowefinoewcnw"
    assert status.raw["recipient_type"] == "group"
    assert status.raw["recipient_participant_id"] == "<GROUP_PARTICIPANT_USER_PHONE_NUMBER>"


def test_unknown_status_value_passes_through_in_lower_case() -> None:
    payload = body("meta/pywa/message_status.json", "sent")
    first_value(payload)["statuses"][0]["status"] = "WARNING"
    assert only(parse_meta(payload)).status == "warning"


def test_call_statuses_are_not_message_statuses() -> None:
    event = only(parse_meta(body("meta/pywa/call_status.json", "call_status")))
    assert isinstance(event, OtherEvent) and event.kind == "calls"
    payload = body("meta/pywa/call_status.json", "call_status")
    payload["entry"][0]["changes"][0]["field"] = "messages"
    call = only(parse_meta(payload))
    assert isinstance(call, OtherEvent) and call.kind == "calls.status"


# --- batching ---------------------------------------------------------------------------------


def test_every_entry_change_message_and_status_is_read_in_order() -> None:
    status_body = body("meta/pywa/message_status.json", "sent")
    template = first_value(status_body)["statuses"][0]
    first_value(status_body)["statuses"] = [{**template, "id": f"wamid.{n}"} for n in range(1000)]
    text_body = body("meta/pywa/message.json", "text")
    reaction_change = body("meta/pywa/message.json", "reaction")["entry"][0]["changes"][0]
    text_body["entry"][0]["changes"].append(reaction_change)
    template_entry = body("meta/pywa/template_status_update.json", "approved")["entry"][0]
    batch = {"object": "whatsapp_business_account",
             "entry": status_body["entry"] + text_body["entry"] + [template_entry]}

    found = parse_meta(batch)

    assert len(found) == 1000 + 2 + 1
    assert [event.provider_message_id for event in found[:1000]] == [f"wamid.{n}" for n in range(1000)]
    assert all(event.raw is status for event, status in zip(found[:1000], first_value(status_body)["statuses"], strict=True))
    assert [event.type for event in found[1000:1002]] == ["text", "reaction"]
    assert isinstance(found[-1], TemplateStatusUpdate)
    assert meta_route_keys(batch) == {"1122334455667", "waba:102290129340398"}


def test_one_broken_item_does_not_spoil_the_batch() -> None:
    payload = body("meta/pywa/message_status.json", "sent")
    good = first_value(payload)["statuses"][0]
    first_value(payload)["statuses"] = [
        {**good, "id": None},
        {**good, "timestamp": "yesterday"},
        "not an object",
        good,
    ]
    found = parse_meta(payload)
    assert [event.kind for event in found[:3]] == ["invalid.status"] * 3
    assert found[0].detail == "status has no 'id' or 'status'"
    assert "yesterday" in found[1].detail
    assert found[2].raw == {"item": "not an object"}
    assert isinstance(found[3], StatusUpdate)

    message_payload = body("meta/pywa/message.json", "text")
    message = first_value(message_payload)["messages"][0]
    first_value(message_payload)["messages"] = [{**message, "from": ""}, message]
    broken, fine = parse_meta(message_payload)
    assert broken.kind == "invalid.message" and isinstance(fine, InboundMessage)


# --- templates, preferences and other fields --------------------------------------------------


def test_template_status_approved() -> None:
    update = only(parse_meta(body("meta/pywa/template_status_update.json", "approved")))
    assert isinstance(update, TemplateStatusUpdate)
    assert update.route_key == "102290129340398"
    assert (update.template_id, update.name, update.language) == ("1689556908129832", "order_confirmation", "en_US")
    assert (update.status, update.reason, update.details, update.category) == ("APPROVED", "", "", "UTILITY")


def test_template_status_rejected_with_reason() -> None:
    update = only(parse_meta(body("meta/docs/message_template_status_update_webhook_reference_2.json")))
    assert (update.status, update.reason, update.category) == ("REJECTED", "INVALID_FORMAT", "MARKETING")
    assert update.details.startswith("Your template has parameters placed next to each other")
    assert update.details.endswith("ensure each parameter is clearly contextualized.")
    scam = only(parse_meta(body("meta/java/rejectedTemplate.json")))
    assert (scam.status, scam.reason, scam.name, scam.language) == ("REJECTED", "SCAM", "schedule_confirmation4", "pt_BR")
    assert scam.route_key == "880480871844883"


def test_template_flagged_for_disabling() -> None:
    update = only(parse_meta(body("meta/java/templateSchedulingForDisabling.json")))
    assert (update.status, update.reason) == ("FLAGGED", "")
    assert update.details == "Disable date: January 31, 2021"


def test_template_quality_category_and_components_updates() -> None:
    quality = only(parse_meta(body("meta/pywa/template_quality_update.json", "yellow")))
    assert isinstance(quality, TemplateUpdate)
    assert (quality.kind, quality.previous, quality.new) == ("quality", "GREEN", "YELLOW")
    assert (quality.template_id, quality.name, quality.route_key) == ("806312974732579", "welcome_template", "102290129340398")
    moved = only(parse_meta(body("meta/docs/template_category_update_webhook_reference_2.json")))
    assert (moved.kind, moved.previous, moved.new) == ("category", "UTILITY", "MARKETING")
    announced = only(parse_meta(body("meta/docs/template_category_update_webhook_reference_1.json")))
    assert (announced.previous, announced.new) == ("", "UTILITY")
    assert announced.raw["correct_category"] == "MARKETING"
    components = only(parse_meta(body("meta/docs/message_template_components_update_webhook_reference_1.json")))
    assert (components.kind, components.previous, components.new) == ("components", "", "")
    assert components.raw["message_template_footer"] == "Lucky Shrub: the Succulent Specialists!"


def test_marketing_preferences_become_opt_events() -> None:
    for case in ("resume", "signup"):
        event = only(parse_meta(body("meta/pywa/user_marketing_preferences.json", case)))
        assert isinstance(event, OptEvent)
        assert (event.wa_id, event.opted_in, event.source) == ("16505551234", True, "marketing_messages")
        assert event.timestamp == datetime(2024, 11, 15, 21, 22, 1, tzinfo=UTC)
        assert event.route_key == "106540352242922"
    payload = body("meta/pywa/user_marketing_preferences.json", "resume")
    first_value(payload)["user_preferences"][0]["value"] = "stop"
    assert only(parse_meta(payload)).opted_in is False


@pytest.mark.parametrize(
    ("relative", "case", "kind"),
    [
        ("meta/pywa/account_update.json", "account_restriction", "account_update"),
        ("meta/java/accountBanned.json", None, "account_update"),
        ("meta/java/qualityUpdate.json", None, "phone_number_quality_update"),
        ("meta/docs/phone_number_quality_update_webhook_reference_1.json", None, "phone_number_quality_update"),
        ("meta/java/accountReview.json", None, "account_review_update"),
        ("meta/pywa/call_connect.json", "user_initiated", "calls"),
        ("meta/openapi/webhook_examples.json", "Group Create Message", "group_lifecycle_update"),
        ("meta/pywa/deleted_message.json", "revoke", "messages.revoke"),
        ("meta/pywa/edited_message.json", "image", "messages.edit"),
        ("meta/docs/smb_message_echoes_webhook_reference_1.json", None, "smb_message_echoes"),
        ("meta/docs/errors_messages_webhooks_reference_1.json", None, "messages.errors"),
        ("meta/docs/security_webhook_reference_1.json", None, "security"),
    ],
)
def test_recognised_but_not_acted_on(relative: str, case: str | None, kind: str) -> None:
    event = only(parse_meta(body(relative, case)))
    assert isinstance(event, OtherEvent)
    assert event.kind == kind


def test_other_event_routes_by_number_when_the_change_has_metadata_else_by_account() -> None:
    calls = only(parse_meta(body("meta/pywa/call_connect.json", "user_initiated")))
    assert calls.route_key == "743897493242"
    account = only(parse_meta(body("meta/java/accountBanned.json")))
    assert account.route_key == "whatsapp-business-account-id"
    assert account.raw == {"event": "DISABLED_UPDATE",
                           "ban_info": {"waba_ban_state": "SCHEDULE_FOR_DISABLE", "waba_ban_date": "January 31, 2021"}}


def test_unknown_fields_and_message_types_become_other_events() -> None:
    payload = body("meta/pywa/message.json", "text")
    payload["entry"][0]["changes"][0]["field"] = "brand_new_field"
    assert only(parse_meta(payload)).kind == "brand_new_field"
    payload = body("meta/pywa/message.json", "text")
    first_value(payload)["messages"][0]["type"] = "hologram"
    event = only(parse_meta(payload))
    assert (event.kind, event.raw["id"]) == ("messages.hologram", "wamid.xyzxyz")
    assert only(parse_meta({"object": "page", "entry": []})).kind == "object.page"


# --- structure --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "not an object"),
        ("{}", "not an object"),
        (None, "not an object"),
        ({"entry": []}, "no 'object'"),
        ({"object": "whatsapp_business_account"}, "no 'entry'"),
        ({"object": "whatsapp_business_account", "entry": {}}, "'entry' is not a list"),
        ({"object": "whatsapp_business_account", "entry": ["x"]}, "'entry' item is not an object"),
        ({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages"}]}]}, "no 'value' object"),
    ],
)
def test_structurally_broken_bodies_raise_parse_error(payload: Any, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_meta(payload)
    with pytest.raises(ParseError, match=message):
        meta_route_keys(payload)


def test_a_list_that_is_not_a_list_raises_parse_error() -> None:
    payload = {"object": "whatsapp_business_account",
               "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"messages": {}}}]}]}
    with pytest.raises(ParseError, match="'messages' is not a list"):
        parse_meta(payload)
    assert meta_route_keys(payload) == {"waba:1"}  # the envelope itself is sound


def test_route_keys_of_single_bodies() -> None:
    assert meta_route_keys(body("meta/pywa/message.json", "text")) == {"1122334455667"}
    assert meta_route_keys(body("meta/pywa/template_status_update.json", "rejected")) == {"waba:102290129340398"}
    assert meta_route_keys(body("meta/java/qualityUpdate.json")) == {"waba:waba-id"}
    assert meta_route_keys({"object": "whatsapp_business_account", "entry": []}) == set()


def test_parse_error_is_a_value_error() -> None:
    assert issubclass(ParseError, ValueError)


def test_events_are_frozen() -> None:
    message = only(parse_meta(body("meta/pywa/message.json", "text")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.text = "changed"  # type: ignore[misc]


def test_status_names_match_the_message_status_ladder() -> None:
    assert (events.ACCEPTED, events.SENT, events.DELIVERED, events.READ, events.FAILED) == (
        statuses.ACCEPTED, statuses.SENT, statuses.DELIVERED, statuses.READ, statuses.FAILED)


# --- timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1697043223", datetime(2023, 10, 11, 16, 53, 43, tzinfo=UTC)),
        (1697043223, datetime(2023, 10, 11, 16, 53, 43, tzinfo=UTC)),
        (1710941393420, datetime(2024, 3, 20, 13, 29, 53, 420000, tzinfo=UTC)),
        ("1710941393420", datetime(2024, 3, 20, 13, 29, 53, 420000, tzinfo=UTC)),
        (" 1710930461 ", datetime(2024, 3, 20, 10, 27, 41, tzinfo=UTC)),
        (1710930461.5, datetime(2024, 3, 20, 10, 27, 41, 500000, tzinfo=UTC)),
        (10**11, datetime.fromtimestamp(10**11, UTC)),  # the boundary itself is seconds
        (10**11 + 1, datetime(1973, 3, 3, 9, 46, 40, 1000, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(value: Any, expected: datetime) -> None:
    parsed = parse_timestamp(value)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", [None, "", "soon", True, -5, [1], "nan", 10**30])
def test_parse_timestamp_rejects_garbage(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(value)
