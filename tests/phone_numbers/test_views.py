"""Settings → Numbers pages: list, connect (three providers), detail, settings, secrets that
never come back, enable/disable, the connection test over HTMX, and roles."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.core.scoping import tenant_scope
from apps.phone_numbers.models import PhoneNumber
from apps.providers.backends import locmem
from tests.factories import MembershipFactory, PhoneNumberFactory, UserFactory, WebhookEventFactory

SECRETS = ("EAAG-very-secret-token-123", "app-secret-456", "gupshup-key-789", "partner-token-000")


@pytest.fixture(autouse=True)
def _reset_locmem():
    locmem.reset()
    yield
    locmem.reset()


def client_for(tenant, role: str) -> Client:
    user = UserFactory()
    MembershipFactory(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin(tenant) -> Client:
    return client_for(tenant, "admin")


def numbers(tenant):
    with tenant_scope(tenant):
        return list(PhoneNumber.objects.all())


def body(response) -> str:
    return response.content.decode()


def test_empty_list_invites_to_connect(admin):
    page = admin.get("/t/acme/settings/numbers/")
    assert page.status_code == 200
    assert "No number connected yet" in body(page) and "/t/acme/settings/numbers/connect/" in body(page)


def test_list_shows_health(admin, tenant):
    n = PhoneNumberFactory(tenant=tenant, display_number="15550001111", display_name="Support",
                           quality_rating="YELLOW", messages_per_second=250, messaging_limit_tier="TIER_10K",
                           status="error", status_detail="Access token expired or wrong: Meta refused the token")
    quiet = PhoneNumberFactory(tenant=tenant, display_number="15550002222", status="disabled")
    WebhookEventFactory(tenant=tenant, phone_number=n)
    html = body(admin.get("/t/acme/settings/numbers/"))
    assert "+1 555-000-1111" in html and "Support" in html
    assert "Medium" in html and "250 msg/s" in html and "10K customers / 24 h" in html
    assert "Access token expired or wrong" in html
    assert 'class="row-muted"' in html and f"number-{quiet.pk}" in html
    assert "ago" in html  # the webhook event's time
    assert "Never" in html  # the other number never received one
    for secret in ("token", "secret"):
        assert f">{secret}<" not in html


def test_connect_meta_number(admin, tenant):
    form = admin.get("/t/acme/settings/numbers/connect/")
    assert form.status_code == 200 and 'name="access_token"' in body(form)
    response = admin.post("/t/acme/settings/numbers/connect/", {
        "provider": "meta_cloud", "phone_number_id": "106540352242922", "waba_id": "102290129340398",
        "access_token": SECRETS[0], "app_secret": SECRETS[1], "display_number": "+1 (555) 078-3881",
        "display_name": "Acme Support", "messages_per_second": "120", "graph_api_url": "http://127.0.0.1:8001"})
    [number] = numbers(tenant)
    assert response.status_code == 302 and response["Location"] == f"/t/acme/settings/numbers/{number.pk}/"
    assert number.provider == "meta_cloud" and number.display_number == "15550783881"
    assert number.credentials == {"access_token": SECRETS[0], "app_secret": SECRETS[1]}
    assert number.messages_per_second == 120 and number.graph_api_url == "http://127.0.0.1:8001"
    detail = admin.get(response["Location"])
    html = body(detail)
    assert "http://testserver/webhooks/meta/" in html and number.verify_token in html
    assert "Connected +1 555-078-3881" in html
    for secret in SECRETS[:2]:
        assert secret not in html


def test_connect_gupshup_and_partner_numbers(admin, tenant):
    admin.post("/t/acme/settings/numbers/connect/", {
        "provider": "gupshup", "app_name": "AcmeApp", "api_key": SECRETS[2], "source": "917834811114",
        "messages_per_second": "20"})
    admin.post("/t/acme/settings/numbers/connect/", {
        "provider": "gupshup_partner", "app_id": "6f1c-app", "app_token": SECRETS[3], "display_number": "15550009999",
        "messages_per_second": "80"})
    by_provider = {n.provider: n for n in numbers(tenant)}
    gupshup, partner = by_provider["gupshup"], by_provider["gupshup_partner"]
    assert gupshup.provider_app_id == "AcmeApp" and gupshup.display_number == "917834811114"
    assert gupshup.credentials == {"api_key": SECRETS[2]}
    assert partner.provider_app_id == "6f1c-app" and partner.credentials == {"app_token": SECRETS[3]}
    html = body(admin.get(f"/t/acme/settings/numbers/{gupshup.pk}/"))
    assert f"http://testserver/webhooks/gupshup/{gupshup.webhook_token}/" in html
    assert SECRETS[2] not in html
    html = body(admin.get(f"/t/acme/settings/numbers/{partner.pk}/"))
    assert f"http://testserver/webhooks/gupshup-partner/{partner.webhook_token}/" in html
    assert SECRETS[3] not in html


def test_connect_errors_are_shown_and_secrets_are_not_echoed(admin, tenant):
    response = admin.post("/t/acme/settings/numbers/connect/", {
        "provider": "meta_cloud", "phone_number_id": "", "waba_id": "W", "access_token": SECRETS[0],
        "app_secret": SECRETS[1], "display_number": "not a number", "messages_per_second": "5000"})
    html = body(response)
    assert response.status_code == 422
    assert "This field is required" in html and "less than or equal to 1000" in html
    assert SECRETS[0] not in html and SECRETS[1] not in html
    assert numbers(tenant) == []

    response = admin.post("/t/acme/settings/numbers/connect/", {
        "provider": "meta_cloud", "phone_number_id": "1", "waba_id": "W", "access_token": SECRETS[0],
        "app_secret": SECRETS[1], "display_number": "12", "messages_per_second": "80"})
    assert response.status_code == 422 and "phone number" in body(response).lower()
    assert SECRETS[0] not in body(response)


def test_connecting_a_number_twice_is_refused_in_words(admin, tenant):
    PhoneNumberFactory(tenant=tenant, phone_number_id="777", display_number="15550001234")
    response = admin.post("/t/acme/settings/numbers/connect/", {
        "provider": "meta_cloud", "phone_number_id": "777", "waba_id": "W", "access_token": "t", "app_secret": "s",
        "display_number": "15550004321", "messages_per_second": "80"})
    assert response.status_code == 422 and "already connected" in body(response)


def test_meta_display_number_is_asked_from_meta_when_left_empty(admin, tenant):
    # Test settings use the locmem backend, which reports no display number: the form says so.
    response = admin.post("/t/acme/settings/numbers/connect/", {
        "provider": "meta_cloud", "phone_number_id": "42", "waba_id": "W", "access_token": "t", "app_secret": "s",
        "display_number": "", "messages_per_second": "80"})
    assert response.status_code == 422 and "type the display number yourself" in body(response)


def test_unknown_provider_falls_back_to_meta(admin):
    assert 'name="phone_number_id"' in body(admin.get("/t/acme/settings/numbers/connect/?provider=nope"))
    assert 'name="app_name"' in body(admin.get("/t/acme/settings/numbers/connect/?provider=gupshup"))
    assert 'name="app_token"' in body(admin.get("/t/acme/settings/numbers/connect/?provider=gupshup_partner"))


def test_edit_throughput_name_and_replace_a_secret(admin, tenant):
    number = PhoneNumberFactory(tenant=tenant, credentials={"access_token": "old-token", "app_secret": "old-secret"})
    url = f"/t/acme/settings/numbers/{number.pk}/"
    html = body(admin.get(url))
    assert "old-token" not in html and "old-secret" not in html
    assert 'name="access_token"' in html and 'name="api_key"' not in html
    response = admin.post(url, {"display_name": "Sales", "messages_per_second": "500", "graph_api_url": "",
                                "access_token": "new-token", "app_secret": ""})
    assert response.status_code == 302
    number.refresh_from_db()
    assert number.display_name == "Sales" and number.messages_per_second == 500
    assert number.credentials == {"access_token": "new-token", "app_secret": "old-secret"}
    page = body(admin.get(url))
    assert "Replaced the access token" in page and "new-token" not in page

    bad = admin.post(url, {"display_name": "Sales", "messages_per_second": "0", "access_token": "leak-me"})
    assert bad.status_code == 422 and "greater than or equal to 1" in body(bad)
    assert "leak-me" not in body(bad)
    number.refresh_from_db()
    assert number.messages_per_second == 500 and number.credentials["access_token"] == "new-token"


def test_gupshup_settings_offer_only_its_secret(admin, tenant):
    number = PhoneNumberFactory(tenant=tenant, provider="gupshup", phone_number_id="", provider_app_id="App",
                                credentials={"api_key": "k"})
    html = body(admin.get(f"/t/acme/settings/numbers/{number.pk}/"))
    assert 'name="api_key"' in html and 'name="access_token"' not in html and 'name="graph_api_url"' not in html


def test_disable_and_enable(admin, tenant):
    number = PhoneNumberFactory(tenant=tenant)
    url = f"/t/acme/settings/numbers/{number.pk}/enabled/"
    assert admin.post(url, {"action": "disable"}).status_code == 302
    number.refresh_from_db()
    assert number.status == "disabled"
    assert "is disabled" in body(admin.get(f"/t/acme/settings/numbers/{number.pk}/"))
    admin.post(url, {"action": "enable"})
    number.refresh_from_db()
    assert number.status == "connected"
    response = admin.post(url, {"action": "explode"})
    assert response.status_code == 302
    number.refresh_from_db()
    assert number.status == "connected"
    assert admin.get(url).status_code == 405


def test_connection_test_over_htmx_and_without(admin, tenant):
    number = PhoneNumberFactory(tenant=tenant, status="error")
    url = f"/t/acme/settings/numbers/{number.pk}/test/"
    fragment = admin.post(url, HTTP_HX_REQUEST="true")
    html = body(fragment)
    assert fragment.status_code == 200 and 'id="connection-test"' in html and "<html" not in html
    assert "Connected" in html and 'hx-swap-oob="true"' in html
    number.refresh_from_db()
    assert number.status == "connected"
    full = admin.post(url)
    assert full.status_code == 200 and "<html" in body(full) and "Webhook setup" in body(full)


def test_connection_failure_is_shown_in_words(admin, tenant, settings):
    import responses

    settings.WHATSAPP_BACKENDS = {**settings.WHATSAPP_BACKENDS,
                                  "meta_cloud": "apps.providers.backends.meta_cloud.MetaCloudBackend"}
    number = PhoneNumberFactory(tenant=tenant, graph_api_url="https://graph.example.test",
                                credentials={"access_token": "tok-secret", "app_secret": "s"})
    with responses.RequestsMock() as rsps:
        rsps.get(f"https://graph.example.test/{settings.META_GRAPH_API_VERSION}/{number.phone_number_id}",
                 status=401, json={"error": {"message": "Session has expired", "code": 190}})
        html = body(admin.post(f"/t/acme/settings/numbers/{number.pk}/test/", HTTP_HX_REQUEST="true"))
    assert "Access token expired or wrong" in html and "HTTP 401" in html and "provider code 190" in html
    assert "tok-secret" not in html


@pytest.mark.parametrize("role", ["agent", "marketer", "developer"])
def test_roles_without_numbers_are_refused_everywhere(tenant, role):
    number = PhoneNumberFactory(tenant=tenant, status="connected")
    client = client_for(tenant, role)
    for url, method in ((reverse("phone_numbers:list", args=["acme"]), "get"),
                        (reverse("phone_numbers:connect", args=["acme"]), "get"),
                        (reverse("phone_numbers:connect", args=["acme"]), "post"),
                        (reverse("phone_numbers:detail", args=["acme", number.pk]), "get"),
                        (reverse("phone_numbers:detail", args=["acme", number.pk]), "post"),
                        (reverse("phone_numbers:test", args=["acme", number.pk]), "post"),
                        (reverse("phone_numbers:enabled", args=["acme", number.pk]), "post")):
        response = getattr(client, method)(url, {"action": "disable", "messages_per_second": "1"})
        assert response.status_code == 403, (url, method)
    number.refresh_from_db()
    assert number.status == "connected" and number.messages_per_second != 1


def test_owner_may_manage_numbers(member_client, tenant):
    assert member_client.get("/t/acme/settings/numbers/").status_code == 200
