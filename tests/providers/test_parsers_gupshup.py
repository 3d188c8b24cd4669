"""Gupshup classic ("v2") callback parser.

Fixtures are Gupshup's documented samples (tests/fixtures/README.md). Types the docs show only
in tables or in other projects' tests (file, video, location, contact, enqueued, delivered,
failed) are built here from a documented sample with the documented fields changed.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from apps.providers.events import (
    MediaRef,
    OptEvent,
    OtherEvent,
    ParseError,
    StatusUpdate,
)
from apps.providers.webhooks import parse_gupshup

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks" / "gupshup"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def only(found: list[Any]) -> Any:
    assert len(found) == 1, found
    return found[0]


def message_body(gupshup_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The documented text sample with another message type and payload."""
    body = load("inbound_text.json")
    body["payload"]["type"] = gupshup_type
    body["payload"]["payload"] = payload
    return body


def event_body(event_type: str, **changes: Any) -> dict[str, Any]:
    """The documented ``sent`` sample turned into another message-event."""
    body = load("message_event_sent_pmp_with_bsuid.json")
    inner = body["payload"]
    inner["type"] = event_type
    for key in ("conversation", "pricing"):
        inner.pop(key)
    for key, value in changes.items():
        if value is None:
            inner.pop(key, None)
        else:
            inner[key] = value
    return body


# --- inbound messages -------------------------------------------------------------------------


def test_text() -> None:
    body = load("inbound_text.json")
    message = only(parse_gupshup(body))
    assert message.provider == "gupshup"
    assert message.route_key == "DemoApp"
    assert (message.wa_id, message.profile_name) == ("918x98xx21x4", "Andy")
    assert message.provider_message_id == "ABEGkYaYVSEEAhAL3SLAWwHKeKrt6s3FKB0c"
    assert message.timestamp == datetime(2020, 1, 28, 16, 9, 26, 370000, tzinfo=UTC)
    assert (message.type, message.content, message.text) == ("text", {"body": "Hi"}, "Hi")
    assert message.context_id is None and message.media is None and message.errors == ()
    assert message.raw is body["payload"]


def test_text_reply_context_prefers_gupshup_id() -> None:
    message = only(parse_gupshup(load("inbound_text_reply_with_context.json")))
    assert message.context_id == "9b71295f-f7af-4c1f-b2b4-31b4a4867bad"
    body = load("inbound_text_reply_with_context.json")
    del body["payload"]["context"]["gsId"]
    assert only(parse_gupshup(body)).context_id == "gBEGkYaYVSEEAgnPFrOLcjkFjL8"


def test_bsuid_message_with_a_wamid_id() -> None:
    message = only(parse_gupshup(load("inbound_text_with_bsuid.json")))
    assert message.provider_message_id == "wamid.HBgMOTE3NTA2MDgwNDgwFQIAEhgUM0FFNTVCQzgxQzNBQUExQzUwMEMA"
    assert message.wa_id == "917506080480"
    assert message.raw["sender"]["userId"] == "IN.1648738043044942"


def test_image() -> None:
    message = only(parse_gupshup(load("inbound_image.json")))
    url = ("https://filemanager.gupshup.io/wa/23038a99-929b-408b-80eb-4d30cebb93d4/wa/media/"
           "2f997fea-9696-46c4-a2e5-8667fd27988d?download=false")
    assert message.type == "image"
    assert message.media == MediaRef(
        provider_media_id="",
        url=url,
        mime_type="image/jpeg",
        caption="Sample image",
        extra={"url_expires_at": "2024-06-17T07:13:40.228000+00:00"},
    )
    assert message.content == {"url": url, "mime_type": "image/jpeg", "caption": "Sample image",
                               "url_expires_at": "2024-06-17T07:13:40.228000+00:00"}
    assert message.text == "Sample image"


def test_audio() -> None:
    message = only(parse_gupshup(load("inbound_audio.json")))
    assert message.type == "audio"
    assert message.media.mime_type == "audio/ogg; codecs=opus"
    assert message.media.url.endswith("60830ca4-c005-420a-9574-50a50c9a7736?download=false")
    assert message.media.caption is None
    assert message.text == "🎵 Audio"


