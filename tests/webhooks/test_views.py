"""The webhook endpoint settings pages: list, create (secret shown once), edit, enable/disable,
rotate, delete, the delivery log with keyset pages and expandable attempts, replay, the test
event, live polling, and who may open them."""

from __future__ import annotations

import pytest
import responses
from django.test import Client

from apps.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.factories import (
    MembershipFactory,
    UserFactory,
    WebhookDeliveryAttemptFactory,
    WebhookDeliveryFactory,
    WebhookEndpointFactory,
)

BASE = "/t/acme/settings/webhooks/"
HX = {"HTTP_HX_REQUEST": "true"}


def endpoints(tenant):
    return WebhookEndpoint.objects.for_tenant(tenant)


@pytest.fixture
def endpoint(tenant):
    return WebhookEndpointFactory(tenant=tenant, url="https://crm.example.com/hook", description="CRM",
                                  events=["message.received", "message.read"], secret="whsec_original")


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def client_for(tenant, role: str) -> Client:
    user = UserFactory(email=f"{role}@acme.test")
    MembershipFactory(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


# --- list ----------------------------------------------------------------------------------

def test_list_empty_state_and_rows(member_client, tenant):
    response = member_client.get(BASE)
    assert response.status_code == 200
    assert b"No webhook endpoints yet" in response.content
    WebhookEndpointFactory(tenant=tenant, url="https://a.example.com/x", events=[])
    off = WebhookEndpointFactory(tenant=tenant, url="https://b.example.com/y", events=["message.read"], is_active=False)
    WebhookDeliveryFactory(endpoint=off, status=WebhookDelivery.Status.FAILED)
    html = member_client.get(BASE).content.decode()
    assert "https://a.example.com/x" in html and "All events" in html
    assert "https://b.example.com/y" in html and "message.read" in html and "Disabled" in html
    assert "1 delivery gave up" in html
    assert 'href="/t/acme/settings/webhooks/new/"' in html


def test_list_never_contains_a_secret(member_client, endpoint):
    assert b"whsec_original" not in member_client.get(BASE).content


@pytest.mark.parametrize(("role", "status"), [("owner", 200), ("admin", 200), ("developer", 200),
                                               ("agent", 403), ("marketer", 403)])
def test_roles(tenant, endpoint, role, status):
    client = client_for(tenant, role)
    assert client.get(BASE).status_code == status
    assert client.get(f"{BASE}{endpoint.pk}/").status_code == status
    assert client.post(f"{BASE}{endpoint.pk}/test/").status_code == (302 if status == 200 else 403)
    assert client.post(f"{BASE}delete/{endpoint.pk}/").status_code == (302 if status == 200 else 403)
    if status == 403:
        assert endpoints(tenant).filter(pk=endpoint.pk).exists()


# --- create --------------------------------------------------------------------------------

def test_create_shows_the_secret_once(member_client, tenant):
    response = member_client.post(f"{BASE}new/", {"url": "https://crm.example.com/parley", "description": "CRM",
                                                  "format": "parley", "scope": "selected",
                                                  "events": ["message.received", "template.status_changed"]})
    endpoint = endpoints(tenant).get()
    # Post/Redirect/Get: reloading the page that shows the secret never creates a second endpoint.
    assert response.status_code == 302 and response["Location"] == f"{BASE}{endpoint.pk}/"
    assert endpoint.url == "https://crm.example.com/parley"
    assert endpoint.events == ["message.received", "template.status_changed"]
    assert endpoint.format == "parley" and endpoint.description == "CRM" and endpoint.is_active
    html = member_client.get(response["Location"]).content.decode()
    assert endpoint.secret.startswith("whsec_") and endpoint.secret in html
    assert "not shown again" in html
    # Never again: the same page, the edit page and the list do not show it.
    for url in (f"{BASE}{endpoint.pk}/", f"{BASE}{endpoint.pk}/edit/", BASE):
        assert endpoint.secret not in member_client.get(url).content.decode()
    assert endpoints(tenant).count() == 1


def test_a_revealed_secret_is_shown_only_on_its_own_endpoint(member_client, tenant):
    member_client.post(f"{BASE}new/", {"url": "https://a.example.com/x", "format": "parley", "scope": "all"})
    first = endpoints(tenant).get()
    other = WebhookEndpointFactory(tenant=tenant)
    assert first.secret not in member_client.get(f"{BASE}{other.pk}/").content.decode()
    assert first.secret in member_client.get(f"{BASE}{first.pk}/").content.decode()


def test_create_every_event_in_meta_format(member_client, tenant):
    member_client.post(f"{BASE}new/", {"url": "https://bot.example.com/wa", "format": "meta", "scope": "all",
                                       "events": ["message.read"]})
    endpoint = endpoints(tenant).get()
    assert endpoint.events == [] and endpoint.format == "meta"


def test_create_form_lists_every_event_type(member_client):
    html = member_client.get(f"{BASE}new/").content.decode()
    from apps.webhooks.models import EVENT_TYPES
    for event in EVENT_TYPES:
        assert f'value="{event}"' in html


@pytest.mark.parametrize(("data", "message"), [
    ({"url": "", "format": "parley", "scope": "all"}, "This field is required"),
    ({"url": "ftp://example.com/x", "format": "parley", "scope": "all"}, "must start with http:// or https://"),
    ({"url": "https://127.0.0.1/x", "format": "parley", "scope": "all"}, "loopback"),
    ({"url": "https://ok.example.com/x", "format": "parley", "scope": "selected"}, "Choose at least one event type"),
    ({"url": "https://ok.example.com/x", "format": "parley", "scope": "selected", "events": ["nope.event"]},
     "Select a valid choice"),
    ({"url": "https://ok.example.com/x", "format": "xml", "scope": "all"}, "Select a valid choice"),
])
def test_create_errors_are_shown_and_nothing_is_saved(member_client, tenant, settings, data, message):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    response = member_client.post(f"{BASE}new/", data)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not endpoints(tenant).exists()
    # What was typed is kept.
    if data["url"]:
        assert data["url"] in response.content.decode()


# --- edit, enable/disable, rotate, delete ----------------------------------------------------

def test_edit_prefills_and_saves(member_client, tenant, endpoint):
    html = member_client.get(f"{BASE}{endpoint.pk}/edit/").content.decode()
    assert 'value="https://crm.example.com/hook"' in html
    assert 'value="message.read" checked' in html and 'value="message.sent" checked' not in html
    response = member_client.post(f"{BASE}{endpoint.pk}/edit/", {
        "url": "https://crm.example.com/v2", "description": "", "format": "meta", "scope": "all"})
    assert response.status_code == 302 and response["Location"] == f"{BASE}{endpoint.pk}/"
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.events, endpoint.format, endpoint.description) == \
        ("https://crm.example.com/v2", [], "meta", "")
    assert endpoint.secret == "whsec_original"


