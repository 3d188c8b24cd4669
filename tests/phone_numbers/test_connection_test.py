"""The numbers page's "Test connection": the real backends against ``responses``, and every
failure explained in words."""

from __future__ import annotations

import pytest
import requests
import responses
from urllib3.exceptions import NameResolutionError

from apps.core.exceptions import ApplicationError
from apps.phone_numbers.models import PhoneNumber
from apps.phone_numbers.services import meta_display_number_lookup, phone_number_connection_test
from tests.factories import PhoneNumberFactory, TenantFactory

GRAPH = "https://graph.example.test"
TOKEN = "EAAG-secret-token"
NODE = f"{GRAPH}/v23.0/106540352242922"


@pytest.fixture(autouse=True)
def real_backends(settings):
    settings.WHATSAPP_BACKENDS = {
        "meta_cloud": "apps.providers.backends.meta_cloud.MetaCloudBackend",
        "gupshup": "apps.providers.backends.gupshup.GupshupBackend",
        "gupshup_partner": "apps.providers.backends.gupshup_partner.GupshupPartnerBackend",
    }
    settings.META_GRAPH_API_VERSION = "v23.0"
    settings.GUPSHUP_API_URL = "https://api.gupshup.example.test"
    settings.GUPSHUP_PARTNER_API_URL = "https://partner.gupshup.example.test"


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def number(db):
    return PhoneNumberFactory(tenant=TenantFactory(), phone_number_id="106540352242922", graph_api_url=GRAPH,
                              credentials={"access_token": TOKEN, "app_secret": "s3cret"})


def node_url() -> str:
    return responses.matchers.query_param_matcher(
        {"fields": "display_phone_number,verified_name,quality_rating,throughput,name_status,"
                   "whatsapp_business_manager_messaging_limit"})


def test_success_reads_the_phone_number_node_with_the_token_and_stores_health(number, rsps):
    rsps.get(NODE, match=[node_url()], json={
        "display_phone_number": "+1 555-078-3881", "verified_name": "Acme", "quality_rating": "YELLOW",
        "throughput": {"level": "STANDARD"}, "whatsapp_business_manager_messaging_limit": "TIER_2K",
        "id": "106540352242922"})
    number.status = PhoneNumber.Status.ERROR
    number.save()
    result = phone_number_connection_test(tenant=number.tenant, phone_number=number)
    assert result.ok and result.title == "Connected"
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    number.refresh_from_db()
    assert number.status == PhoneNumber.Status.CONNECTED
    assert number.quality_rating == "YELLOW" and number.messaging_limit_tier == "TIER_2K"
    assert number.status_detail == ""


@pytest.mark.parametrize("status,body,title,words", [
    (401, {"error": {"message": "Error validating access token: Session has expired", "type": "OAuthException",
                     "code": 190, "error_subcode": 463}}, "Access token expired or wrong", "expired"),
    (400, {"error": {"message": "Invalid OAuth access token - Cannot parse access token", "type": "OAuthException",
                     "code": 190}}, "Access token expired or wrong", "system-user token"),
    (400, {"error": {"message": "Unsupported get request. Object with ID '106540352242922' does not exist",
                     "type": "GraphMethodException", "code": 100, "error_subcode": 33}},
     "Unknown phone number id", "106540352242922"),
    (403, {"error": {"message": "(#10) Application does not have permission for this action", "code": 10}},
     "The token may not use this number", "permission"),
    (503, {"error": {"message": "Service temporarily unavailable", "code": 2}}, "Meta Cloud API is having trouble",
     "their side"),
])
def test_meta_refusals_are_explained(number, rsps, status, body, title, words):
    rsps.get(NODE, status=status, json=body)
    result = phone_number_connection_test(tenant=number.tenant, phone_number=number)
    assert not result.ok
    assert result.title == title
    assert words in result.explanation
    assert result.http_status == status
    number.refresh_from_db()
    assert title in number.status_detail
    assert TOKEN not in result.explanation + result.details + number.status_detail


def test_a_permanent_failure_marks_the_number_in_error_a_transient_one_does_not(number, rsps):
    rsps.get(NODE, status=401, json={"error": {"message": "expired", "code": 190}})
    phone_number_connection_test(tenant=number.tenant, phone_number=number)
    number.refresh_from_db()
    assert number.status == PhoneNumber.Status.ERROR

    number.status = PhoneNumber.Status.CONNECTED
    number.save()
    rsps.replace(responses.GET, NODE, body=requests.exceptions.ReadTimeout("read timed out"))
    result = phone_number_connection_test(tenant=number.tenant, phone_number=number)
    assert result.transient
    number.refresh_from_db()
    assert number.status == PhoneNumber.Status.CONNECTED


