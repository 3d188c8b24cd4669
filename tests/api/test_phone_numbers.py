"""/api/v1/phone-numbers: list, read and live status. The status check runs the real
MetaCloudBackend against Meta's Graph API mocked with ``responses``. No answer ever carries a
credential, verify token or webhook token."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
import responses

from apps.phone_numbers.models import PhoneNumber
from tests.factories import PhoneNumberFactory

URL = "/api/v1/phone-numbers"
GRAPH = "https://graph.facebook.com/v23.0"
TOKEN = "EAAG-access-token-must-never-leak"
APP_SECRET = "app-secret-must-never-leak"
VERIFY_TOKEN = "verify-token-must-never-leak"
FIELDS = ("display_phone_number,verified_name,quality_rating,throughput,name_status,"
          "whatsapp_business_manager_messaging_limit").replace(",", "%2C")
OUTPUT_FIELDS = {"id", "provider", "display_number", "display_name", "provider_phone_number_id", "waba_id",
                 "provider_app_id", "status", "status_detail", "quality_rating", "messaging_limit_tier",
                 "messages_per_second", "last_webhook_at", "created_at", "updated_at"}
STATUS_FIELDS = {"id", "provider", "display_number", "status", "connection", "quality_rating", "throughput",
                 "messaging_limit_tier", "last_webhook_at"}


@pytest.fixture
def number(tenant):
    return PhoneNumberFactory(
        tenant=tenant, provider="meta_cloud", display_number="15550783881", display_name="Acme Support",
        phone_number_id="106540352242922", waba_id="102290129340398",
        credentials={"access_token": TOKEN, "app_secret": APP_SECRET}, verify_token=VERIFY_TOKEN,
        quality_rating="YELLOW", messaging_limit_tier="TIER_250",
        last_webhook_at=datetime(2025, 3, 2, 8, 30, tzinfo=UTC),
    )


@pytest.fixture
def meta_backend(settings):
    settings.WHATSAPP_BACKENDS = {**settings.WHATSAPP_BACKENDS,
                                  "meta_cloud": "apps.providers.backends.meta_cloud.MetaCloudBackend"}
    settings.META_GRAPH_API_URL = "https://graph.facebook.com"
    settings.META_GRAPH_API_VERSION = "v23.0"


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def status_url(number):
    return f"{URL}/{number.pk}/status"


def graph_url(number):
    return f"{GRAPH}/{number.phone_number_id}?fields={FIELDS}"


def assert_no_secrets(response, number):
    raw = response.content.decode()
    for secret in (TOKEN, APP_SECRET, VERIFY_TOKEN, number.webhook_token):
        assert secret not in raw
    for key in ("credentials", "access_token", "app_secret", "verify_token", "webhook_token"):
        assert f'"{key}"' not in raw


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    return response.json()["error"]


def test_list_and_detail(api_client, tenant, number):
    gupshup = PhoneNumberFactory(tenant=tenant, provider="gupshup", display_number="919000000001",
                                 phone_number_id="", waba_id="DemoApp", provider_app_id="DemoApp",
                                 credentials={"api_key": "gupshup-key-must-never-leak"})
    response = api_client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert [row["id"] for row in body["data"]] == [number.pk, gupshup.pk]
    assert (body["page"], body["per_page"], body["has_more"], body["next_page"]) == (1, 20, False, None)
    row = body["data"][0]
    assert set(row) == OUTPUT_FIELDS
    assert (row["provider"], row["display_number"], row["provider_phone_number_id"], row["waba_id"]) == (
        "meta_cloud", "15550783881", "106540352242922", "102290129340398")
    assert (row["quality_rating"], row["messaging_limit_tier"], row["messages_per_second"]) == ("YELLOW", "TIER_250", 80)
    assert_no_secrets(response, number)
    assert "gupshup-key-must-never-leak" not in response.content.decode()
    detail = api_client.get(f"{URL}/{number.pk}")
    assert detail.json() == row
    assert_no_secrets(detail, number)


@pytest.mark.parametrize("params", [{"per_page": 0}, {"per_page": 101}, {"page": 0}])
def test_paging_bounds(api_client, params):
    error = assert_error(api_client.get(URL, params), 400, "invalid_request")
    assert set(error["details"]) == set(params)


def test_paging(api_client, tenant):
    numbers = [PhoneNumberFactory(tenant=tenant, display_number=f"1555000000{i}") for i in range(3)]
    first = api_client.get(URL, {"per_page": 2}).json()
    second = api_client.get(URL, {"per_page": 2, "page": 2}).json()
    assert [r["id"] for r in first["data"] + second["data"]] == [n.pk for n in numbers]
    assert first["has_more"] and not second["has_more"]


def test_unknown_number_is_404(api_client, number):
    assert_error(api_client.get(f"{URL}/{number.pk + 100}"), 404, "not_found")
    assert_error(api_client.get(f"{URL}/{number.pk + 100}/status"), 404, "not_found")


def test_status_when_meta_answers(api_client, number, meta_backend, rsps):
    rsps.get(graph_url(number), json={
        "display_phone_number": "+1 555-078-3881", "verified_name": "Acme", "quality_rating": "GREEN",
        "throughput": {"level": "HIGH"}, "whatsapp_business_manager_messaging_limit": "TIER_10K",
        "id": number.phone_number_id})
    response = api_client.get(status_url(number))
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == STATUS_FIELDS
    connection = body["connection"]
    assert (connection["state"], connection["title"], connection["error_code"], connection["transient"]) == (
        "ok", "Connected", None, False)
    assert "Meta Cloud API" in connection["explanation"] and connection["checked_at"]
    assert body["quality_rating"] == "GREEN"  # live value wins over the stored YELLOW
    assert body["throughput"] == {"messages_per_second": 80, "level": "HIGH"}
    assert body["messaging_limit_tier"] == "TIER_10K"
    assert body["last_webhook_at"] == "2025-03-02T08:30:00Z"
    assert (body["status"], body["provider"], body["display_number"]) == ("connected", "meta_cloud", "15550783881")
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert rsps.calls[0].request.req_kwargs["timeout"] == (3.0, 5.0)  # a short wait, not the send path's
    assert_no_secrets(response, number)


def test_status_with_an_expired_token_is_explained_not_a_500(api_client, number, meta_backend, rsps):
    rsps.get(graph_url(number), status=401, json={"error": {
        "message": "Error validating access token: Session has expired on Friday, 28-Feb-25.",
        "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "AXsgnV2Cm3ZMGF3dF"}})
    response = api_client.get(status_url(number))
    assert response.status_code == 200
    body = response.json()
    connection = body["connection"]
    assert connection["state"] == "error"
    assert connection["title"] == "Access token has expired"
    assert "expired" in connection["explanation"] and "update the number's credentials" in connection["explanation"]
    assert (connection["error_code"], connection["http_status"], connection["transient"]) == (190, 401, False)
    # Nothing live: the stored values are shown.
    assert (body["quality_rating"], body["messaging_limit_tier"]) == ("YELLOW", "TIER_250")
    assert body["throughput"] == {"messages_per_second": 80, "level": "STANDARD"}
    assert_no_secrets(response, number)


def test_status_when_meta_is_down_or_unreachable(api_client, number, meta_backend, rsps):
    rsps.get(graph_url(number), status=503, body="upstream unavailable")
    connection = api_client.get(status_url(number)).json()["connection"]
    assert (connection["state"], connection["http_status"], connection["transient"]) == ("error", 503, True)
    assert "server error" in connection["explanation"]
    rsps.replace(responses.GET, graph_url(number), body=requests.exceptions.ConnectTimeout("connect timed out"))
    connection = api_client.get(status_url(number)).json()["connection"]
    assert (connection["state"], connection["title"], connection["transient"]) == (
        "error", "Could not connect to the provider", True)


def test_status_with_missing_credentials(api_client, tenant, meta_backend):
    number = PhoneNumberFactory(tenant=tenant, credentials={})
    connection = api_client.get(status_url(number)).json()["connection"]
    assert (connection["state"], connection["title"]) == ("error", "Number not configured")
    assert "access_token" in connection["explanation"]


def test_status_with_the_test_backend(api_client, tenant):
    number = PhoneNumberFactory(tenant=tenant, messages_per_second=1000)
    body = api_client.get(status_url(number)).json()
    assert body["connection"]["state"] == "ok"
    assert body["throughput"] == {"messages_per_second": 1000, "level": "HIGH"}
    assert (body["quality_rating"], body["messaging_limit_tier"], body["last_webhook_at"]) == ("UNKNOWN", None, None)


def test_another_tenant_gets_404_and_sees_nothing(other_api_client, number):
    assert other_api_client.get(URL).json()["data"] == []
    for url in (f"{URL}/{number.pk}", status_url(number)):
        assert_error(other_api_client.get(url), 404, "not_found")
    assert PhoneNumber.all_tenants.filter(pk=number.pk).exists()