def test_file_becomes_document() -> None:
    message = only(parse_gupshup(message_body("file", {
        "caption": "Invoice", "name": "invoice.pdf", "url": "https://filemanager.gupshup.io/wa/x/wa/media/y",
        "contentType": "application/pdf", "urlExpiry": 1718608420228,
    })))
    assert message.type == "document"
    assert message.media == MediaRef(
        provider_media_id="",
        url="https://filemanager.gupshup.io/wa/x/wa/media/y",
        mime_type="application/pdf",
        filename="invoice.pdf",
        caption="Invoice",
        extra={"url_expires_at": "2024-06-17T07:13:40.228000+00:00"},
    )
    assert message.text == "Invoice"
    uncaptioned = only(parse_gupshup(message_body("file", {"name": "a.pdf", "url": "https://example.com/a.pdf"})))
    assert uncaptioned.text == "📄 a.pdf"


@pytest.mark.parametrize(("gupshup_type", "preview"), [("video", "🎥 Video"), ("sticker", "Sticker")])
def test_other_media(gupshup_type: str, preview: str) -> None:
    message = only(parse_gupshup(message_body(gupshup_type, {"url": "https://example.com/f", "contentType": "x/y"})))
    assert message.type == gupshup_type
    assert (message.media.url, message.media.mime_type, message.text) == ("https://example.com/f", "x/y", preview)


def test_unreadable_url_expiry_is_kept_not_fatal() -> None:
    message = only(parse_gupshup(message_body("image", {"url": "https://example.com/i", "urlExpiry": "later"})))
    assert message.media.extra == {"url_expiry": "later"}


def test_location() -> None:
    # Shape of docs.gupshup.io/docs/other: coordinates as strings.
    message = only(parse_gupshup(message_body("location", {"longitude": "72.8552172", "latitude": "19.1453658"})))
    assert message.type == "location"
    assert message.content == {"latitude": 19.1453658, "longitude": 72.8552172}
    assert message.text == "📍 19.1453658, 72.8552172"
    named = only(parse_gupshup(message_body("location", {
        "longitude": 72.877655, "latitude": 19.075983, "name": "Gupshup", "address": "Goregaon, Mumbai"})))
    assert named.content["name"] == "Gupshup"
    assert named.text == "📍 Gupshup"


def test_contact_becomes_contacts() -> None:
    card = {
        "addresses": [{"city": "Menlo Park", "countryCode": "us", "street": "1 Hacker Way", "type": "HOME"}],
        "emails": [{"email": "dev@example.com", "type": "WORK"}],
        "name": {"first_name": "Dev", "formatted_name": "Dev Support", "last_name": "Support"},
        "org": {"company": "Dev Support"},
        "phones": [{"phone": "+1 (650) 555-1234", "type": "WORK", "wa_id": "16505551234"}],
    }
    message = only(parse_gupshup(message_body("contact", {"contacts": [card]})))
    assert message.type == "contacts"
    assert message.content == {"contacts": [card]}
    assert message.text == "👤 Dev Support"


@pytest.mark.parametrize("name", ["inbound_button_reply.json", "inbound_interactive_quick_reply_newer_doc_revision.json"])
def test_button_reply_and_interactive_quick_reply(name: str) -> None:
    message = only(parse_gupshup(load(name)))
    assert message.type == "interactive"
    assert message.content == {"type": "button_reply", "button_reply": {"id": "qr1", "title": "First"}}
    assert message.text == "First"
    assert message.context_id == "123b0fb2-0620-493b-8f7e-5a1ceb6d8c58"
    assert message.profile_name == "John"


def test_list_reply() -> None:
    message = only(parse_gupshup(load("inbound_list_reply.json")))
    assert message.type == "interactive"
    # The classic send API sets options' postbackText (it has no row ids), so that is the id.
    assert message.content == {"type": "list_reply", "list_reply": {
        "id": "section 1 row 1 postback payload",
        "title": "section 1 row 1",
        "description": "first row of first section description",
    }}
    assert message.text == "section 1 row 1"
    assert message.raw["payload"]["id"] == "list1"


