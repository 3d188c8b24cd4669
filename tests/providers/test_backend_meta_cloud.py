"""MetaCloudBackend: the exact request Meta receives for every message type, and how answers and
errors are read. HTTP is mocked with ``responses``."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from apps.phone_numbers.models import PhoneNumber
from apps.providers.backends import get_backend
from apps.providers.backends.gupshup import GupshupBackend
from apps.providers.backends.gupshup_partner import GupshupPartnerBackend
from apps.providers.backends.meta_cloud import MetaCloudBackend
from apps.providers.exceptions import (
    ProviderConfigurationError,
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    ProviderUnknownOutcome,
)
from apps.providers.outbound import MESSAGE_TYPES, OutboundMessage, SendResult

FIXTURES = Path("/work/shared/fixtures")
OAS_EXAMPLES = FIXTURES / "facebook-openapi" / "extracted" / "send_message_request_examples.json"
JAVA = FIXTURES / "whatsapp-business-java-api" / "src" / "test" / "resources"

PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
TOKEN = "EAAG-test-token"
GRAPH = "https://graph.facebook.com/v23.0"
MESSAGES_URL = f"{GRAPH}/{PHONE_NUMBER_ID}/messages"
TO = "16505551234"
WAMID = "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA"
OK = {"messaging_product": "whatsapp", "contacts": [{"input": TO, "wa_id": TO}], "messages": [{"id": WAMID}]}


@pytest.fixture(autouse=True)
def graph_settings(settings):
    settings.META_GRAPH_API_URL = "https://graph.facebook.com"
    settings.META_GRAPH_API_VERSION = "v23.0"


@pytest.fixture
def phone_number() -> PhoneNumber:
    return PhoneNumber(provider="meta_cloud", phone_number_id=PHONE_NUMBER_ID, waba_id=WABA_ID,
                       display_number="15550783881", credentials={"access_token": TOKEN})


@pytest.fixture
def backend(phone_number) -> MetaCloudBackend:
    return MetaCloudBackend(phone_number=phone_number)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def sent_json(call: Any) -> Any:
    return json.loads(call.request.body)


def assert_meta_request(call: Any, url: str = MESSAGES_URL) -> None:
    assert call.request.method == "POST"
    assert call.request.url == url
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert call.request.headers["Content-Type"] == "application/json"


def base(type_: str, obj: Any, **extra: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": type_,
            type_: obj, **extra}


TEMPLATE_POSITIONAL = {
    "name": "order_update",
    "language": {"code": "en_US"},
    "components": [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example/p.jpg"}}]},
        {"type": "body", "parameters": [
            {"type": "text", "text": "Jessica"},
            {"type": "currency", "currency": {"fallback_value": "$100.99", "code": "USD", "amount_1000": 100990}},
            {"type": "date_time", "date_time": {"fallback_value": "February 25, 1977"}},
        ]},
        {"type": "button", "sub_type": "quick_reply", "index": "0",
         "parameters": [{"type": "payload", "payload": "STOP-PROMOS"}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "SKBUP2"}]},
    ],
}
TEMPLATE_NAMED = {
    "name": "order_confirmation",
    "language": {"code": "en_US"},
    "components": [{"type": "body", "parameters": [
        {"type": "text", "parameter_name": "first_name", "text": "Jessica"},
        {"type": "text", "parameter_name": "order_number", "text": "SKBUP2-4CPIG9"},
    ]}],
}
TEMPLATE_AUTH = {
    "name": "verification_code",
    "language": {"code": "en_US"},
    "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "J$FpnYnP"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "J$FpnYnP"}]},
    ],
}
BUTTONS = {
    "type": "button",
    "body": {"text": "Can we close this ticket?"},
    "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                           {"type": "reply", "reply": {"id": "no", "title": "No"}}]},
}
LIST = {
    "type": "list",
    "header": {"type": "text", "text": "Shipping"},
    "body": {"text": "Pick a speed"},
    "footer": {"text": "Prices include tax"},
    "action": {"button": "Options", "sections": [{"title": "Fast", "rows": [
        {"id": "priority_express", "title": "Priority Express", "description": "Next day"}]}]},
}
CTA_URL = {
    "type": "cta_url",
    "header": {"type": "text", "text": "Available Dates"},
    "body": {"text": "Tap the button below to see available dates."},
    "footer": {"text": "Dates subject to change."},
    "action": {"name": "cta_url", "parameters": {"display_text": "See Dates", "url": "https://example.com/d"}},
}
FLOW = {
    "type": "flow",
    "header": {"type": "text", "text": "Book"},
    "body": {"text": "Book an appointment"},
    "footer": {"text": "It takes a minute"},
    "action": {"name": "flow", "parameters": {
        "flow_message_version": "3", "flow_token": "tok-1", "flow_name": "booking", "flow_cta": "Book!",
        "flow_action": "navigate", "flow_action_payload": {"screen": "START", "data": {"k": "v"}}}},
}
CONTACTS = [{"name": {"formatted_name": "John Smith", "first_name": "John", "last_name": "Smith"},
             "phones": [{"phone": "+1 (650) 555-1234", "type": "WORK", "wa_id": "16505551234"}]}]

# (case id, OutboundMessage kwargs, exact JSON body Meta must receive)
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("text_preview", {"type": "text", "content": {"body": "See https://example.com", "preview_url": True}},
     base("text", {"body": "See https://example.com", "preview_url": True})),
    ("text_reply_with_callback",
     {"type": "text", "content": {"body": "Yes", "preview_url": False}, "reply_to": "wamid.PREV",
      "callback_data": "msg_01HX"},
     base("text", {"body": "Yes", "preview_url": False}, context={"message_id": "wamid.PREV"},
          biz_opaque_callback_data="msg_01HX")),
    ("template_positional", {"type": "template", "content": TEMPLATE_POSITIONAL, "callback_data": "m1"},
     base("template", TEMPLATE_POSITIONAL, biz_opaque_callback_data="m1")),
    ("template_named", {"type": "template", "content": TEMPLATE_NAMED, "template_parameter_format": "named"},
     base("template", TEMPLATE_NAMED)),
    ("template_auth_copy_code", {"type": "template", "content": TEMPLATE_AUTH},
     base("template", TEMPLATE_AUTH)),
    ("image_link_caption", {"type": "image", "content": {"link": "https://cdn.example/a.jpg", "caption": "Taj"}},
     base("image", {"link": "https://cdn.example/a.jpg", "caption": "Taj"})),
    ("image_id", {"type": "image", "content": {"id": "1037543291543636"}}, base("image", {"id": "1037543291543636"})),
    ("video_link", {"type": "video", "content": {"link": "https://cdn.example/v.mp4", "caption": "Clip"}},
     base("video", {"link": "https://cdn.example/v.mp4", "caption": "Clip"})),
    ("video_id", {"type": "video", "content": {"id": "555", "caption": "Clip"}}, base("video", {"id": "555", "caption": "Clip"})),
    ("audio_link", {"type": "audio", "content": {"link": "https://cdn.example/a.ogg"}},
     base("audio", {"link": "https://cdn.example/a.ogg"})),
    ("audio_id", {"type": "audio", "content": {"id": "777"}}, base("audio", {"id": "777"})),
    ("document_id", {"type": "document", "content": {"id": "888", "caption": "Invoice", "filename": "inv.pdf"}},
     base("document", {"id": "888", "caption": "Invoice", "filename": "inv.pdf"})),
    ("document_link", {"type": "document", "content": {"link": "https://cdn.example/i.pdf", "filename": "i.pdf"}},
     base("document", {"link": "https://cdn.example/i.pdf", "filename": "i.pdf"})),
    ("sticker_id", {"type": "sticker", "content": {"id": "999"}}, base("sticker", {"id": "999"})),
    ("sticker_link", {"type": "sticker", "content": {"link": "https://cdn.example/s.webp"}},
     base("sticker", {"link": "https://cdn.example/s.webp"})),
    ("location", {"type": "location", "content": {"latitude": 37.758056, "longitude": -122.425332,
                                                   "name": "META HQ", "address": "1 Hacker Way"}},
     base("location", {"latitude": 37.758056, "longitude": -122.425332, "name": "META HQ",
                       "address": "1 Hacker Way"})),
    ("contacts", {"type": "contacts", "content": CONTACTS}, base("contacts", CONTACTS)),
    ("interactive_button", {"type": "interactive", "content": BUTTONS}, base("interactive", BUTTONS)),
    ("interactive_list", {"type": "interactive", "content": LIST, "reply_to": "wamid.Q"},
     base("interactive", LIST, context={"message_id": "wamid.Q"})),
    ("interactive_cta_url", {"type": "interactive", "content": CTA_URL}, base("interactive", CTA_URL)),
    ("interactive_flow", {"type": "interactive", "content": FLOW}, base("interactive", FLOW)),
    ("reaction", {"type": "reaction", "content": {"message_id": "wamid.HBgLM", "emoji": "\U0001F600"}},
     base("reaction", {"message_id": "wamid.HBgLM", "emoji": "\U0001F600"})),
]


@pytest.mark.parametrize(("kwargs", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_send_builds_the_exact_meta_request(backend, rsps, kwargs, expected):
    rsps.post(MESSAGES_URL, json=OK)
    result = backend.send(OutboundMessage(to=TO, **kwargs))
    assert len(rsps.calls) == 1
    assert_meta_request(rsps.calls[0])
    assert sent_json(rsps.calls[0]) == expected
    assert result.provider_message_id == WAMID


def test_every_message_type_is_covered():
    covered = {c[1]["type"] for c in CASES} | {"mark_read"}
    assert covered == set(MESSAGE_TYPES)


@pytest.mark.parametrize(("typing", "expected"), [
    (True, {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN",
            "typing_indicator": {"type": "text"}}),
    (False, {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN"}),
])
def test_mark_read(backend, rsps, typing, expected):
    rsps.post(MESSAGES_URL, json={"success": True})
    result = backend.send(OutboundMessage(to="", type="mark_read",
                                          content={"message_id": "wamid.IN", "typing_indicator": typing}))
    assert_meta_request(rsps.calls[0])
    assert sent_json(rsps.calls[0]) == expected
    assert result.provider_message_id == "" and result.raw == {"success": True}


def test_mark_read_matches_the_java_fixture(backend):
    expected = json.loads((JAVA / "expected" / "message" / "expectedMessage17.json").read_text())
    message = OutboundMessage(to="", type="mark_read", content={"message_id": "123456"})
    assert backend.build_request(message).json == expected


# -- Meta's own examples (OpenAPI v23) ----------------------------------------------------------

OAS = json.loads(OAS_EXAMPLES.read_text())


def _example_type(example: dict[str, Any]) -> str:
    if example.get("status") == "read":
        return "mark_read"
    return example.get("type") or next(t for t in MESSAGE_TYPES if t in example)


def message_from_example(example: dict[str, Any]) -> OutboundMessage:
    type_ = _example_type(example)
    if type_ == "mark_read":
        return OutboundMessage(to="", type=type_, content={"message_id": example["message_id"],
                                                          "typing_indicator": "typing_indicator" in example})
    return OutboundMessage(to=example["to"], type=type_, content=example[type_],
                           reply_to=(example.get("context") or {}).get("message_id"))


def normalized(example: dict[str, Any]) -> dict[str, Any]:
    """Parley always sends ``type`` and ``recipient_type: individual`` (Meta's defaults), which
    some of Meta's examples leave out; nothing else differs."""
    if _example_type(example) == "mark_read":
        return example
    return {**example, "recipient_type": "individual", "type": _example_type(example)}


def test_all_openapi_examples_are_supported():
    assert len(OAS) == 50


@pytest.mark.parametrize("name", sorted(OAS))
def test_body_matches_meta_openapi_example(backend, rsps, name):
    example = OAS[name]
    rsps.post(MESSAGES_URL, json={"success": True} if example.get("status") == "read" else OK)
    backend.send(message_from_example(example))
    assert_meta_request(rsps.calls[0])
    assert sent_json(rsps.calls[0]) == normalized(example)


# -- answers --------------------------------------------------------------------------------------

def test_success_answer_is_parsed(backend, rsps):
    answer = {"messaging_product": "whatsapp", "contacts": [{"input": "+16505551234", "wa_id": "16505551234"}],
              "messages": [{"id": WAMID, "message_status": "held_for_quality_assessment"}]}
    rsps.post(MESSAGES_URL, json=answer)
    result = backend.send(OutboundMessage(to="+16505551234", type="template", content=TEMPLATE_NAMED))
    assert isinstance(result, SendResult)
    assert result.provider_message_id == WAMID
    assert result.wa_id == "16505551234"
    assert result.message_status == "held_for_quality_assessment"
    assert result.raw == answer
    assert result.status_code == 200
    assert result.duration_ms >= 0


def test_java_fixture_answer_is_parsed(backend, rsps):
    rsps.post(MESSAGES_URL, body=(JAVA / "message.json").read_bytes(), content_type="application/json")
    result = backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))
    assert result.provider_message_id == "wamid.gBGGSFcCNEOPAgkO_KJ55r4w_ww"
    assert result.wa_id == "48XXXXXXXXX"
    assert result.message_status is None