def test_edit_error_keeps_the_endpoint(member_client, endpoint):
    response = member_client.post(f"{BASE}{endpoint.pk}/edit/", {"url": "not a url", "format": "parley",
                                                                  "scope": "all"})
    assert response.status_code == 422 and b"must not contain spaces" in response.content
    endpoint.refresh_from_db()
    assert endpoint.url == "https://crm.example.com/hook"


def test_disable_and_enable(member_client, endpoint):
    response = member_client.post(f"{BASE}{endpoint.pk}/toggle/")
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    page = member_client.get(f"{BASE}{endpoint.pk}/").content.decode()
    assert "Endpoint disabled" in page and "Enable" in page
    response = member_client.post(f"{BASE}{endpoint.pk}/toggle/", **HX)
    assert response.status_code == 200 and response["HX-Redirect"] == f"{BASE}{endpoint.pk}/"
    endpoint.refresh_from_db()
    assert endpoint.is_active


def test_rotate_shows_the_new_secret_once(member_client, endpoint):
    response = member_client.post(f"{BASE}{endpoint.pk}/rotate-secret/", **HX)
    endpoint.refresh_from_db()
    assert endpoint.secret != "whsec_original" and endpoint.secret.startswith("whsec_")
    html = response.content.decode()
    assert endpoint.secret in html and 'id="secret-panel"' in html and "<html" not in html
    assert endpoint.secret not in member_client.get(f"{BASE}{endpoint.pk}/").content.decode()
    # Without HTMX: back to the page, which shows the new secret once.
    response = member_client.post(f"{BASE}{endpoint.pk}/rotate-secret/")
    assert response.status_code == 302
    endpoint.refresh_from_db()
    page = member_client.get(response["Location"]).content.decode()
    assert endpoint.secret in page and "The new signing secret" in page and "Delivery log" in page
    assert endpoint.secret not in member_client.get(response["Location"]).content.decode()