def test_template_quick_reply_button() -> None:
    message = only(parse_gupshup(load("inbound_template_quick_reply_with_postback.json")))
    assert message.type == "button"
    assert message.content == {"payload": "<POSTBACK_TEXT>", "text": "<BUTTON_TEXT>"}
    assert message.text == "<BUTTON_TEXT>"
    assert message.context_id == "<MESSAGE_ID>"
    assert message.timestamp == datetime(2024, 4, 4, 11, 37, 44, 720000, tzinfo=UTC)
    body = load("inbound_template_quick_reply_with_postback.json")
    del body["payload"]["payload"]["postbackText"]
    assert only(parse_gupshup(body)).content == {"payload": "<BUTTON_TEXT>", "text": "<BUTTON_TEXT>"}


def test_unknown_message_type_is_an_other_event() -> None:
    event = only(parse_gupshup(message_body("hologram", {"x": 1})))
    assert isinstance(event, OtherEvent)
    assert (event.kind, event.route_key) == ("message.hologram", "DemoApp")


def test_message_without_sender_is_invalid() -> None:
    body = load("inbound_text.json")
    del body["payload"]["sender"]
    del body["payload"]["source"]
    event = only(parse_gupshup(body))
    assert event.kind == "invalid.message"
    assert event.detail == "message has no 'id' or sender phone"


def test_message_without_timestamp_is_invalid() -> None:
    body = load("inbound_text.json")
    del body["timestamp"]
    assert only(parse_gupshup(body)).kind == "invalid.message"


# --- message events ---------------------------------------------------------------------------


def test_sent_event_matches_on_gsid_and_keeps_conversation_and_pricing() -> None:
    body = load("message_event_sent_pmp_with_bsuid.json")
    status = only(parse_gupshup(body))
    assert isinstance(status, StatusUpdate)
    assert status.route_key == "Highbreed"
    assert status.provider_message_id == "793df8da-2283-4774-a861-c2ffbae83823"  # gsId
    assert status.wa_message_id == "cc3651a4-493b-4a38-b867-c547af202259"  # id
    assert status.status == "sent"
    assert status.timestamp == datetime(2026, 4, 23, 11, 35, 26, tzinfo=UTC)  # payload.ts, seconds
    assert status.recipient_wa_id == "917506080480"
    assert status.conversation == {"id": "05c0fb064921e533f66798cc17f8e5ff", "expiresAt": 1776944126,
                                   "type": "authentication"}
    assert status.pricing == {"policy": "PMP", "category": "authentication", "type": "regular"}
    assert status.errors == () and status.callback_data is None
    assert status.raw is body["payload"]


def test_read_event() -> None:
    status = only(parse_gupshup(load("message_event_read_coex_with_bsuid.json")))
    assert (status.status, status.provider_message_id, status.wa_message_id) == (
        "read", "0614a4df-13f1-4948-87f0-06c980ac5796", "8d0e9a05-e049-4930-9d21-557f047d0921")
    assert status.timestamp == datetime(2026, 5, 8, 5, 12, 47, tzinfo=UTC)


def test_delivered_event() -> None:
    status = only(parse_gupshup(event_body("delivered")))
    assert status.status == "delivered"
    assert status.provider_message_id == "793df8da-2283-4774-a861-c2ffbae83823"
    assert status.wa_message_id == "cc3651a4-493b-4a38-b867-c547af202259"


def test_late_delivery_report_without_gsid_falls_back_to_id() -> None:
    status = only(parse_gupshup(event_body("read", gsId=None, id="gBEGkZkXRDmUAgl5FpzpjNgI5Co")))
    assert status.provider_message_id == status.wa_message_id == "gBEGkZkXRDmUAgl5FpzpjNgI5Co"


def test_enqueued_event_matches_on_id() -> None:
    body = event_body("enqueued", id="ee4a68a0-1203-4c85-8dc3-49d0b3226a35", gsId=None,
                      payload={"whatsappMessageId": "gBEGkZkXRDmUAgl5FpzpjNgI5Co", "type": "session"})
    status = only(parse_gupshup(body))
    assert status.status == "accepted"
    assert status.provider_message_id == "ee4a68a0-1203-4c85-8dc3-49d0b3226a35"
    assert status.wa_message_id == "gBEGkZkXRDmUAgl5FpzpjNgI5Co"
    # No payload.ts: the envelope's time (milliseconds) is used.
    assert status.timestamp == datetime(2026, 4, 23, 11, 35, 28, 172000, tzinfo=UTC)


