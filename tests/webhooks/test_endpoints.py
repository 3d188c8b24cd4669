from __future__ import annotations

import pytest
import responses
from django.db import connection
from django.http import Http404

from apps.core.exceptions import ApplicationError
from apps.core.fields import PREFIX
from apps.webhooks import selectors, services
from apps.webhooks.models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint
from tests.factories import WebhookDeliveryAttemptFactory, WebhookDeliveryFactory, WebhookEndpointFactory

URL = "https://hooks.example.com/parley"


@pytest.fixture(autouse=True)
def _allow_private(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True


def test_create_returns_a_secret_stored_encrypted(tenant):
    endpoint, secret = services.webhook_endpoint_create(tenant=tenant, url=f"  {URL} ",
                                                         events=["message.read", "message.read", "message.sent"],
                                                         description=" CRM ")
    assert secret.startswith("whsec_") and len(secret) > 30
    assert endpoint.secret == secret
    assert endpoint.url == URL
    assert endpoint.events == ["message.read", "message.sent"]
    assert endpoint.description == "CRM"
    assert endpoint.format == WebhookEndpoint.Format.PARLEY
    assert endpoint.is_active
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_webhookendpoint WHERE id = %s", [endpoint.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith(PREFIX) and secret not in stored
    _, other_secret = services.webhook_endpoint_create(tenant=tenant, url=URL)
    assert other_secret != secret


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"url": "ftp://example.com/"}, "invalid_url"),
    ({"url": "example.com/hook"}, "invalid_url"),
    ({"url": ""}, "invalid_url"),
    ({"url": "https://exa mple.com/"}, "invalid_url"),
    ({"url": "https://example.com:70000/"}, "invalid_url"),
    ({"url": "https://example.com/" + "x" * 500}, "invalid_url"),
    ({"url": URL, "events": ["message.exploded"]}, "invalid_events"),
    ({"url": URL, "events": [services.TEST_EVENT_TYPE]}, "invalid_events"),
    ({"url": URL, "events": "message.sent"}, "invalid_events"),
    ({"url": URL, "format": "xml"}, "invalid_format"),
    ({"url": URL, "description": "d" * 201}, "invalid_description"),
])
def test_create_validates(tenant, kwargs, code):
    with pytest.raises(ApplicationError) as excinfo:
        services.webhook_endpoint_create(tenant=tenant, **kwargs)
    assert excinfo.value.code == code
    assert WebhookEndpoint.objects.for_tenant(tenant).count() == 0


def test_every_event_type_can_be_subscribed(tenant):
    endpoint, _ = services.webhook_endpoint_create(tenant=tenant, url=URL, events=list(EVENT_TYPES),
                                                   format="meta")
    assert endpoint.events == list(EVENT_TYPES)
    assert endpoint.format == "meta"


def test_update_changes_only_what_is_given(tenant):
    endpoint, secret = services.webhook_endpoint_create(tenant=tenant, url=URL, events=["message.sent"],
                                                         description="first")
    updated = services.webhook_endpoint_update(tenant=tenant, endpoint_id=endpoint.pk, is_active=False,
                                               events=[])
    assert (updated.is_active, updated.events, updated.url, updated.description) == (False, [], URL, "first")
    updated = services.webhook_endpoint_update(tenant=tenant, endpoint_id=str(endpoint.pk),
                                               url="http://example.org/in", description="second")
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.description, endpoint.is_active, endpoint.secret) == (
        "http://example.org/in", "second", False, secret)
    with pytest.raises(ApplicationError):
        services.webhook_endpoint_update(tenant=tenant, endpoint_id=endpoint.pk, events=["nope"])


def test_rotate_secret(tenant):
    endpoint, old = services.webhook_endpoint_create(tenant=tenant, url=URL)
    rotated, new = services.webhook_endpoint_rotate_secret(tenant=tenant, endpoint_id=endpoint.pk)
    assert new != old and new.startswith("whsec_")
    endpoint.refresh_from_db()
    assert endpoint.secret == new == rotated.secret


def test_delete_removes_deliveries_and_attempts(tenant):
    endpoint = WebhookEndpointFactory(tenant=tenant)
    WebhookDeliveryAttemptFactory(delivery=WebhookDeliveryFactory(endpoint=endpoint))
    services.webhook_endpoint_delete(tenant=tenant, endpoint_id=endpoint.pk)
    assert WebhookEndpoint.objects.for_tenant(tenant).count() == 0
    assert WebhookDelivery.objects.for_tenant(tenant).count() == 0


