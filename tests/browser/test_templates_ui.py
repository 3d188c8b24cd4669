"""Template and webhook pages in a real browser against the live server: a template built in
the builder reaches the Cloud API emulator, shows pending, and turns approved in the list when
the emulator's status webhook arrives; a webhook endpoint added through the settings page
receives a test event and the delivery log shows it delivered."""

from __future__ import annotations

import sys

import pytest
import requests

from apps.message_templates.models import MessageTemplate
from apps.phone_numbers.services import phone_number_create
from apps.tenants.services import tenant_create
from apps.webhooks import signing
from apps.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.e2e.harness import (
    ROOT,
    Emulator,
    Process,
    Receiver,
    free_port,
    subprocess_env,
    wait_for_port,
    wait_until,
)

from .conftest import login, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "browser-app-secret"
WABA = "emulator-waba"
LIVE = 8_000  # ms: a 3-second poll, with room to spare


@pytest.fixture
def workspace(db):
    tenant = tenant_create(slug="acme", name="Acme Store", owner_email="owner@acme.test", owner_password="pw")
    return tenant


@pytest.fixture
def logs(request):
    folder = ROOT / "test-artifacts" / "browser" / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_build_a_template_see_it_pending_then_approved_live(page, live_server, workspace, logs, settings):
    settings.WHATSAPP_BACKENDS = {**settings.WHATSAPP_BACKENDS,
                                  "meta_cloud": "apps.providers.backends.meta_cloud.MetaCloudBackend"}
    port = free_port()
    # Reviews never finish by themselves: the test decides when Meta answers.
    process = Process("emulator", [sys.executable, "manage.py", "cloudapi_emulator", "--port", str(port),
                                   "--webhook-url", f"{live_server.url}/webhooks/meta/", "--app-secret", SECRET,
                                   "--template-review-delay", "3600"], subprocess_env(), logs / "emulator.log").start()
    emu = Emulator(process, port)
    try:
        wait_for_port(port, timeout=90)
        phone_number_create(tenant=workspace, provider="meta_cloud", display_number="15550009999",
                            phone_number_id="1001", waba_id=WABA, access_token="token", app_secret=SECRET,
                            graph_api_url=emu.url, display_name="Acme Support")
        login(page, live_server, "owner@acme.test", "pw")
        page.goto(f"{live_server.url}/t/acme/templates/")
        page.click("#new-template")
        page.wait_for_selector("#builder")

        page.fill("input[name=name]", "order_shipped")
        page.check("input[name=category][value=UTILITY]", force=True)
        page.check("input[name=header_type][value=text]", force=True)
        page.fill("input[name=header_text]", "Order {{1}}")
        page.fill("textarea[name=body]", "Hi {{1}}, your order {{2}} is on its way and arrives *tomorrow*.")
        # The example fields appear as the variables do (out-of-band swap of the live preview).
        page.wait_for_selector("input[name=example_body_2]")
        page.fill("input[name=example_header_1]", "#10423")
        page.fill("input[name=example_body_1]", "Maya")
        page.fill("input[name=example_body_2]", "#10423")
        page.fill("input[name=footer]", "Acme Store")
        page.click("[data-add-button=quick_reply]")
        page.locator(".btn-row").last.locator("input[name=button_text]").fill("Stop updates")
        page.click("[data-add-button=url]")
        row = page.locator(".btn-row").last
        row.locator("input[name=button_text]").fill("Track order")
        row.locator("input[name=button_value]").fill("https://acme.example/track/{{1}}")
        row.locator("input[name=button_example]").fill("https://acme.example/track/10423")
        page.wait_for_function("document.querySelector('#bubble-preview') && "
                               "document.querySelector('#bubble-preview').textContent.includes('Track order')")
        page.wait_for_selector("#payload", state="attached")
        preview = page.locator("#bubble-preview").inner_text()
        assert "Maya" in preview and "Stop updates" in preview and "Acme Store" in preview
        screenshot(page, "templates-builder-buttons")
        page.evaluate("window.scrollTo(0, 0); document.querySelector('#content').scrollTo(0, 0)")
        screenshot(page, "templates-builder")

        page.click("#submit-template")
        page.wait_for_url(f"{live_server.url}/t/acme/templates/")
        row = page.locator("#templates-table tr", has_text="order_shipped")
        assert "Pending" in row.inner_text()
        template = MessageTemplate.objects.for_tenant(workspace).get(name="order_shipped")
        assert template.status == "PENDING" and template.provider_template_id

        # What the emulator received is Meta's body, as the builder showed it.
        assert emu.control("GET", "stats")["templates_created"] == 1
        listed = requests.get(f"{emu.url}/v23.0/{WABA}/message_templates", params={"name": "order_shipped"},
                              headers={"Authorization": "Bearer token"}, timeout=5).json()
        assert listed["data"][0]["components"][1]["example"] == {"body_text": [["Maya", "#10423"]]}
        screenshot(page, "templates-list-pending")

        # Meta approves it: the status webhook arrives and the list changes without a reload.
        answer = emu.control("POST", "template-status", json={"name": "order_shipped", "language": "en_US",
                                                               "status": "APPROVED"})
        assert answer["posted"], answer
        page.wait_for_selector(f"#template-{template.pk}[data-status=APPROVED]", timeout=LIVE)
        assert "Approved" in page.locator(f"#template-{template.pk}").inner_text()
        screenshot(page, "templates-list-approved")

        page.click(f"#template-{template.pk} a.tpl-name")
        page.wait_for_selector("#bubble-preview")
        assert "Track order" in page.locator("#bubble-preview").inner_text()
        screenshot(page, "templates-detail")
    finally:
        emu.process.stop()


