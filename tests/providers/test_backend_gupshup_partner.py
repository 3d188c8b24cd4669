"""GupshupPartnerBackend (Partner API v3): Meta-shaped bodies to Gupshup's URL with the app
token, Gupshup ids back, and both error dialects. HTTP is mocked with ``responses``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses

from apps.phone_numbers.models import PhoneNumber
from apps.providers.backends import gupshup_partner, meta_cloud
from apps.providers.backends.gupshup_partner import GupshupPartnerBackend
from apps.providers.exceptions import (
    ProviderConfigurationError,
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    ProviderUnknownOutcome,
    UnsupportedFeature,
)
from apps.providers.outbound import OutboundMessage

from .test_backend_meta_cloud import CASES as META_CASES

FIXTURES = Path("/work/shared/fixtures/gupshup-docs-transcribed")
PARTNER = "https://partner.gupshup.io"
APP_ID = "bf9ee64c-3d4d-4ac4-0000-732e577007c4"
APP_URL = f"{PARTNER}/partner/app/{APP_ID}"
SEND_URL = f"{APP_URL}/v3/message"
TOKEN = "sk_20c901e0000002a592484000000001"
TO = "16505551234"
OK = {"messages": [{"id": "2baff204-c39a-4121-90b5-f53f26d522b3"}], "messaging_product": "whatsapp",
      "contacts": [{"input": TO, "wa_id": TO}]}


@pytest.fixture(autouse=True)
def partner_settings(settings):
    settings.GUPSHUP_PARTNER_API_URL = PARTNER


@pytest.fixture
def phone_number() -> PhoneNumber:
    return PhoneNumber(provider="gupshup_partner", provider_app_id=APP_ID, phone_number_id="106540352242922",
                       display_number="15550783881", credentials={"app_token": TOKEN})


@pytest.fixture
def backend(phone_number) -> GupshupPartnerBackend:
    return GupshupPartnerBackend(phone_number=phone_number)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def assert_partner_request(call: Any, url: str = SEND_URL) -> None:
    assert call.request.method == "POST"
    assert call.request.url == url
    assert call.request.headers["Authorization"] == TOKEN  # no "Bearer"
    assert call.request.headers["Content-Type"] == "application/json"


def test_reuses_the_meta_body_builder():
    assert gupshup_partner.build_meta_message_body is meta_cloud.build_meta_message_body


@pytest.mark.parametrize(("kwargs", "expected"), [c[1:] for c in META_CASES], ids=[c[0] for c in META_CASES])
def test_every_type_is_sent_with_the_meta_body(backend, rsps, kwargs, expected):
    rsps.post(SEND_URL, json=OK)
    result = backend.send(OutboundMessage(to=TO, **kwargs))
    assert_partner_request(rsps.calls[0])
    assert json.loads(rsps.calls[0].request.body) == expected
    assert result.provider_message_id == "2baff204-c39a-4121-90b5-f53f26d522b3"


def test_text_with_callback_data_and_reply(backend, rsps):
    rsps.post(SEND_URL, json=OK)
    backend.send(OutboundMessage(to=TO, type="text", content={"body": "Hi", "preview_url": False},
                                 reply_to="wamid.PREV", callback_data="msg_01HX"))
    assert json.loads(rsps.calls[0].request.body) == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "text",
        "text": {"body": "Hi", "preview_url": False}, "context": {"message_id": "wamid.PREV"},
        "biz_opaque_callback_data": "msg_01HX",
    }


def test_answer_from_docs_fixture(backend, rsps):
    rsps.post(SEND_URL, body=(FIXTURES / "partner_v3_send_response.json").read_bytes(),
              content_type="application/json")
    result = backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))
    assert result.provider_message_id == "GUPSHUP_MESSAGE_ID"
    assert result.wa_id == "DESTINATION_PHONE_NO"
    assert result.status_code == 200


def test_mark_read_uses_the_event_endpoint(backend, rsps):
    rsps.post(f"{APP_URL}/v1/event", json={"status": "success"})
    result = backend.send(OutboundMessage(to="", type="mark_read",
                                          content={"message_id": "wamid.IN", "typing_indicator": True}))
    assert_partner_request(rsps.calls[0], f"{APP_URL}/v1/event")
    assert json.loads(rsps.calls[0].request.body) == {
        "type": "message-event",
        "message": {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN",
                    "typing_indicator": {"type": "text"}},
    }
    assert result.provider_message_id == ""


def test_mark_read_rejected(backend, rsps):
    rsps.post(f"{APP_URL}/v1/event", status=400, json={"message": "Outbound event not supported", "status": "error"})
    with pytest.raises(ProviderPermanentError, match="Outbound event not supported"):
        backend.send(OutboundMessage(to="", type="mark_read", content={"message_id": "wamid.IN"}))


ERROR_CASES = [
    ("meta_envelope_131047", 400, {"error": {"message": "(#131047) Re-engagement message", "type": "OAuthException",
                                             "code": 131047, "error_data": {"details": "24h passed"}}},
     {}, ProviderPermanentError, False, 131047),
    ("meta_envelope_130429", 400, {"error": {"message": "(#130429) Rate limit hit", "code": 130429}},
     {}, ProviderTransientError, True, 130429),
    ("auth_failure", 401, {"status": "error", "message": "Authentication Failed"}, {},
     ProviderConfigurationError, False, None),
    ("unauthorised_without_body", 401, "", {}, ProviderConfigurationError, False, None),
    ("billing_not_enabled", 400, {"status": "error", "message": "Callback billing is not enabled for the app"},
     {}, ProviderPermanentError, False, None),
    ("error_status_in_200", 200, {"status": "error", "message": "App details not found"}, {},
     ProviderPermanentError, False, None),
    ("rate_limited", 429, {"status": "error", "message": "Too Many Requests"}, {"Retry-After": "10"},
     ProviderTransientError, True, None),
    ("server_error", 500, "<html>oops</html>", {}, ProviderTransientError, True, None),
]


@pytest.mark.parametrize(("status", "body", "headers", "cls", "transient", "code"),
                         [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_error_answers(backend, rsps, status, body, headers, cls, transient, code):
    if isinstance(body, dict):
        rsps.post(SEND_URL, json=body, status=status, headers=headers)
    else:
        rsps.post(SEND_URL, body=body, status=status, headers=headers)
    with pytest.raises(ProviderError) as info:
        backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))
    error = info.value
    assert type(error) is cls
    assert error.transient is transient
    assert error.code == code
    assert error.provider == "gupshup_partner"
    assert error.status_code == status
    if headers.get("Retry-After"):
        assert error.retry_after == float(headers["Retry-After"])


def test_accepted_without_id_is_unknown_outcome(backend, rsps):
    rsps.post(SEND_URL, json={"messaging_product": "whatsapp"}, status=202)
    with pytest.raises(ProviderUnknownOutcome):
        backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))


def test_read_timeout_is_unknown_outcome(backend, rsps):
    rsps.post(SEND_URL, body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(ProviderUnknownOutcome):
        backend.send(OutboundMessage(to=TO, type="text", content={"body": "x"}))


@pytest.mark.parametrize(("changes", "missing"), [({"credentials": {}}, "app_token"),
                                                  ({"provider_app_id": ""}, "provider_app_id")])
def test_configuration_errors(phone_number, rsps, changes, missing):
    for key, value in changes.items():
        setattr(phone_number, key, value)
    with pytest.raises(ProviderConfigurationError, match=missing):
        GupshupPartnerBackend(phone_number=phone_number).send(
            OutboundMessage(to=TO, type="text", content={"body": "x"}))
    assert len(rsps.calls) == 0


# -- management -----------------------------------------------------------------------------------

def test_upload_media(backend, rsps):
    rsps.post(f"{APP_URL}/media", json={"mediaId": "1852559851913765", "status": "success"})
    assert backend.upload_media(content=b"PDFDATA", mime_type="application/pdf", filename="a.pdf") == \
        "1852559851913765"
    request = rsps.calls[0].request
    assert request.headers["Authorization"] == TOKEN
    assert request.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="file_type"\r\n\r\napplication/pdf' in request.body
    assert b'name="file"; filename="a.pdf"' in request.body and b"PDFDATA" in request.body


def test_upload_media_rejected(backend, rsps):
    rsps.post(f"{APP_URL}/media", status=400,
              json={"message": "Only CAPI apps allowed to generate media ID", "status": "error"})
    with pytest.raises(ProviderPermanentError, match="Only CAPI"):
        backend.upload_media(content=b"x", mime_type="image/png", filename="a.png")


def test_list_templates(backend, rsps):
    rsps.get(f"{APP_URL}/templates", json={"status": "success", "templates": [
        {"id": "00b2", "elementName": "mrry_chis", "languageCode": "en", "status": "APPROVED"}]})
    assert [t["elementName"] for t in backend.list_templates()] == ["mrry_chis"]
    assert rsps.calls[0].request.headers["Authorization"] == TOKEN


def test_create_template_with_gupshup_fields(backend, rsps):
    rsps.post(f"{APP_URL}/templates", json={"status": "success", "template": {"id": "t-1", "status": "PENDING"}})
    answer = backend.create_template({"elementName": "ticket_update", "languageCode": "en_US",
                                      "content": "Your ticket {{1}} is open.", "category": "UTILITY",
                                      "templateType": "TEXT", "vertical": "Ticket update",
                                      "example": "Your ticket 42 is open.", "enableSample": True})
    assert answer["template"]["id"] == "t-1"
    request = rsps.calls[0].request
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    fields = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    assert fields == {"elementName": "ticket_update", "languageCode": "en_US", "content": "Your ticket {{1}} is open.",
                      "category": "UTILITY", "templateType": "TEXT", "vertical": "Ticket update",
                      "example": "Your ticket 42 is open.", "enableSample": "true"}


def test_create_template_from_meta_body_is_unsupported(backend, rsps):
    with pytest.raises(UnsupportedFeature, match="elementName"):
        backend.create_template({"name": "x", "components": []})
    assert len(rsps.calls) == 0


def test_check_connection_reads_wallet(backend, rsps):
    answer = {"status": "success", "walletResponse": {"currency": "USD", "currentBalance": 12.5, "overDraftLimit": 0}}
    rsps.get(f"{APP_URL}/wallet/balance", json=answer)
    assert backend.check_connection() == answer


def test_check_connection_bad_token(backend, rsps):
    rsps.get(f"{APP_URL}/wallet/balance", status=401, json={"status": "error", "message": "Authentication Failed"})
    with pytest.raises(ProviderConfigurationError):
        backend.check_connection()


def test_get_media_url_is_unsupported(backend):
    with pytest.raises(UnsupportedFeature):
        backend.get_media_url("123")


def test_download_media(backend, rsps):
    rsps.get("https://filemanager.gupshup.io/fm/x", body=b"DATA", content_type="audio/ogg")
    assert backend.download_media("https://filemanager.gupshup.io/fm/x") == (b"DATA", "audio/ogg")
    assert "Authorization" not in rsps.calls[0].request.headers
