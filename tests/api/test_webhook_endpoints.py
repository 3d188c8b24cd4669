"""/api/v1/webhook-endpoints and /api/v1/webhook-deliveries: manage endpoints (the secret is shown
once), list deliveries with their attempts, replay, send a test event, tenant isolation. The
receiving end is mocked with ``responses``; the deliveries are really signed and posted."""

from __future__ import annotations

import json

import pytest
import responses

from apps.webhooks import signing
from apps.webhooks.models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint
from tests.factories import WebhookDeliveryAttemptFactory, WebhookDeliveryFactory, WebhookEndpointFactory

URL = "/api/v1/webhook-endpoints"
DELIVERIES = "/api/v1/webhook-deliveries"
HOOK = "https://hooks.example.com/parley"
ENDPOINT_FIELDS = {"id", "url", "description", "events", "format", "is_active", "created_at", "updated_at"}
DELIVERY_FIELDS = {"id", "endpoint_id", "event_id", "event_type", "status", "attempt_count", "last_status_code",
                   "next_attempt_at", "delivered_at", "created_at", "payload"}


@pytest.fixture(autouse=True)
def _allow_private(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def endpoint(tenant):
    return WebhookEndpointFactory(tenant=tenant, url=HOOK, secret="whsec_acme_secret", events=["message.failed"])


def make_delivery(endpoint, **kwargs):
    event_id = kwargs.pop("event_id", f"evt_{WebhookDelivery.all_tenants.count() + 1:032x}")
    payload = {"id": event_id, "type": "message.sent", "created_at": "2025-01-01T00:00:00.000Z",
               "data": {"message_id": 1}}
    return WebhookDeliveryFactory(endpoint=endpoint, event_id=event_id, payload=payload, **kwargs)


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code, response.json()
    return response.json()["error"]


def endpoints_of(tenant):
    return WebhookEndpoint.objects.for_tenant(tenant)


# -- endpoints ------------------------------------------------------------------------------

def test_create_returns_the_secret_once(api_client, tenant):
    response = api_client.post(URL, {"url": HOOK, "events": ["message.received", "message.failed"],
                                     "description": "CRM"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == ENDPOINT_FIELDS | {"secret"}
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 30
    assert (body["url"], body["events"], body["format"], body["is_active"], body["description"]) == (
        HOOK, ["message.received", "message.failed"], "parley", True, "CRM")
    stored = endpoints_of(tenant).get(pk=body["id"])
    assert stored.secret == body["secret"]
    for again in (api_client.get(URL), api_client.get(f"{URL}/{body['id']}"),
                  api_client.patch(f"{URL}/{body['id']}", {"description": "x"}, format="json")):
        assert again.status_code == 200
        assert body["secret"] not in again.content.decode() and '"secret"' not in again.content.decode()


def test_create_defaults_and_meta_format(api_client):
    body = api_client.post(URL, {"url": HOOK, "format": "meta"}, format="json").json()
    assert (body["events"], body["format"], body["description"]) == ([], "meta", "")


@pytest.mark.parametrize(("body", "status", "code"), [
    ({}, 400, "invalid_request"),
    ({"url": "ftp://hooks.example.com"}, 400, "invalid_url"),
    ({"url": "https://"}, 400, "invalid_url"),
    ({"url": HOOK, "events": ["message.exploded"]}, 400, "invalid_request"),
    ({"url": HOOK, "events": "message.sent"}, 400, "invalid_request"),
    ({"url": HOOK, "format": "xml"}, 400, "invalid_request"),
    ({"url": HOOK, "description": "x" * 201}, 400, "invalid_request"),
])
def test_create_invalid(api_client, tenant, body, status, code):
    assert_error(api_client.post(URL, body, format="json"), status, code)
    assert not endpoints_of(tenant).exists()


def test_create_private_url_refused_when_not_allowed(api_client, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    assert_error(api_client.post(URL, {"url": "http://127.0.0.1:8000/hook"}, format="json"), 400, "invalid_url")


def test_create_refuses_an_idempotency_key(api_client, tenant):
    error = assert_error(api_client.post(URL, {"url": HOOK}, format="json", headers={"Idempotency-Key": "k1"}),
                         400, "idempotency_not_supported")
    assert "secret" in error["message"]
    assert not endpoints_of(tenant).exists()


def test_list_paged_without_secrets(api_client, tenant):
    endpoints = [WebhookEndpointFactory(tenant=tenant, secret=f"whsec_{i}_hidden") for i in range(3)]
    first = api_client.get(URL, {"per_page": 2})
    body = first.json()
    assert [row["id"] for row in body["data"]] == [e.pk for e in endpoints[:2]] and body["next_page"] == 2
    assert set(body["data"][0]) == ENDPOINT_FIELDS
    assert "hidden" not in first.content.decode()
    assert [row["id"] for row in api_client.get(URL, {"page": 2, "per_page": 2}).json()["data"]] == [endpoints[2].pk]


@pytest.mark.parametrize("params", [{"per_page": 0}, {"per_page": 101}])
def test_paging_bounds(api_client, endpoint, params):
    assert_error(api_client.get(URL, params), 400, "invalid_request")
    assert_error(api_client.get(f"{URL}/{endpoint.pk}/deliveries", params), 400, "invalid_request")


def test_get_patch_delete(api_client, tenant, endpoint):
    assert api_client.get(f"{URL}/{endpoint.pk}").json()["events"] == ["message.failed"]
    response = api_client.patch(f"{URL}/{endpoint.pk}", {
        "url": "https://other.example.com/in", "events": [], "is_active": False, "format": "meta",
        "description": "paused"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["url"], body["events"], body["is_active"], body["format"], body["description"]) == (
        "https://other.example.com/in", [], False, "meta", "paused")
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.is_active, endpoint.secret) == ("https://other.example.com/in", False,
                                                                   "whsec_acme_secret")
    assert_error(api_client.patch(f"{URL}/{endpoint.pk}", {"url": "nope"}, format="json"), 400, "invalid_url")
    assert_error(api_client.patch(f"{URL}/{endpoint.pk}", {"is_active": "maybe"}, format="json"),
                 400, "invalid_request")
    delivery = make_delivery(endpoint)
    assert api_client.delete(f"{URL}/{endpoint.pk}").status_code == 204
    assert not endpoints_of(tenant).exists()
    assert not WebhookDelivery.objects.for_tenant(tenant).filter(pk=delivery.pk).exists()
    assert_error(api_client.get(f"{URL}/{endpoint.pk}"), 404, "not_found")
    assert_error(api_client.delete(f"{URL}/{endpoint.pk}"), 404, "not_found")


def test_rotate_secret(api_client, endpoint):
    response = api_client.post(f"{URL}/{endpoint.pk}/rotate-secret")
    assert response.status_code == 200
    secret = response.json()["secret"]
    assert secret.startswith("whsec_") and secret != "whsec_acme_secret"
    endpoint.refresh_from_db()
    assert endpoint.secret == secret
    assert secret not in api_client.get(f"{URL}/{endpoint.pk}").content.decode()
    assert_error(api_client.post(f"{URL}/{endpoint.pk}/rotate-secret", headers={"Idempotency-Key": "r"}),
                 400, "idempotency_not_supported")


# -- deliveries -----------------------------------------------------------------------------

def test_deliveries_with_attempt_summaries(api_client, tenant, endpoint, django_assert_max_num_queries):
    other_endpoint = WebhookEndpointFactory(tenant=tenant)
    fresh = make_delivery(endpoint)
    retrying = make_delivery(endpoint, status="retrying", attempt_count=2, last_status_code=503)
    WebhookDeliveryAttemptFactory(delivery=retrying, status_code=None, error="timeout: no answer within 10 s",
                                  duration_ms=10000)
    last = WebhookDeliveryAttemptFactory(delivery=retrying, status_code=503, response_excerpt="down", duration_ms=80)
    failed = make_delivery(endpoint, status="failed", attempt_count=1)
    WebhookDeliveryAttemptFactory(delivery=failed, status_code=500)
    make_delivery(other_endpoint)

    response = api_client.get(f"{URL}/{endpoint.pk}/deliveries")
    assert response.status_code == 200
    body = response.json()
    assert [row["id"] for row in body["data"]] == [failed.pk, retrying.pk, fresh.pk]
    row = body["data"][1]
    assert set(row) == DELIVERY_FIELDS | {"attempts"}
    assert (row["endpoint_id"], row["event_id"], row["status"], row["attempt_count"], row["last_status_code"]) == (
        endpoint.pk, retrying.event_id, "retrying", 2, 503)
    assert row["payload"] == retrying.payload
    assert row["attempts"]["total"] == 2
    assert row["attempts"]["last"] == {"status_code": 503, "error": "", "response_excerpt": "down",
                                       "duration_ms": 80, "created_at": row["attempts"]["last"]["created_at"]}
    assert row["attempts"]["last"]["created_at"] == last.created_at.isoformat().replace("+00:00", "Z")
    assert body["data"][2]["attempts"] == {"total": 0, "last": None}

    assert [r["id"] for r in api_client.get(f"{URL}/{endpoint.pk}/deliveries", {"status": "failed"}).json()["data"]] \
        == [failed.pk]
    assert_error(api_client.get(f"{URL}/{endpoint.pk}/deliveries", {"status": "lost"}), 400, "invalid_request")
    paged = api_client.get(f"{URL}/{endpoint.pk}/deliveries", {"per_page": 2}).json()
    assert len(paged["data"]) == 2 and paged["has_more"] is True
    with django_assert_max_num_queries(6):  # key, endpoint, deliveries, attempt counts, last attempts
        api_client.get(f"{URL}/{endpoint.pk}/deliveries", {"per_page": 100})


def test_delivery_detail_lists_every_attempt(api_client, endpoint):
    delivery = make_delivery(endpoint, status="retrying", attempt_count=2)
    first = WebhookDeliveryAttemptFactory(delivery=delivery, status_code=500)
    second = WebhookDeliveryAttemptFactory(delivery=delivery, status_code=None, error="connection error: refused")
    body = api_client.get(f"{DELIVERIES}/{delivery.pk}").json()
    assert [a["status_code"] for a in body["attempts"]] == [second.status_code, first.status_code]
    assert body["attempts"][0]["error"] == "connection error: refused"
    assert_error(api_client.get(f"{DELIVERIES}/{delivery.pk + 100}"), 404, "not_found")


def test_replay_posts_the_same_event_again(api_client, tenant, endpoint, rsps, django_capture_on_commit_callbacks):
    delivery = make_delivery(endpoint, status="failed", attempt_count=9, last_status_code=500)
    WebhookDeliveryAttemptFactory(delivery=delivery, status_code=500)
    rsps.post(HOOK, status=200, body="ok")
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(f"{DELIVERIES}/{delivery.pk}/replay")
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == DELIVERY_FIELDS
    assert (body["id"], body["status"], body["attempt_count"], body["event_id"]) == (
        delivery.pk, "pending", 0, delivery.event_id)
    [call] = rsps.calls
    assert json.loads(call.request.body) == delivery.payload
    assert call.request.headers["Parley-Event-Id"] == delivery.event_id
    assert signing.verify("whsec_acme_secret", call.request.body, call.request.headers[signing.HEADER])
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == ("succeeded", 1, 200)
    assert WebhookDeliveryAttempt.objects.for_tenant(tenant).filter(delivery=delivery).count() == 2
    summary = api_client.get(f"{URL}/{endpoint.pk}/deliveries").json()["data"][0]["attempts"]
    assert summary["total"] == 2 and summary["last"]["status_code"] == 200
    assert_error(api_client.post(f"{DELIVERIES}/{delivery.pk + 100}/replay"), 404, "not_found")


def test_test_event(api_client, tenant, endpoint, rsps, django_capture_on_commit_callbacks):
    rsps.post(HOOK, status=204)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(f"{URL}/{endpoint.pk}/test")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["event_type"], body["endpoint_id"], body["status"]) == ("webhook.test", endpoint.pk, "pending")
    assert body["payload"]["data"]["endpoint_id"] == endpoint.pk
    [call] = rsps.calls
    assert json.loads(call.request.body)["type"] == "webhook.test"
    assert signing.verify("whsec_acme_secret", call.request.body, call.request.headers[signing.HEADER])
    assert WebhookDelivery.objects.for_tenant(tenant).get(pk=body["id"]).status == "succeeded"


def test_test_event_to_a_disabled_endpoint_is_409(api_client, tenant):
    endpoint = WebhookEndpointFactory(tenant=tenant, is_active=False)
    assert_error(api_client.post(f"{URL}/{endpoint.pk}/test"), 409, "endpoint_disabled")


def test_test_event_with_idempotency_key_is_sent_once(api_client, tenant, endpoint, rsps,
                                                      django_capture_on_commit_callbacks):
    rsps.post(HOOK, status=200)
    with django_capture_on_commit_callbacks(execute=True):
        first = api_client.post(f"{URL}/{endpoint.pk}/test", headers={"Idempotency-Key": "t1"})
        second = api_client.post(f"{URL}/{endpoint.pk}/test", headers={"Idempotency-Key": "t1"})
    assert first.json() == second.json() and second["Idempotent-Replayed"] == "true"
    assert WebhookDelivery.objects.for_tenant(tenant).count() == 1 and len(rsps.calls) == 1


# -- tenant isolation -----------------------------------------------------------------------

def test_another_tenant_gets_404_on_every_id_and_sees_nothing(other_api_client, tenant, endpoint):
    delivery = make_delivery(endpoint, status="failed")
    for method, url, body in [
        ("get", f"{URL}/{endpoint.pk}", None),
        ("patch", f"{URL}/{endpoint.pk}", {"is_active": False}),
        ("delete", f"{URL}/{endpoint.pk}", None),
        ("get", f"{URL}/{endpoint.pk}/deliveries", None),
        ("post", f"{URL}/{endpoint.pk}/test", None),
        ("post", f"{URL}/{endpoint.pk}/rotate-secret", None),
        ("get", f"{DELIVERIES}/{delivery.pk}", None),
        ("post", f"{DELIVERIES}/{delivery.pk}/replay", None),
    ]:
        response = getattr(other_api_client, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
        assert response.json()["error"]["code"] == "not_found"
    assert other_api_client.get(URL).json()["data"] == []
    endpoint.refresh_from_db()
    delivery.refresh_from_db()
    assert (endpoint.is_active, endpoint.secret, delivery.status) == (True, "whsec_acme_secret", "failed")
    assert WebhookDelivery.objects.for_tenant(tenant).count() == 1