def test_another_tenants_endpoint_is_a_404_everywhere(tenant, other_tenant):
    theirs = WebhookEndpointFactory(tenant=other_tenant)
    for call in (
        lambda: selectors.access_endpoint(tenant=tenant, endpoint_id=theirs.pk),
        lambda: services.webhook_endpoint_update(tenant=tenant, endpoint_id=theirs.pk, is_active=False),
        lambda: services.webhook_endpoint_rotate_secret(tenant=tenant, endpoint_id=theirs.pk),
        lambda: services.webhook_endpoint_delete(tenant=tenant, endpoint_id=theirs.pk),
        lambda: services.webhook_test_event_send(tenant=tenant, endpoint_id=theirs.pk),
        lambda: selectors.access_endpoint(tenant=tenant, endpoint_id="abc"),
        lambda: selectors.access_endpoint(tenant=tenant, endpoint_id=None),
    ):
        with pytest.raises(Http404):
            call()
    theirs.refresh_from_db()
    assert theirs.is_active


@responses.activate
def test_test_event_goes_to_that_endpoint_only(tenant, django_capture_on_commit_callbacks):
    target = WebhookEndpointFactory(tenant=tenant, url=URL, events=["message.read"])
    WebhookEndpointFactory(tenant=tenant, url="https://other.example.com/", events=[])
    responses.add(responses.POST, URL, status=200)

    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.webhook_test_event_send(tenant=tenant, endpoint_id=target.pk)

    assert delivery.event_type == services.TEST_EVENT_TYPE == "webhook.test"
    assert delivery.payload["type"] == "webhook.test"
    assert delivery.payload["data"]["endpoint_id"] == target.pk
    assert [call.request.url for call in responses.calls] == [URL]
    assert responses.calls[0].request.headers["Parley-Event-Type"] == "webhook.test"
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED


def test_test_event_refuses_a_disabled_endpoint(tenant):
    endpoint = WebhookEndpointFactory(tenant=tenant, is_active=False)
    with pytest.raises(ApplicationError) as excinfo:
        services.webhook_test_event_send(tenant=tenant, endpoint_id=endpoint.pk)
    assert excinfo.value.code == "endpoint_disabled"


def test_endpoint_list_is_the_tenants_own(tenant, other_tenant):
    mine = [WebhookEndpointFactory(tenant=tenant) for _ in range(2)]
    WebhookEndpointFactory(tenant=other_tenant)
    assert list(selectors.endpoint_list(tenant=tenant)) == mine


def test_delivery_list_filters(tenant, other_tenant):
    first = WebhookEndpointFactory(tenant=tenant)
    second = WebhookEndpointFactory(tenant=tenant)
    a = WebhookDeliveryFactory(endpoint=first)
    b = WebhookDeliveryFactory(endpoint=second, status=WebhookDelivery.Status.FAILED)
    c = WebhookDeliveryFactory(endpoint=first, status=WebhookDelivery.Status.FAILED)
    WebhookDeliveryFactory(endpoint=WebhookEndpointFactory(tenant=other_tenant))

    assert list(selectors.delivery_list(tenant=tenant)) == [c, b, a]
    assert list(selectors.delivery_list(tenant=tenant, endpoint_id=first.pk)) == [c, a]
    assert list(selectors.delivery_list(tenant=tenant, status="failed")) == [c, b]
    assert list(selectors.delivery_list(tenant=tenant, endpoint_id=str(second.pk), status="failed")) == [b]
    with pytest.raises(ApplicationError):
        selectors.delivery_list(tenant=tenant, status="exploded")
    with pytest.raises(ApplicationError):
        selectors.delivery_list(tenant=tenant, endpoint_id="x")


def test_access_delivery_prefetches_attempts(tenant, django_assert_num_queries):
    delivery = WebhookDeliveryFactory(endpoint=WebhookEndpointFactory(tenant=tenant))
    attempts = [WebhookDeliveryAttemptFactory(delivery=delivery, status_code=code) for code in (500, 502, 200)]

    with django_assert_num_queries(2):
        loaded = selectors.access_delivery(tenant=tenant, delivery_id=delivery.pk)
        assert [a.pk for a in loaded.attempts.all()] == [a.pk for a in reversed(attempts)]
        assert loaded.endpoint.url
