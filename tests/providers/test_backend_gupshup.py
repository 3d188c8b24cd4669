"""GupshupBackend (classic API): the exact form each message becomes, what cannot be sent, and
how Gupshup's answers are read. HTTP is mocked with ``responses``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses

from apps.phone_numbers.models import PhoneNumber
from apps.providers.backends.gupshup import GupshupBackend
from apps.providers.exceptions import (
    ProviderConfigurationError,
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    ProviderUnknownOutcome,
    UnsupportedFeature,
)
from apps.providers.outbound import OutboundMessage

FIXTURES = Path("/work/shared/fixtures/gupshup-docs-transcribed")
API = "https://api.gupshup.io"
MSG_URL = f"{API}/wa/api/v1/msg"
TEMPLATE_URL = f"{API}/wa/api/v1/template/msg"
API_KEY = "gs-api-key-123"
APP = "DemoApp"
SOURCE = "917834811114"
TO = "918x98xx21x4".replace("x", "0")
SUBMITTED = {"status": "submitted", "messageId": "ee4a68a0-1203-4c85-8dc3-49d0b3226a35"}
COMMON = {"channel": "whatsapp", "source": SOURCE, "destination": TO, "src.name": APP}
JSON_FIELDS = ("message", "template", "postbackTexts")


@pytest.fixture(autouse=True)
def gupshup_settings(settings):
    settings.GUPSHUP_API_URL = API


@pytest.fixture
def phone_number() -> PhoneNumber:
    return PhoneNumber(provider="gupshup", provider_app_id=APP, display_number=f"+{SOURCE}",
                       credentials={"api_key": API_KEY})


@pytest.fixture
def backend(phone_number) -> GupshupBackend:
    return GupshupBackend(phone_number=phone_number)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def form(call: Any) -> dict[str, Any]:
    """The form fields of a recorded request, JSON fields decoded."""
    body = call.request.body
    fields = {k: v[0] for k, v in parse_qs(body.decode() if isinstance(body, bytes) else body,
                                          keep_blank_values=True).items()}
    return {k: json.loads(v) if k in JSON_FIELDS else v for k, v in fields.items()}


def assert_gupshup_request(call: Any, url: str) -> None:
    assert call.request.method == "POST"
    assert call.request.url == url
    assert call.request.headers["apikey"] == API_KEY
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"


def send(backend: GupshupBackend, rsps: responses.RequestsMock, url: str, **kwargs: Any) -> dict[str, Any]:
    rsps.post(url, json=SUBMITTED, status=202)
    result = backend.send(OutboundMessage(to=TO, **kwargs))
    assert result.provider_message_id == SUBMITTED["messageId"]
    assert_gupshup_request(rsps.calls[-1], url)
    return form(rsps.calls[-1])


SESSION_CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, str]]] = [
    ("text", {"type": "text", "content": {"body": "Hello user, how are you?"}},
     {"type": "text", "text": "Hello user, how are you?"}, {"disablePreview": "true"}),
    ("text_preview", {"type": "text", "content": {"body": "https://example.com", "preview_url": True}},
     {"type": "text", "text": "https://example.com"}, {"disablePreview": "false"}),
    ("text_reply", {"type": "text", "content": {"body": "Yes"}, "reply_to": "9b71295f-f7af-4c1f"},
     {"context": {"msgId": "9b71295f-f7af-4c1f"}, "type": "text", "text": "Yes"}, {"disablePreview": "true"}),
    ("image_link", {"type": "image", "content": {"link": "https://cdn.example/s.jpg", "caption": "Sample image"}},
     {"type": "image", "originalUrl": "https://cdn.example/s.jpg", "previewUrl": "https://cdn.example/s.jpg",
      "caption": "Sample image"}, {}),
    ("image_id", {"type": "image", "content": {"id": "77362728271623327", "caption": "Lorem Ipsum"}},
     {"type": "image", "id": "77362728271623327", "caption": "Lorem Ipsum"}, {}),
    ("video_link", {"type": "video", "content": {"link": "https://cdn.example/v.mp4", "caption": "Clip"}},
     {"type": "video", "url": "https://cdn.example/v.mp4", "caption": "Clip"}, {}),
    ("video_id", {"type": "video", "content": {"id": "555"}}, {"type": "video", "id": "555"}, {}),
    ("audio_link", {"type": "audio", "content": {"link": "https://cdn.example/a.mp3"}},
     {"type": "audio", "url": "https://cdn.example/a.mp3"}, {}),
    ("audio_id", {"type": "audio", "content": {"id": "777"}}, {"type": "audio", "id": "777"}, {}),
    ("sticker_link", {"type": "sticker", "content": {"link": "https://cdn.example/s.webp"}},
     {"type": "sticker", "url": "https://cdn.example/s.webp"}, {}),
    ("sticker_id", {"type": "sticker", "content": {"id": "999"}}, {"type": "sticker", "id": "999"}, {}),
    ("document_link", {"type": "document", "content": {"link": "https://cdn.example/s.pdf", "filename": "Sample file"}},
     {"type": "file", "url": "https://cdn.example/s.pdf", "filename": "Sample file"}, {}),
    ("document_link_no_filename", {"type": "document", "content": {"link": "https://cdn.example/d/inv-7.pdf?x=1"}},
     {"type": "file", "url": "https://cdn.example/d/inv-7.pdf?x=1", "filename": "inv-7.pdf"}, {}),
    ("document_id", {"type": "document", "content": {"id": "888", "filename": "inv.pdf", "caption": "Invoice"}},
     {"type": "file", "id": "888", "filename": "inv.pdf", "caption": "Invoice"}, {}),
    ("location", {"type": "location", "content": {"latitude": 19.07, "longitude": 72.87, "name": "Mumbai",
                                                   "address": "Mumbai, MH"}},
     {"type": "location", "longitude": 72.87, "latitude": 19.07, "name": "Mumbai", "address": "Mumbai, MH"}, {}),
    ("contact", {"type": "contacts", "content": [{"name": {"formatted_name": "John Smith", "first_name": "John"},
                                                  "phones": [{"phone": "+1 650 555 1234", "type": "WORK"}]}]},
     {"type": "contact", "contact": {"name": {"formatted_name": "John Smith", "first_name": "John"},
                                     "phones": [{"phone": "+1 650 555 1234", "type": "WORK"}]}}, {}),
    ("quick_reply_text",
     {"type": "interactive", "callback_data": "msg_01HX", "content": {
         "type": "button", "header": {"type": "text", "text": "header"}, "body": {"text": "body"},
         "footer": {"text": "footer"},
         "action": {"buttons": [{"type": "reply", "reply": {"id": "qr-1", "title": "button title 1"}},
                                {"type": "reply", "reply": {"id": "qr-2", "title": "button title 2"}}]}}},
     {"type": "quick_reply", "msgid": "msg_01HX",
      "content": {"type": "text", "header": "header", "text": "body", "caption": "footer"},
      "options": [{"title": "button title 1", "postbackText": "qr-1"},
                  {"title": "button title 2", "postbackText": "qr-2"}]}, {}),
    ("quick_reply_plain",
     {"type": "interactive", "content": {
         "type": "button", "body": {"text": "Close ticket?"},
         "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}]}}},
     {"type": "quick_reply", "content": {"type": "text", "text": "Close ticket?"},
      "options": [{"title": "Yes", "postbackText": "yes"}]}, {}),
    ("quick_reply_image_header",
     {"type": "interactive", "content": {
         "type": "button", "header": {"type": "image", "image": {"link": "https://cdn.example/h.jpg"}},
         "body": {"text": "Like it?"},
         "action": {"buttons": [{"type": "reply", "reply": {"id": "like", "title": "Like"}}]}}},
     {"type": "quick_reply", "content": {"type": "image", "url": "https://cdn.example/h.jpg", "caption": "Like it?"},
      "options": [{"title": "Like", "postbackText": "like"}]}, {}),
    ("quick_reply_document_header",
     {"type": "interactive", "content": {
         "type": "button",
         "header": {"type": "document", "document": {"link": "https://cdn.example/t.pdf", "filename": "Terms"}},
         "body": {"text": "Accept?"},
         "action": {"buttons": [{"type": "reply", "reply": {"id": "ok", "title": "OK"}}]}}},
     {"type": "quick_reply", "content": {"type": "file", "url": "https://cdn.example/t.pdf", "filename": "Terms",
                                         "caption": "Accept?"},
      "options": [{"title": "OK", "postbackText": "ok"}]}, {}),
    ("list",
     {"type": "interactive", "callback_data": "msg_02", "content": {
         "type": "list", "header": {"type": "text", "text": "Shipping"}, "body": {"text": "Pick a speed"},
         "footer": {"text": "Taxes included"},
         "action": {"button": "Options", "sections": [
             {"title": "Fast", "rows": [{"id": "express", "title": "Express", "description": "Next day"}]},
             {"title": "Cheap", "rows": [{"id": "ground", "title": "Ground"}]}]}}},
     {"type": "list", "title": "Shipping", "body": "Pick a speed", "footer": "Taxes included", "msgid": "msg_02",
      "globalButtons": [{"type": "text", "title": "Options"}],
      "items": [{"title": "Fast", "options": [{"type": "text", "title": "Express", "description": "Next day",
                                               "postbackText": "express"}]},
                {"title": "Cheap", "options": [{"type": "text", "title": "Ground", "postbackText": "ground"}]}]},
     {}),
]


@pytest.mark.parametrize(("kwargs", "message", "extra"), [c[1:] for c in SESSION_CASES],
                         ids=[c[0] for c in SESSION_CASES])
def test_session_message_form(backend, rsps, kwargs, message, extra):
    fields = send(backend, rsps, MSG_URL, **kwargs)
    assert fields == {**COMMON, "message": message, **extra}


def test_message_field_is_compact_json(backend, rsps):
    rsps.post(MSG_URL, json=SUBMITTED)
    backend.send(OutboundMessage(to=TO, type="text", content={"body": "Hi ☺"}))
    raw = parse_qs(rsps.calls[0].request.body.decode())["message"][0]
    assert raw == '{"type":"text","text":"Hi ☺"}'


TEMPLATE = {
    "name": "order_update",
    "language": {"code": "en"},
    "components": [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example/p.jpg"}}]},
        {"type": "body", "parameters": [
            {"type": "text", "text": "Agent"},
            {"type": "currency", "currency": {"fallback_value": "$100.99", "code": "USD", "amount_1000": 100990}},
            {"type": "date_time", "date_time": {"fallback_value": "February 25, 1977"}},
        ]},
        {"type": "button", "sub_type": "quick_reply", "index": "0",
         "parameters": [{"type": "payload", "payload": "STOP"}]},
        {"type": "button", "sub_type": "quick_reply", "index": 2,
         "parameters": [{"type": "payload", "payload": "MORE"}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "TRK-9"}]},
    ],
}
TEMPLATE_ID = "c6aecef6-bcb0-4fb1-8100-28c094e3bc6b"


def test_template_positional_with_media_header_and_buttons(backend, rsps):
    fields = send(backend, rsps, TEMPLATE_URL, type="template", content=TEMPLATE, provider_template_id=TEMPLATE_ID,
                  callback_data="msg_1")
    assert fields == {
        **COMMON,
        "template": {"id": TEMPLATE_ID, "params": ["Agent", "$100.99", "February 25, 1977", "TRK-9"]},
        "message": {"type": "image", "image": {"link": "https://cdn.example/p.jpg"}},
        "postbackTexts": [{"index": 0, "text": "STOP"}, {"index": 2, "text": "MORE"}],
    }


def test_template_named_parameters_in_given_order(backend, rsps):
    content = {"name": "order_confirmation", "language": {"code": "en_US"}, "components": [
        {"type": "body", "parameters": [
            {"type": "text", "parameter_name": "first_name", "text": "Jessica"},
            {"type": "text", "parameter_name": "order_number", "text": "SKBUP2-4CPIG9"}]}]}
    fields = send(backend, rsps, TEMPLATE_URL, type="template", content=content, provider_template_id=TEMPLATE_ID,
                  template_parameter_format="named")
    assert fields == {**COMMON, "template": {"id": TEMPLATE_ID, "params": ["Jessica", "SKBUP2-4CPIG9"]}}


@pytest.mark.parametrize(("header", "message"), [
    ({"type": "text", "text": "Dear Jo"}, None),
    ({"type": "video", "video": {"id": "4490"}}, {"type": "video", "video": {"id": "4490"}}),
    ({"type": "document", "document": {"link": "https://cdn.example/a.pdf"}},
     {"type": "document", "document": {"link": "https://cdn.example/a.pdf"}}),
    ({"type": "location", "location": {"latitude": "19.1", "longitude": "72.8"}},
     {"type": "location", "location": {"latitude": "19.1", "longitude": "72.8"}}),
], ids=["text", "video_id", "document_link", "location"])
def test_template_headers(backend, rsps, header, message):
    content = {"name": "t", "language": {"code": "en"}, "components": [
        {"type": "header", "parameters": [header]},
        {"type": "body", "parameters": [{"type": "text", "text": "body-1"}]}]}
    fields = send(backend, rsps, TEMPLATE_URL, type="template", content=content, provider_template_id=TEMPLATE_ID)
    expected_params = ["Dear Jo", "body-1"] if header["type"] == "text" else ["body-1"]
    expected = {**COMMON, "template": {"id": TEMPLATE_ID, "params": expected_params}}
    if message:
        expected["message"] = message
    assert fields == expected


def test_template_without_parameters(backend, rsps):
    fields = send(backend, rsps, TEMPLATE_URL, type="template",
                  content={"name": "hello_world", "language": {"code": "en_US"}}, provider_template_id=TEMPLATE_ID)
    assert fields == {**COMMON, "template": {"id": TEMPLATE_ID, "params": []}}


def test_template_needs_gupshup_template_id(backend, rsps):
    with pytest.raises(ProviderConfigurationError, match="order_update"):
        backend.send(OutboundMessage(to=TO, type="template", content=TEMPLATE))
    assert len(rsps.calls) == 0


UNSUPPORTED = [
    ("reaction", {"type": "reaction", "content": {"message_id": "x", "emoji": "👍"}}, "reactions"),
    ("mark_read", {"type": "mark_read", "content": {"message_id": "x"}}, "read"),
    ("cta_url", {"type": "interactive", "content": {"type": "cta_url", "body": {"text": "b"}, "action": {
        "name": "cta_url", "parameters": {"display_text": "Go", "url": "https://x"}}}}, "cta_url"),
    ("flow", {"type": "interactive", "content": {"type": "flow", "body": {"text": "b"}, "action": {"name": "flow"}}},
     "flow"),
    ("product", {"type": "interactive", "content": {"type": "product", "action": {"catalog_id": "1"}}}, "product"),
    ("two_contacts", {"type": "contacts", "content": [{"name": {"formatted_name": "A"}},
                                                      {"name": {"formatted_name": "B"}}]}, "contact"),
    ("audio_caption", {"type": "audio", "content": {"link": "https://x/a.mp3", "caption": "no"}}, "caption"),
    ("media_header_and_footer", {"type": "interactive", "content": {
        "type": "button", "header": {"type": "image", "image": {"link": "https://x/h.jpg"}},
        "body": {"text": "b"}, "footer": {"text": "f"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "1", "title": "One"}}]}}}, "footer"),
    ("template_reply", {"type": "template", "content": TEMPLATE, "provider_template_id": TEMPLATE_ID,
                        "reply_to": "abc"}, "reply"),
    ("template_flow_button", {"type": "template", "provider_template_id": TEMPLATE_ID, "content": {
        "name": "t", "language": {"code": "en"}, "components": [
            {"type": "button", "sub_type": "flow", "index": "0",
             "parameters": [{"type": "action", "action": {"flow_token": "x"}}]}]}}, "flow"),
]


@pytest.mark.parametrize(("kwargs", "words"), [c[1:] for c in UNSUPPORTED], ids=[c[0] for c in UNSUPPORTED])
def test_unsupported_features_raise_before_sending(backend, rsps, kwargs, words):
    with pytest.raises(UnsupportedFeature) as info:
        backend.send(OutboundMessage(to=TO, **kwargs))
    assert words in str(info.value)
    assert info.value.provider == "gupshup"
    assert info.value.transient is False
    assert isinstance(info.value, ProviderPermanentError)
    assert len(rsps.calls) == 0


@pytest.mark.parametrize("kwargs", [
    {"type": "interactive", "content": {"type": "button", "body": {"text": "b"},
                                        "action": {"buttons": [{"type": "reply", "reply": {"id": "x"}}]}}},
    {"type": "text", "content": {"preview_url": True}},
    {"type": "template", "provider_template_id": TEMPLATE_ID, "content": {
        "name": "t", "language": {"code": "en"},
        "components": [{"type": "button", "sub_type": "quick_reply", "index": "first", "parameters": []}]}},
], ids=["button_without_title", "text_without_body", "bad_button_index"])
def test_malformed_content_is_a_permanent_error(backend, rsps, kwargs):
    with pytest.raises(ProviderPermanentError, match="not a valid Meta") as info:
        backend.send(OutboundMessage(to=TO, **kwargs))
    assert info.value.title == "Invalid message content"
    assert len(rsps.calls) == 0


# -- answers --------------------------------------------------------------------------------------

def test_submitted_answer_from_docs_fixture(backend, rsps):
    rsps.post(MSG_URL, body=(FIXTURES / "send_api_response_submitted.json").read_bytes(), status=200,
              content_type="text/html")
    result = backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))
    assert result.provider_message_id == "ee4a68a0-1203-4c85-8dc3-49d0b3226a35"
    assert result.wa_id is None
    assert result.message_status == "submitted"
    assert result.status_code == 200


ERROR_CASES = [
    ("invalid_destination", 400, {"message": "Invalid Destination", "status": "error"}, {},
     ProviderPermanentError, False, None, None),
    ("invalid_app", 400, {"message": "Invalid App Details", "status": "error"}, {},
     ProviderConfigurationError, False, None, None),
    ("auth_failed", 401, {"message": "Authentication Failed", "status": "error"}, {},
     ProviderConfigurationError, False, None, None),
    ("too_many_requests", 429, {"status": "error", "message": "Too Many Requests"}, {"Retry-After": "6"},
     ProviderTransientError, True, 6.0, None),
    ("error_with_200", 200, {"status": "error", "message": "Invalid Destination"}, {},
     ProviderPermanentError, False, None, None),
    ("code_1002", 400, {"status": "error", "message": "Number Does Not Exists On WhatsApp", "code": 1002}, {},
     ProviderPermanentError, False, None, 1002),
    ("code_4001", 400, {"status": "error", "message": "API rate limited", "code": 4001}, {},
     ProviderTransientError, True, 60.0, 4001),
    ("unknown_message", 400, {"status": "error", "message": "Something odd"}, {},
     ProviderPermanentError, False, None, None),
    ("server_error_html", 500, "<html>oops</html>", {}, ProviderTransientError, True, None, None),
    ("bad_gateway", 502, "", {}, ProviderTransientError, True, None, None),
]


@pytest.mark.parametrize(("status", "body", "headers", "cls", "transient", "retry_after", "code"),
                         [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_error_answers(backend, rsps, status, body, headers, cls, transient, retry_after, code):
    if isinstance(body, dict):
        rsps.post(MSG_URL, json=body, status=status, headers=headers)
    else:
        rsps.post(MSG_URL, body=body, status=status, headers=headers)
    with pytest.raises(ProviderError) as info:
        backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))
    error = info.value
    assert type(error) is cls
    assert error.transient is transient
    assert error.retry_after == retry_after
    assert error.code == code
    assert error.status_code == status
    assert error.title and error.explanation
    if isinstance(body, dict):
        assert body["message"] in str(error) or error.title in str(error)


def test_unknown_gupshup_message_is_kept_in_details(backend, rsps):
    rsps.post(MSG_URL, json={"status": "error", "message": "Something odd"}, status=400)
    with pytest.raises(ProviderPermanentError) as info:
        backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))
    assert info.value.details == "Something odd"
    assert "Something odd" in info.value.explanation


def test_2xx_without_message_id_is_an_unknown_outcome(backend, rsps):
    rsps.post(MSG_URL, json={"status": "submitted"}, status=202)
    with pytest.raises(ProviderUnknownOutcome):
        backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))


@pytest.mark.parametrize(("failure", "cls"), [
    (requests.exceptions.ConnectTimeout("connect timed out"), ProviderTransientError),
    (requests.exceptions.ReadTimeout("read timed out"), ProviderUnknownOutcome),
])
def test_transport_failures(backend, rsps, failure, cls):
    rsps.post(MSG_URL, body=failure)
    with pytest.raises(cls):
        backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))


@pytest.mark.parametrize(("changes", "missing"), [
    ({"credentials": {}}, "api_key"),
    ({"provider_app_id": ""}, "provider_app_id"),
    ({"display_number": ""}, "display_number"),
])
def test_configuration_errors(rsps, changes, missing):
    number = PhoneNumber(provider="gupshup", provider_app_id=APP, display_number=SOURCE,
                         credentials={"api_key": API_KEY})
    for key, value in changes.items():
        setattr(number, key, value)
    with pytest.raises(ProviderConfigurationError, match=missing):
        GupshupBackend(phone_number=number).send(OutboundMessage(to=TO, type="text", content={"body": "x"}))
    assert len(rsps.calls) == 0


# -- management -----------------------------------------------------------------------------------

TEMPLATES = {"status": "success", "templates": [
    {"id": TEMPLATE_ID, "elementName": "order_update", "languageCode": "en", "status": "APPROVED",
     "category": "UTILITY", "data": "Hi {{1}}"},
    {"id": "7a1", "elementName": "promo", "languageCode": "en", "status": "REJECTED", "category": "MARKETING"},
]}


def test_list_templates(backend, rsps):
    rsps.get(f"{API}/sm/api/v1/template/list/{APP}", json=TEMPLATES)
    assert [t["elementName"] for t in backend.list_templates()] == ["order_update", "promo"]
    assert rsps.calls[0].request.headers["apikey"] == API_KEY


def test_list_templates_auth_failure(backend, rsps):
    rsps.get(f"{API}/sm/api/v1/template/list/{APP}", status=401,
             json={"status": "error", "message": "Authentication Failed"})
    with pytest.raises(ProviderConfigurationError):
        list(backend.list_templates())


def test_check_connection(backend, rsps):
    rsps.get(f"{API}/sm/api/v1/template/list/{APP}", json=TEMPLATES)
    assert backend.check_connection() == {"provider": "gupshup", "app": APP, "template_count": 2}


def test_download_media_sends_no_credentials(backend, rsps):
    url = "https://filemanager.gupshup.io/wa/abc?download=false"
    rsps.get(url, body=b"IMG", content_type="image/jpeg")
    assert backend.download_media(url) == (b"IMG", "image/jpeg")
    assert "apikey" not in rsps.calls[0].request.headers


@pytest.mark.parametrize("call", [
    lambda b: b.upload_media(content=b"x", mime_type="image/png", filename="a.png"),
    lambda b: b.get_media_url("123"),
    lambda b: b.create_template({"name": "x"}),
], ids=["upload_media", "get_media_url", "create_template"])
def test_unsupported_management(backend, rsps, call):
    with pytest.raises(UnsupportedFeature):
        call(backend)
    assert len(rsps.calls) == 0