@pytest.mark.parametrize("body", [b"", b"<html>ok</html>", b'{"messaging_product":"whatsapp","messages":[]}'])
def test_accepted_without_message_id_is_an_unknown_outcome(backend, rsps, body):
    rsps.post(MESSAGES_URL, body=body, status=200)
    with pytest.raises(ProviderUnknownOutcome) as info:
        backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))
    assert info.value.transient is False


def envelope(code: int, message: str = "", **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message or f"(#{code}) error", "type": "OAuthException", "code": code,
                      "fbtrace_id": "AXsgnV2Cm3ZMGF3dF_cfYIn", **extra}}


ERROR_CASES = [
    # id, status, body, headers, expected class, transient, retry_after, pair
    ("131047_window_closed", 400, envelope(131047, "(#131047) Re-engagement message", error_data={
        "messaging_product": "whatsapp", "details": "Message failed to send because more than 24 hours have "
                                                   "passed since the customer last replied to this number."}),
     {}, ProviderPermanentError, False, None, False),
    ("132001_template_missing", 404, envelope(132001, error_data={"details": "template name does not exist"}),
     {}, ProviderPermanentError, False, None, False),
    ("131008_param_missing", 400, envelope(131008), {}, ProviderPermanentError, False, None, False),
    ("131009_param_invalid", 400, envelope(131009), {}, ProviderPermanentError, False, None, False),
    ("100_invalid_parameter", 400, envelope(100, error_subcode=33), {}, ProviderPermanentError, False, None, False),
    ("190_token_expired", 401, envelope(190), {}, ProviderConfigurationError, False, None, False),
    ("130429_throughput", 400, envelope(130429), {}, ProviderTransientError, True, 1.0, False),
    ("130429_with_retry_after", 400, envelope(130429), {"Retry-After": "7"}, ProviderTransientError, True, 7.0, False),
    ("131056_pair_limit", 400, envelope(131056), {}, ProviderTransientError, True, None, True),
    ("131048_spam_limit", 400, envelope(131048), {}, ProviderPermanentError, False, None, False),
    ("4_app_rate_limit", 400, envelope(4), {}, ProviderTransientError, True, 60.0, False),
    ("80007_waba_rate_limit", 400, envelope(80007), {}, ProviderTransientError, True, 60.0, False),
    ("131000_something_wrong_500", 500, envelope(131000), {}, ProviderTransientError, True, None, False),
    ("2_service_503", 503, envelope(2), {}, ProviderTransientError, True, None, False),
    ("500_without_envelope", 500, "<html>Internal Server Error</html>", {}, ProviderTransientError, True, None, False),
    ("502_empty", 502, "", {}, ProviderTransientError, True, None, False),
    ("429_without_envelope", 429, "Too Many Requests", {"Retry-After": "3"}, ProviderTransientError, True, 3.0, False),
    ("is_transient_overrides_table", 400, envelope(100, is_transient=True), {}, ProviderTransientError, True, None,
     False),
    ("is_transient_false_overrides", 500, envelope(131000, is_transient=False), {}, ProviderPermanentError, False,
     None, False),
    ("unknown_code_400", 400, envelope(999999, error_user_title="Odd", error_user_msg="Odd thing"), {},
     ProviderPermanentError, False, None, False),
    ("unknown_code_500", 500, envelope(999999), {}, ProviderTransientError, True, None, False),
]