def test_rotate_and_delete_need_post(member_client, endpoint):
    assert member_client.get(f"{BASE}{endpoint.pk}/rotate-secret/").status_code == 405
    assert member_client.get(f"{BASE}delete/{endpoint.pk}/").status_code == 405


def test_delete_removes_the_endpoint_and_its_log(member_client, tenant, endpoint):
    WebhookDeliveryAttemptFactory(delivery=WebhookDeliveryFactory(endpoint=endpoint))
    response = member_client.post(f"{BASE}delete/{endpoint.pk}/", **HX)
    assert response["HX-Redirect"] == BASE
    assert not endpoints(tenant).exists()
    assert not WebhookDelivery.objects.for_tenant(tenant).exists()
    assert b"deleted" in member_client.get(BASE).content
    assert member_client.get(f"{BASE}{endpoint.pk}/").status_code == 404


def test_delete_confirms_first(member_client, endpoint):
    html = member_client.get(f"{BASE}{endpoint.pk}/").content.decode()
    assert 'id="delete-endpoint"' in html and "hx-confirm=\"Delete https://crm.example.com/hook and its whole delivery log" in html


# --- detail: the delivery log ----------------------------------------------------------------

def test_detail_shows_each_delivery_with_its_last_attempt(member_client, endpoint):
    ok = WebhookDeliveryFactory(endpoint=endpoint, event_type="message.read", status="succeeded",
                                attempt_count=2, last_status_code=200)
    WebhookDeliveryAttemptFactory(delivery=ok, status_code=500, duration_ms=31, response_excerpt="boom")
    WebhookDeliveryAttemptFactory(delivery=ok, status_code=200, duration_ms=87, response_excerpt="thanks")
    failed = WebhookDeliveryFactory(endpoint=endpoint, event_type="message.received", status="failed", attempt_count=1)
    WebhookDeliveryAttemptFactory(delivery=failed, status_code=None, duration_ms=10000,
                                  error="timed out after 10 s")
    html = member_client.get(f"{BASE}{endpoint.pk}/").content.decode()
    assert "message.read" in html and "Delivered" in html and "87 ms" in html and "thanks" in html
    assert "message.received" in html and "Gave up" in html and "timed out after 10 s" in html
    assert html.index(f'id="delivery-{failed.pk}"') < html.index(f'id="delivery-{ok.pk}"')  # newest first
    # Nothing is waiting: no polling.
    assert 'hx-trigger="every' not in html


def test_attempts_expand(member_client, endpoint):
    delivery = WebhookDeliveryFactory(endpoint=endpoint, status="succeeded")
    WebhookDeliveryAttemptFactory(delivery=delivery, status_code=503, duration_ms=40, response_excerpt="busy")
    WebhookDeliveryAttemptFactory(delivery=delivery, status_code=204, duration_ms=12, response_excerpt="")
    url = f"{BASE}deliveries/{delivery.pk}/"
    assert url in member_client.get(f"{BASE}{endpoint.pk}/").content.decode()
    html = member_client.get(url, **HX).content.decode()
    assert "HTTP 503" in html and "busy" in html and "40 ms" in html
    assert "HTTP 204" in html and "12 ms" in html
    assert html.index("HTTP 204") < html.index("HTTP 503")  # newest first


def test_another_workspaces_delivery_is_404(member_client, other_tenant):
    other = WebhookDeliveryFactory(endpoint=WebhookEndpointFactory(tenant=other_tenant))
    assert member_client.get(f"{BASE}deliveries/{other.pk}/").status_code == 404
    assert member_client.post(f"{BASE}deliveries/{other.pk}/replay/").status_code == 404


def test_keyset_pages(member_client, endpoint, django_assert_max_num_queries):
    rows = [WebhookDeliveryFactory(endpoint=endpoint, status="succeeded") for _ in range(30)]
    html = member_client.get(f"{BASE}{endpoint.pk}/").content.decode()
    newest_25 = rows[5:]
    assert all(f'id="delivery-{d.pk}"' in html for d in newest_25)
    assert f'id="delivery-{rows[4].pk}"' not in html
    assert f"?before={rows[5].pk}" in html
    with django_assert_max_num_queries(12):
        older = member_client.get(f"{BASE}{endpoint.pk}/?before={rows[5].pk}", **HX).content.decode()
    assert all(f'id="delivery-{d.pk}"' in older for d in rows[:5])
    assert f'id="delivery-{rows[5].pk}"' not in older and "Older deliveries" not in older