def test_add_a_webhook_endpoint_and_send_a_test_event(page, live_server, workspace, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    receiver = Receiver()
    try:
        login(page, live_server, "owner@acme.test", "pw")
        page.goto(f"{live_server.url}/t/acme/settings/webhooks/")
        screenshot(page, "webhooks-empty")
        page.click("text=Add endpoint")
        page.fill("input[name=url]", receiver.url)
        page.fill("input[name=description]", "Local receiver")
        page.check("input[name=scope][value=selected]")
        page.check("input[name=events][value='message.received']")
        page.check("input[name=events][value='template.status_changed']")
        screenshot(page, "webhooks-form")
        page.click("#endpoint-form button[type=submit]")
        secret = page.input_value("#secret-value")
        assert secret.startswith("whsec_")
        endpoint = WebhookEndpoint.objects.for_tenant(workspace).get()
        assert endpoint.events == ["message.received", "template.status_changed"]
        screenshot(page, "webhooks-created")

        page.click("#send-test")
        page.wait_for_selector("#delivery-log .pill-succeeded", timeout=LIVE)
        wait_until(lambda: receiver.posts, timeout=5, what="the test event at the receiver")
        post = receiver.posts[0]
        assert post["json"]["type"] == "webhook.test"
        signature = {k.lower(): v for k, v in post["headers"].items()}["parley-signature"]
        assert signing.verify(secret, post["body"], signature)
        delivery = WebhookDelivery.objects.for_tenant(workspace).get()
        assert delivery.status == "succeeded" and delivery.last_status_code == 200

        # The attempt expands: status code, duration and the receiver's answer.
        page.click(f"#delivery-{delivery.pk} summary")
        page.wait_for_selector(f"#delivery-{delivery.pk} .attempt")
        attempt = page.locator(f"#delivery-{delivery.pk} .attempt").inner_text()
        assert "HTTP 200" in attempt and "ms" in attempt and "ok" in attempt
        screenshot(page, "webhooks-detail")

        # The secret is never shown again.
        page.reload()
        assert secret not in page.content()
        assert WebhookEndpoint.objects.for_tenant(workspace).count() == 1
        page.goto(f"{live_server.url}/t/acme/settings/webhooks/")
        assert "Local receiver" in page.content()
        screenshot(page, "webhooks-list")
    finally:
        receiver.close()