@pytest.mark.parametrize(("status", "body", "headers", "cls", "transient", "retry_after", "pair"),
                         [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_error_answers_map_to_exceptions(backend, rsps, status, body, headers, cls, transient, retry_after, pair):
    if isinstance(body, dict):
        rsps.post(MESSAGES_URL, json=body, status=status, headers=headers)
    else:
        rsps.post(MESSAGES_URL, body=body, status=status, headers=headers)
    with pytest.raises(ProviderError) as info:
        backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))
    error = info.value
    assert type(error) is cls
    assert error.transient is transient
    assert error.retry_after == retry_after
    assert error.pair_rate_limited is pair
    assert error.status_code == status
    assert error.provider == "meta_cloud"
    assert error.title and error.explanation
    if isinstance(body, dict):
        assert error.code == body["error"]["code"]
        assert error.fbtrace_id == "AXsgnV2Cm3ZMGF3dF_cfYIn"
        assert str(body["error"]["code"]) in str(error)
    else:
        assert error.code is None
        assert error.response_excerpt == body


def test_131047_explanation_carries_meta_details(backend, rsps):
    rsps.post(MESSAGES_URL, status=400, json=envelope(131047, error_data={"details": "24 hours have passed"}))
    with pytest.raises(ProviderPermanentError) as info:
        backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))
    assert info.value.details == "24 hours have passed"
    assert "template" in info.value.explanation
    assert "24 hours have passed" in info.value.explanation


