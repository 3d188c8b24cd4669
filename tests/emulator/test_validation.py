"""Pure pieces of the emulator: body validation, template descriptions, webhook payloads."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from apps.providers.emulator.server import default_templates
from apps.providers.emulator.validation import (
    GraphError,
    error_body,
    parse_template_definition,
    phone_digits,
    reply_choices,
    validate_send,
)
from apps.providers.emulator.webhooks import OutboundMessage, sign, status_payload

TEMPLATES = {(t.name, t.language): t for t in default_templates()}


def test_default_templates_describe_their_parameters() -> None:
    assert TEMPLATES[("hello_world", "en_US")].body_params == ()
    assert TEMPLATES[("order_update", "en")].body_params == ("1", "2")
    reminder = TEMPLATES[("appointment_reminder", "en")]
    assert reminder.named and reminder.body_params == ("first_name", "time")
    promo = TEMPLATES[("promo_offer", "en")]
    assert promo.category == "MARKETING" and promo.header_format == "IMAGE" and promo.header_params == 1
    assert [b["type"] for b in promo.buttons] == ["QUICK_REPLY", "QUICK_REPLY"]
    assert all(t.status == "APPROVED" for t in TEMPLATES.values())


def test_parse_template_definition() -> None:
    record = parse_template_definition(
        {
            "name": "order_confirmation",
            "language": "en_US",
            "category": "utility",
            "parameter_format": "named",
            "components": [
                {"type": "header", "format": "text", "text": "Order {{order_number}}"},
                {"type": "body", "text": "Hi {{first_name}}, order {{order_number}} is confirmed."},
                {
                    "type": "buttons",
                    "buttons": [{"type": "url", "text": "Track", "url": "https://x.test/{{1}}"}],
                },
            ],
        },
        "42",
    )
    assert record.status == "PENDING" and record.category == "UTILITY" and record.named
    assert record.body_params == ("first_name", "order_number") and record.header_params == 1
    assert record.buttons[0]["dynamic"] is True
    assert [c["type"] for c in record.components] == ["HEADER", "BODY", "BUTTONS"]


@pytest.mark.parametrize(
    "body",
    [
        {
            "name": "Bad-Name",
            "language": "en",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "x"}],
        },
        {"name": "ok", "category": "UTILITY", "components": [{"type": "BODY", "text": "x"}]},
        {"name": "ok", "language": "en", "category": "SPAM", "components": [{"type": "BODY", "text": "x"}]},
        {"name": "ok", "language": "en", "category": "UTILITY", "components": []},
        {
            "name": "ok",
            "language": "en",
            "category": "UTILITY",
            "components": [{"type": "FOOTER", "text": "x"}],
        },
        {
            "name": "ok",
            "language": "en",
            "category": "UTILITY",
            "parameter_format": "named",
            "components": [{"type": "BODY", "text": "Hi {{1}}"}],
        },
    ],
)
def test_parse_template_definition_rejects(body: dict) -> None:
    with pytest.raises(GraphError) as info:
        parse_template_definition(body, "1")
    assert info.value.code == 100 and info.value.http_status == 400


def test_url_button_with_placeholder_needs_a_parameter() -> None:
    record = parse_template_definition(
        {
            "name": "track",
            "language": "en",
            "category": "UTILITY",
            "components": [
                {"type": "BODY", "text": "Track it"},
                {
                    "type": "BUTTONS",
                    "buttons": [{"type": "URL", "text": "Go", "url": "https://x.test/{{1}}"}],
                },
            ],
        },
        "9",
    )
    record.status = "APPROVED"
    templates = {("track", "en"): record}
    body = {
        "messaging_product": "whatsapp",
        "to": "16505551234",
        "type": "template",
        "template": {"name": "track", "language": {"code": "en"}},
    }
    with pytest.raises(GraphError) as info:
        validate_send(body, templates)
    assert info.value.code == 132000
    body["template"]["components"] = [
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "abc"}]}
    ]
    assert validate_send(body, templates) is not None


def test_phone_digits() -> None:
    assert phone_digits("+1 (650) 555-1234") == "16505551234"
    assert phone_digits("16505551234") == "16505551234"
    assert phone_digits("abc") is None
    assert phone_digits("12") is None
    assert phone_digits("١٢٣٤٥٦٧") is None  # non-ASCII digits


def test_error_body_is_metas_envelope() -> None:
    body = error_body(GraphError(131047, "details here"))
    error = body["error"]
    assert list(error) == ["message", "type", "code", "error_data", "fbtrace_id"]
    assert error["message"] == "(#131047) Re-engagement message"
    assert error["error_data"] == {"messaging_product": "whatsapp", "details": "details here"}
    assert GraphError(132001, "x").http_status == 404
    assert GraphError(131000, "x").http_status == 500


def test_reply_choices() -> None:
    buttons = {
        "messaging_product": "whatsapp",
        "to": "16505551234",
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]},
        },
    }
    sent = validate_send(buttons, TEMPLATES)
    assert sent is not None
    assert reply_choices(buttons, sent) == [
        {
            "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": "a", "title": "A"}},
        }
    ]
    plain = {"messaging_product": "whatsapp", "to": "16505551234", "type": "text", "text": {"body": "x"}}
    sent = validate_send(plain, TEMPLATES)
    assert sent is not None and reply_choices(plain, sent) == []


def test_signature_and_status_payload() -> None:
    body = b'{"object":"whatsapp_business_account"}'
    assert sign("k", body) == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    msg = OutboundMessage("wamid.X", "1001", "15550001001", "16505551234", None, "marketing")
    sent = status_payload(msg, "sent", 1750030073)
    assert sent["timestamp"] == "1750030073" and sent["recipient_id"] == "16505551234"
    assert sent["conversation"]["expiration_timestamp"] == str(1750030073 + 86400)
    assert sent["pricing"] == {
        "billable": True,
        "pricing_model": "PMP",
        "type": "regular",
        "category": "marketing",
    }
    assert "biz_opaque_callback_data" not in sent
    failed = status_payload(msg, "failed", 1, 131026)
    assert failed["errors"][0]["code"] == 131026 and "conversation" not in failed