def test_enqueued_event_ignores_gsid() -> None:
    status = only(parse_gupshup(event_body("enqueued", id="gupshup-id", gsId="other", payload={})))
    assert (status.provider_message_id, status.wa_message_id) == ("gupshup-id", None)


def test_failed_event_with_code() -> None:
    body = event_body("failed", id="ee4a68a0-1203-4c85-8dc3-49d0b3226a35",
                      payload={"code": 1002, "reason": "Number Does Not Exists On WhatsApp", "ts": "1592311836"})
    status = only(parse_gupshup(body))
    assert status.status == "failed"
    assert status.provider_message_id == "ee4a68a0-1203-4c85-8dc3-49d0b3226a35"
    assert status.wa_message_id is None
    error = only(list(status.errors))
    assert (error.code, error.title, error.message) == (
        1002, "Number Does Not Exists On WhatsApp", "Number Does Not Exists On WhatsApp")
    assert status.timestamp == datetime(2020, 6, 16, 12, 50, 36, tzinfo=UTC)


def test_failed_event_without_details_still_carries_an_error() -> None:
    status = only(parse_gupshup(event_body("failed", payload={})))
    assert status.status == "failed"
    assert [(error.code, error.title) for error in status.errors] == [(None, "")]


def test_deleted_and_unknown_events_pass_through_in_lower_case() -> None:
    assert only(parse_gupshup(event_body("deleted"))).status == "deleted"
    assert only(parse_gupshup(event_body("MISMATCH"))).status == "mismatch"


def test_event_without_type_or_id_is_invalid() -> None:
    assert only(parse_gupshup(event_body("", id=None))).kind == "invalid.status"
    assert only(parse_gupshup(event_body("failed", id=None, gsId=None))).kind == "invalid.status"


# --- user and billing events ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "opted_in"), [("user_event_opted_in.json", True), ("user_event_opted_out.json", False)])
def test_opt_in_and_out(name: str, opted_in: bool) -> None:
    body = load(name)
    event = only(parse_gupshup(body))
    assert isinstance(event, OptEvent)
    assert (event.route_key, event.wa_id, event.opted_in, event.source) == ("DemoApp", "918x98xx21x4", opted_in,
                                                                            "user-event")
    assert event.timestamp == datetime(2020, 3, 18, 14, 25, 5, 908000, tzinfo=UTC)
    assert event.raw is body["payload"]


@pytest.mark.parametrize("name", ["user_event_sandbox_start.json", "user_event_sandbox_start_callback_set.json"])
def test_sandbox_start_is_an_other_event(name: str) -> None:
    event = only(parse_gupshup(load(name)))
    assert isinstance(event, OtherEvent)
    assert event.kind == "user-event.sandbox-start"


@pytest.mark.parametrize("name", ["billing_event_pmp.json", "billing_event_marketing_lite_cbp.json"])
def test_billing_events_are_other_events(name: str) -> None:
    body = load(name)
    event = only(parse_gupshup(body))
    assert isinstance(event, OtherEvent)
    assert (event.kind, event.route_key) == ("billing-event", body["app"])
    assert event.raw is body["payload"]
    assert "deductions" in event.raw


# --- structure --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "not an object"),
        ("text", "not an object"),
        ({"app": "DemoApp", "payload": {}}, "no 'type'"),
        ({"app": "DemoApp", "type": "message"}, "no 'payload' object"),
        ({"app": "DemoApp", "type": "message", "payload": "Hi"}, "no 'payload' object"),
    ],
)
def test_structurally_broken_bodies_raise_parse_error(payload: Any, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_gupshup(payload)


def test_unknown_event_type_is_an_other_event() -> None:
    body = copy.deepcopy(load("billing_event_pmp.json"))
    body["type"] = "template-event"
    assert only(parse_gupshup(body)).kind == "template-event"


def test_missing_app_gives_an_empty_route_key() -> None:
    body = load("inbound_text.json")
    del body["app"]
    assert only(parse_gupshup(body)).route_key == ""