def test_error_subcode_from_java_fixture(backend, rsps):
    rsps.post(MESSAGES_URL, status=400, body=(JAVA / "phone" / "phoneNumberNotFoundError.json").read_bytes())
    with pytest.raises(ProviderPermanentError) as info:
        backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))
    assert (info.value.code, info.value.error_subcode) == (100, 33)
    assert info.value.fbtrace_id == "AeadGx6xI8M9EVqcy11ynej"


def test_unknown_code_uses_meta_words(backend, rsps):
    rsps.post(MESSAGES_URL, status=400, json=envelope(999999, error_user_title="Odd", error_user_msg="Odd thing"))
    with pytest.raises(ProviderPermanentError) as info:
        backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))
    assert info.value.title == "Odd"
    assert "Odd thing" in info.value.explanation and "999999" in info.value.explanation


# -- transport failures ---------------------------------------------------------------------------

def _refused() -> requests.exceptions.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, MESSAGES_URL, reason))


def _dropped() -> requests.exceptions.ConnectionError:
    return requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", http.client.RemoteDisconnected("Remote end closed connection"))
    )


@pytest.mark.parametrize(("failure", "cls"), [
    (_refused(), ProviderTransientError),
    (requests.exceptions.ConnectTimeout("connect timed out"), ProviderTransientError),
    (requests.exceptions.SSLError("handshake failed"), ProviderTransientError),
    (requests.exceptions.ReadTimeout("read timed out"), ProviderUnknownOutcome),
    (_dropped(), ProviderUnknownOutcome),
    (requests.exceptions.ChunkedEncodingError("broken answer"), ProviderUnknownOutcome),
], ids=["refused", "connect_timeout", "tls", "read_timeout", "dropped_after_sending", "broken_body"])
def test_transport_failures(backend, rsps, failure, cls):
    rsps.post(MESSAGES_URL, body=failure)
    with pytest.raises(ProviderError) as info:
        backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}, callback_data="m1"))
    assert type(info.value) is cls
    assert info.value.transient is (cls is ProviderTransientError)
    assert info.value.__cause__ is failure