def test_timeouts_are_explained(number, rsps):
    rsps.get(NODE, body=requests.exceptions.ReadTimeout("Read timed out. (read timeout=6.0)"))
    result = phone_number_connection_test(tenant=number.tenant, phone_number=number)
    assert result.title == "The provider did not answer in time"
    assert "graph.example.test" in result.explanation and "6 seconds" in result.explanation

    rsps.replace(responses.GET, NODE, body=requests.exceptions.ConnectTimeout("connect timed out"))
    result = phone_number_connection_test(tenant=number.tenant, phone_number=number)
    assert result.title == "Connection timed out"


def test_dns_failures_are_explained(number, rsps):
    dns = NameResolutionError("graph.example.test", None, OSError("[Errno -2] Name or service not known"))
    rsps.get(NODE, body=requests.exceptions.ConnectionError(dns))
    result = phone_number_connection_test(tenant=number.tenant, phone_number=number)
    assert result.title == "Address not found (DNS)"
    assert "graph.example.test could not be resolved" in result.explanation


def test_refused_connections_are_explained(number, rsps):
    rsps.get(NODE, body=requests.exceptions.ConnectionError("Connection refused"))
    result = phone_number_connection_test(tenant=number.tenant, phone_number=number)
    assert result.title == "Could not connect" and "graph.example.test" in result.explanation


def test_a_disabled_number_stays_disabled(number, rsps):
    number.status = PhoneNumber.Status.DISABLED
    number.save()
    rsps.get(NODE, json={"id": "106540352242922", "quality_rating": "GREEN"})
    assert phone_number_connection_test(tenant=number.tenant, phone_number=number).ok
    number.refresh_from_db()
    assert number.status == PhoneNumber.Status.DISABLED


def test_gupshup_lists_templates_and_explains_a_wrong_api_key(db, rsps):
    number = PhoneNumberFactory(provider="gupshup", phone_number_id="", provider_app_id="AcmeApp",
                                waba_id="AcmeApp", credentials={"api_key": "gs-key"})
    url = "https://api.gupshup.example.test/sm/api/v1/template/list/AcmeApp"
    rsps.get(url, json={"status": "success", "templates": []})
    assert phone_number_connection_test(tenant=number.tenant, phone_number=number).ok
    assert rsps.calls[0].request.headers["apikey"] == "gs-key"

    rsps.replace(responses.GET, url, status=401, json={"status": "error", "message": "Authentication Failed"})
    result = phone_number_connection_test(tenant=number.tenant, phone_number=number)
    assert result.title == "Gupshup refused the API key" and "AcmeApp" in result.explanation


def test_gupshup_partner_reads_the_wallet_and_explains_a_wrong_token(db, rsps):
    number = PhoneNumberFactory(provider="gupshup_partner", phone_number_id="", provider_app_id="app-uuid",
                                waba_id="app-uuid", credentials={"app_token": "partner-token"})
    url = "https://partner.gupshup.example.test/partner/app/app-uuid/wallet/balance"
    rsps.get(url, json={"status": "success", "walletResponse": {"currentBalance": 12.5}})
    assert phone_number_connection_test(tenant=number.tenant, phone_number=number).ok

    rsps.replace(responses.GET, url, status=401, json={"status": "error", "message": "Invalid token"})
    result = phone_number_connection_test(tenant=number.tenant, phone_number=number)
    assert result.title == "Gupshup Partner (v3) refused the app token"


def test_missing_credentials_are_a_configuration_problem_in_words(db):
    number = PhoneNumberFactory(credentials={})
    result = phone_number_connection_test(tenant=number.tenant, phone_number=number)
    assert not result.ok and "access_token" in result.explanation


def test_another_tenants_number_is_refused(number):
    with pytest.raises(ApplicationError):
        phone_number_connection_test(tenant=TenantFactory(), phone_number=number)


def test_display_number_lookup(rsps):
    rsps.get(f"{GRAPH}/v23.0/555", json={"display_phone_number": "+1 555-078-3881", "id": "555"})
    assert meta_display_number_lookup(phone_number_id="555", access_token=TOKEN, graph_api_url=GRAPH) == "15550783881"
    rsps.replace(responses.GET, f"{GRAPH}/v23.0/555", status=401, json={"error": {"code": 190, "message": "bad"}})
    with pytest.raises(ApplicationError, match="Access token expired or wrong"):
        meta_display_number_lookup(phone_number_id="555", access_token=TOKEN, graph_api_url=GRAPH)