def test_log_polls_while_a_delivery_waits(member_client, endpoint):
    delivery = WebhookDeliveryFactory(endpoint=endpoint, status="pending")
    html = member_client.get(f"{BASE}{endpoint.pk}/").content.decode()
    assert f'hx-get="{BASE}{endpoint.pk}/?log=1" hx-trigger="every 2s"' in html
    fragment = member_client.get(f"{BASE}{endpoint.pk}/?log=1", **HX).content.decode()
    assert 'id="delivery-log"' in fragment and "<html" not in fragment and "every 2s" in fragment
    WebhookDelivery.objects.for_tenant(endpoint.tenant).filter(pk=delivery.pk).update(status="succeeded")
    fragment = member_client.get(f"{BASE}{endpoint.pk}/?log=1", **HX).content.decode()
    assert "every 2s" not in fragment and "Delivered" in fragment


# --- test event and replay (eager Celery: the POST happens inside the request) --------------

def test_send_test_event_delivers_it(member_client, tenant, endpoint, rsps, django_capture_on_commit_callbacks):
    rsps.post("https://crm.example.com/hook", body="got it", status=200)
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(f"{BASE}{endpoint.pk}/test/", **HX)
    assert response.status_code == 200
    html = response.content.decode()
    # The answer shows the log with the new delivery waiting, polling until it settles.
    assert "webhook.test" in html and "Pending" in html and "Test event queued" in html and "every 2s" in html
    delivery = WebhookDelivery.objects.for_tenant(tenant).get()
    assert delivery.event_type == "webhook.test" and delivery.status == "succeeded"
    assert delivery.last_status_code == 200
    html = member_client.get(f"{BASE}{endpoint.pk}/?log=1", **HX).content.decode()
    assert "Delivered" in html and "got it" in html and "every 2s" not in html
    sent = rsps.calls[0].request
    assert sent.headers["Parley-Signature"].startswith("t=")


def test_send_test_event_to_a_failing_endpoint_shows_the_answer(member_client, tenant, endpoint, rsps,
                                                               django_capture_on_commit_callbacks):
    rsps.post("https://crm.example.com/hook", body="nope", status=500)
    with django_capture_on_commit_callbacks(execute=True):
        member_client.post(f"{BASE}{endpoint.pk}/test/", **HX)
    html = member_client.get(f"{BASE}{endpoint.pk}/?log=1", **HX).content.decode()
    delivery = WebhookDelivery.objects.for_tenant(tenant).get()
    assert delivery.status == "retrying"
    assert "Retrying" in html and "500" in html and "nope" in html
    assert "every 2s" in html  # still waiting: the log keeps polling


def test_send_test_event_to_a_disabled_endpoint_is_refused_in_words(member_client, tenant, endpoint):
    endpoints(tenant).filter(pk=endpoint.pk).update(is_active=False)
    html = member_client.post(f"{BASE}{endpoint.pk}/test/", **HX).content.decode()
    assert "The endpoint is disabled; enable it to send a test event." in html
    assert not WebhookDelivery.objects.for_tenant(tenant).exists()


def test_replay(member_client, tenant, endpoint, rsps, django_capture_on_commit_callbacks):
    delivery = WebhookDeliveryFactory(endpoint=endpoint, status="failed", attempt_count=9,
                                      event_type="message.read", payload={"id": "evt_1", "type": "message.read",
                                                                          "created_at": "2026-01-01T00:00:00Z",
                                                                          "data": {}})
    rsps.post("https://crm.example.com/hook", body="ok", status=200)
    with django_capture_on_commit_callbacks(execute=True):
        html = member_client.post(f"{BASE}deliveries/{delivery.pk}/replay/", **HX).content.decode()
    assert "queued again" in html and "Pending" in html
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempt_count == 1
    # Without HTMX: back to the page with a notice.
    response = member_client.post(f"{BASE}deliveries/{delivery.pk}/replay/")
    assert response.status_code == 302


def test_user_text_is_escaped(member_client, tenant):
    WebhookEndpointFactory(tenant=tenant, url="https://x.example.com/<b>", description="<script>alert(1)</script>")
    html = member_client.get(BASE).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