def test_read_timeout_on_a_read_only_call_is_retryable(backend, rsps):
    rsps.get(f"{GRAPH}/{PHONE_NUMBER_ID}", body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(ProviderTransientError):
        backend.check_connection()


# -- configuration -------------------------------------------------------------------------------

def test_missing_token_fails_before_any_request(rsps):
    number = PhoneNumber(provider="meta_cloud", phone_number_id=PHONE_NUMBER_ID, credentials={})
    with pytest.raises(ProviderConfigurationError) as info:
        MetaCloudBackend(phone_number=number).send(OutboundMessage(to=TO, type="text", content={"body": "x"}))
    assert "access_token" in str(info.value)
    assert isinstance(info.value, ProviderPermanentError)
    assert len(rsps.calls) == 0


def test_missing_phone_number_id(rsps):
    number = PhoneNumber(provider="meta_cloud", credentials={"access_token": TOKEN})
    with pytest.raises(ProviderConfigurationError, match="phone_number_id"):
        MetaCloudBackend(phone_number=number).send(OutboundMessage(to=TO, type="text", content={"body": "x"}))


def test_graph_api_url_override(phone_number, rsps):
    phone_number.graph_api_url = "http://emulator.local:8025/"
    rsps.post(f"http://emulator.local:8025/v23.0/{PHONE_NUMBER_ID}/messages", json=OK)
    MetaCloudBackend(phone_number=phone_number).send(OutboundMessage(to=TO, type="text", content={"body": "x"}))
    assert rsps.calls[0].request.url == f"http://emulator.local:8025/v23.0/{PHONE_NUMBER_ID}/messages"


def test_api_version_comes_from_settings(backend, rsps, settings):
    settings.META_GRAPH_API_VERSION = "v25.0"
    rsps.post(f"https://graph.facebook.com/v25.0/{PHONE_NUMBER_ID}/messages", json=OK)
    backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(("provider", "cls"), [
    ("meta_cloud", MetaCloudBackend), ("gupshup", GupshupBackend), ("gupshup_partner", GupshupPartnerBackend),
])
def test_get_backend_by_provider(provider, cls, settings):
    from config.settings import base

    settings.WHATSAPP_BACKENDS = base.WHATSAPP_BACKENDS
    backend = get_backend(PhoneNumber(provider=provider), read_timeout=3)
    assert type(backend) is cls
    assert backend.provider_name == provider
    assert backend.read_timeout == 3.0 and backend.connect_timeout == 5.0


def test_get_backend_unknown_provider():
    with pytest.raises(ProviderConfigurationError):
        get_backend(PhoneNumber(provider="carrier_pigeon"))


def test_backend_rejects_unknown_options(phone_number):
    with pytest.raises(TypeError, match="colour"):
        MetaCloudBackend(phone_number=phone_number, colour="blue")


def test_outbound_message_validates():
    with pytest.raises(ValueError):
        OutboundMessage(to=TO, type="fax", content={})
    with pytest.raises(ValueError):
        OutboundMessage(to=TO, type="contacts", content={"name": {}})
    with pytest.raises(ValueError):
        OutboundMessage(to="", type="text", content={"body": "x"})
    with pytest.raises(ValueError):
        OutboundMessage(to="", type="mark_read", content={})
    with pytest.raises(ValueError):
        OutboundMessage(to=TO, type="template", content={}, template_parameter_format="numbered")


# -- media and templates --------------------------------------------------------------------------

def test_upload_media(backend, rsps):
    rsps.post(f"{GRAPH}/{PHONE_NUMBER_ID}/media", json={"id": "985569392615996"})
    media_id = backend.upload_media(content=b"\x89PNG...", mime_type="image/png", filename="a.png")
    assert media_id == "985569392615996"
    request = rsps.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    body = request.body
    assert b'name="messaging_product"\r\n\r\nwhatsapp' in body
    assert b'name="type"\r\n\r\nimage/png' in body
    assert b'name="file"; filename="a.png"' in body and b"\x89PNG..." in body


def test_get_media_url(backend, rsps):
    rsps.get(f"{GRAPH}/1227829768162607?phone_number_id={PHONE_NUMBER_ID}",
             body=(JAVA / "media.json").read_bytes(), content_type="application/json")
    info = backend.get_media_url("1227829768162607")
    assert info == {
        "id": "1227829768162607",
        "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1228169767822607&ext=16772107977"
               "&hash=ATs5BiSbLTZzCFh73M16stmnUK2UV6NBqChXB4WWC21sw",
        "mime_type": "image/png",
        "sha256": "72fd8a734216768565faf2b59cec266eea00a78dd039ce84356319fc8c4ad22e",
        "file_size": 103632,
    }
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_download_media(backend, rsps):
    url = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"
    rsps.get(url, body=b"JPEGDATA", content_type="image/jpeg; charset=binary")
    assert backend.download_media(url) == (b"JPEGDATA", "image/jpeg")
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_download_expired_media_url(backend, rsps):
    url = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=2"
    rsps.get(url, status=404)
    with pytest.raises(ProviderPermanentError, match="404"):
        backend.download_media(url)


def test_list_templates_follows_paging(backend, rsps):
    first = f"{GRAPH}/{WABA_ID}/message_templates?limit=100"
    second = f"{GRAPH}/{WABA_ID}/message_templates?limit=100&after=MjQZD"
    rsps.get(first, json={"data": [{"name": "a"}, {"name": "b"}],
                          "paging": {"cursors": {"before": "MAZDZD", "after": "MjQZD"}, "next": second}})
    rsps.get(second, json={"data": [{"name": "c"}], "paging": {"cursors": {"before": "x", "after": "y"}}})
    assert [t["name"] for t in backend.list_templates()] == ["a", "b", "c"]
    assert [c.request.url for c in rsps.calls] == [first, second]
    assert all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in rsps.calls)


