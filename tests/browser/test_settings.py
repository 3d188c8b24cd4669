"""Settings in a real browser: an admin connects a Meta number that points at a running Cloud
API emulator, tests the connection, creates an API key and uses it over real HTTP; the team
page invites a colleague. Screenshots go to test-artifacts/screenshots/settings-*.png."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests
from django.core import mail

from apps.core.scoping import tenant_scope
from apps.phone_numbers.models import PhoneNumber
from apps.tenants.models import Invitation
from tests.e2e.harness import Emulator, Process, free_port, subprocess_env, wait_for_port
from tests.factories import MembershipFactory, TenantFactory, UserFactory

from .conftest import ROOT, login, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "EAAG-emulator-token-5f1c"
SECRET = "emulator-app-secret"
PNID = "109876543210987"
DISPLAY = "15550783881"


@pytest.fixture
def workspace(db):
    tenant = TenantFactory(slug="acme", name="Acme Store")
    admin = UserFactory(email="alex@acme.test", first_name="Alex", last_name="Admin")
    MembershipFactory(tenant=tenant, user=admin, role="admin")
    for email, first, role in (("olivia@acme.test", "Olivia", "owner"), ("ana@acme.test", "Ana", "agent"),
                               ("mark@acme.test", "Mark", "marketer")):
        MembershipFactory(tenant=tenant, user=UserFactory(email=email, first_name=first, last_name="Doe"), role=role)
    return tenant


@pytest.fixture
def cloud_api(live_server, settings):
    """A Cloud API emulator that requires TOKEN and serves one number; Parley's Meta backend
    is the real one (the test settings use locmem otherwise)."""
    settings.WHATSAPP_BACKENDS = {**settings.WHATSAPP_BACKENDS,
                                  "meta_cloud": "apps.providers.backends.meta_cloud.MetaCloudBackend"}
    logs = ROOT / "test-artifacts" / "browser" / "settings"
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = Process("emulator", [sys.executable, "manage.py", "cloudapi_emulator", "--port", str(port),
                                   "--webhook-url", f"{live_server.url}/webhooks/meta/", "--app-secret", SECRET,
                                   "--access-token", TOKEN, "--number", f"{PNID}:{DISPLAY}", "--no-status-webhooks"],
                      subprocess_env(), Path(logs) / "emulator.log").start()
    try:
        wait_for_port(port, timeout=120)  # a busy machine may take a while to import Django
        yield Emulator(process, port)
    finally:
        process.stop()


def test_admin_connects_an_emulator_number_tests_it_and_uses_an_api_key(page, live_server, workspace, cloud_api):
    login(page, live_server, "alex@acme.test", "password")
    page.goto(f"{live_server.url}/t/acme/settings/")
    assert page.locator("#card-numbers").is_visible() and page.locator("#card-webhooks").is_visible()
    screenshot(page, "settings-overview")

    page.click("#card-numbers")
    page.wait_for_url("**/settings/numbers/")
    page.click("text=Connect a number")
    page.wait_for_url("**/settings/numbers/connect/")
    page.fill("input[name=phone_number_id]", PNID)
    page.fill("input[name=waba_id]", "emulator-waba")
    page.fill("input[name=display_name]", "Acme Support")
    page.fill("input[name=access_token]", TOKEN)
    page.fill("input[name=app_secret]", SECRET)
    page.fill("input[name=messages_per_second]", "200")
    page.fill("input[name=graph_api_url]", cloud_api.url)
    screenshot(page, "settings-numbers-connect")
    page.click("#connect-form button[type=submit]")  # the display number is asked from the emulator
    page.wait_for_url("**/settings/numbers/*/")
    assert "Connected +1 555-078-3881" in page.locator(".flash-stack").inner_text()
    with tenant_scope(workspace):
        number = PhoneNumber.objects.get()
    assert number.display_number == DISPLAY and number.graph_api_url == cloud_api.url
    assert page.locator("#webhook-url").input_value() == f"{live_server.url}/webhooks/meta/"
    assert page.locator("#verify-token").input_value() == number.verify_token
    assert TOKEN not in page.content() and SECRET not in page.content()

    page.click("#test-connection")
    result = page.locator("#connection-result")
    result.wait_for()
    assert "conn-ok" in result.get_attribute("class")
    assert "Connected" in result.inner_text() and "Parley Emulator" in result.inner_text()
    assert "Unlimited" in page.locator("#number-stats").inner_text()
    screenshot(page, "settings-number-detail")
    number.refresh_from_db()
    assert number.status == "connected" and number.quality_rating == "GREEN"

    # A wrong token is explained in words.
    page.fill("input[name=access_token]", "wrong-token")
    page.click("#number-settings button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    page.click("#test-connection")
    page.locator("#connection-result.conn-error").wait_for()
    assert "Access token expired or wrong" in page.locator("#connection-result").inner_text()
    screenshot(page, "settings-number-test-failed")
    page.fill("input[name=access_token]", TOKEN)
    page.click("#number-settings button[type=submit]")
    page.wait_for_load_state("domcontentloaded")

    page.goto(f"{live_server.url}/t/acme/settings/numbers/")
    assert "+1 555-078-3881" in page.locator("#numbers-table").inner_text()
    screenshot(page, "settings-numbers")

    # API keys: created, shown once, used over real HTTP.
    page.click(".settings-tab:has-text('API keys')")
    page.wait_for_url("**/settings/api-keys/")
    page.fill("input[name=name]", "CRM sync")
    page.click("#key-panel form button[type=submit]")
    page.locator("#new-key").wait_for()
    plaintext = page.locator("#new-key-value").input_value()
    assert plaintext.startswith("prl_") and plaintext in page.locator("#new-key-curl").inner_text()
    screenshot(page, "settings-api-keys")
    answer = requests.get(f"{live_server.url}/api/v1/phone-numbers", headers={"Authorization": f"Bearer {plaintext}"},
                          timeout=10)
    assert answer.status_code == 200
    assert [n["display_number"] for n in answer.json()["data"]] == [DISPLAY]
    page.reload()
    assert plaintext not in page.content() and "CRM sync" in page.content()

    # Revoke, confirming the question: the key stops working.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#keys-table button:has-text('Revoke')")
    page.locator("#keys-table .pill-failed").wait_for()
    refused = requests.get(f"{live_server.url}/api/v1/phone-numbers",
                           headers={"Authorization": f"Bearer {plaintext}"}, timeout=10)
    assert refused.status_code == 401

    # The same pages on a phone.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/t/acme/settings/numbers/{number.pk}/")
    assert page.locator("#test-connection").is_visible()
    screenshot(page, "settings-number-detail-mobile")


def test_admin_invites_a_colleague_who_joins(page, browser, live_server, workspace):
    login(page, live_server, "alex@acme.test", "password")
    page.goto(f"{live_server.url}/t/acme/settings/team/")
    page.fill("#invite-panel input[name=email]", "nina@example.com")
    page.select_option("#invite-panel select[name=role]", "marketer")
    page.click("#invite-panel button[type=submit]")
    page.locator("#invite-sent").wait_for()
    link = page.locator("#invite-link").input_value()
    assert "nina@example.com" in page.locator("#invitation-list").inner_text()
    assert len(mail.outbox) == 1 and link in mail.outbox[0].body
    screenshot(page, "settings-team")

    other = browser.new_context(viewport={"width": 1360, "height": 860}).new_page()
    other.goto(link)
    other.fill("input[name=name]", "Nina Novak")
    other.fill("input[name=password]", "a-long-pass-phrase")
    other.fill("input[name=password_again]", "a-long-pass-phrase")
    screenshot(other, "settings-invitation")
    other.click("button[type=submit]")
    other.wait_for_url("**/t/acme/campaigns/")
    with tenant_scope(workspace):
        assert Invitation.objects.get().accepted_at is not None
    other.context.close()