def test_list_templates_error(backend, rsps):
    rsps.get(f"{GRAPH}/{WABA_ID}/message_templates?limit=100", status=401, json=envelope(190))
    with pytest.raises(ProviderConfigurationError):
        list(backend.list_templates())


def test_create_template(backend, rsps):
    payload = {"name": "order_update", "category": "UTILITY", "language": "en_US", "parameter_format": "named",
               "components": [{"type": "BODY", "text": "Hi {{first_name}}",
                               "example": {"body_text_named_params": [{"param_name": "first_name",
                                                                       "example": "Jo"}]}}]}
    rsps.post(f"{GRAPH}/{WABA_ID}/message_templates",
              json={"category": "UTILITY", "id": "1689556908129832", "status": "PENDING"})
    assert backend.create_template(payload)["id"] == "1689556908129832"
    assert_meta_request(rsps.calls[0], f"{GRAPH}/{WABA_ID}/message_templates")
    assert sent_json(rsps.calls[0]) == payload


def test_create_template_rejected(backend, rsps):
    rsps.post(f"{GRAPH}/{WABA_ID}/message_templates", status=400, json=envelope(100, error_subcode=2388024))
    with pytest.raises(ProviderPermanentError) as info:
        backend.create_template({"name": "x"})
    assert info.value.error_subcode == 2388024


def test_missing_waba_id_for_templates(rsps):
    number = PhoneNumber(provider="meta_cloud", phone_number_id=PHONE_NUMBER_ID, credentials={"access_token": TOKEN})
    with pytest.raises(ProviderConfigurationError, match="waba_id"):
        list(MetaCloudBackend(phone_number=number).list_templates())


def test_check_connection(backend, rsps):
    answer = {"display_phone_number": "+1 555-078-3881", "verified_name": "Acme", "quality_rating": "GREEN",
              "throughput": {"level": "STANDARD"}, "id": PHONE_NUMBER_ID}
    url = (f"{GRAPH}/{PHONE_NUMBER_ID}?fields=display_phone_number%2Cverified_name%2Cquality_rating%2Cthroughput"
           "%2Cname_status%2Cwhatsapp_business_manager_messaging_limit")
    rsps.get(url, json=answer)
    assert backend.check_connection() == answer
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
