from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from unittest import mock

import pytest
import responses
from django.db import transaction

from apps.webhooks import services, signing
from apps.webhooks.models import EVENT_TYPES, WebhookDelivery
from tests.factories import TenantFactory, WebhookEndpointFactory

URL = "https://hooks.example.com/parley"


@pytest.fixture(autouse=True)
def _allow_private(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True


def deliveries(tenant):
    return WebhookDelivery.objects.for_tenant(tenant)


def test_emits_only_to_active_subscribed_endpoints(tenant, other_tenant, django_capture_on_commit_callbacks):
    everything = WebhookEndpointFactory(tenant=tenant, events=[])
    subscribed = WebhookEndpointFactory(tenant=tenant, events=["message.received", "message.read"])
    WebhookEndpointFactory(tenant=tenant, events=["message.sent"])
    WebhookEndpointFactory(tenant=tenant, events=[], is_active=False)
    WebhookEndpointFactory(tenant=other_tenant, events=[])

    with django_capture_on_commit_callbacks() as callbacks:
        created = services.event_emit(tenant=tenant, type="message.received", data={"message_id": 7})

    assert {d.endpoint_id for d in created} == {everything.pk, subscribed.pk}
    assert deliveries(tenant).count() == 2
    assert WebhookDelivery.objects.for_tenant(other_tenant).count() == 0
    assert len(callbacks) == 1  # one bell for the event, after commit
    for delivery in created:
        assert delivery.pk is not None
        assert delivery.status == WebhookDelivery.Status.PENDING
        assert delivery.next_attempt_at is not None
        assert delivery.event_type == "message.received"


def test_envelope_shape_and_one_event_id_for_all_endpoints(tenant, django_capture_on_commit_callbacks):
    WebhookEndpointFactory(tenant=tenant)
    WebhookEndpointFactory(tenant=tenant)
    with django_capture_on_commit_callbacks():
        created = services.event_emit(
            tenant=tenant, type="message.delivered",
            data={"at": dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "price": Decimal("1.50")},
        )
    payloads = [d.payload for d in created]
    assert payloads[0] == payloads[1]
    envelope = payloads[0]
    assert set(envelope) == {"id", "type", "created_at", "data"}
    assert envelope["id"].startswith("evt_") and len(envelope["id"]) <= 40
    assert envelope["type"] == "message.delivered"
    assert envelope["created_at"].endswith("Z")
    dt.datetime.fromisoformat(envelope["created_at"].replace("Z", "+00:00"))
    assert envelope["data"] == {"at": "2025-01-02T03:04:05Z", "price": "1.50"}
    assert {d.event_id for d in created} == {envelope["id"]}


def test_unknown_type_is_a_value_error(tenant):
    with pytest.raises(ValueError):
        services.event_emit(tenant=tenant, type="message.exploded", data={})
    with pytest.raises(ValueError):
        services.event_emit(tenant=tenant, type=services.TEST_EVENT_TYPE, data={})
    with pytest.raises(ValueError):
        services.event_emit_many(tenant=tenant, events=[("message.sent", {}), ("nope", {})])


def test_no_endpoints_costs_one_query(tenant, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert services.event_emit(tenant=tenant, type="message.sent", data={"id": 1}) == []
    with django_assert_num_queries(1):
        assert services.event_emit_many(tenant=tenant, events=[("message.sent", {"id": 1})] * 50) == 0


@responses.activate
def test_rows_roll_back_with_the_callers_transaction(tenant, django_capture_on_commit_callbacks):
    WebhookEndpointFactory(tenant=tenant, url=URL)
    responses.add(responses.POST, URL, status=200)

    class Boom(Exception):
        pass

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(Boom):
        with transaction.atomic():
            services.event_emit(tenant=tenant, type="conversation.opened", data={"conversation_id": 1})
            services.event_emit_many(tenant=tenant, events=[("message.sent", {"message_id": 1})])
            assert deliveries(tenant).count() == 2
            raise Boom()

    assert deliveries(tenant).count() == 0
    assert callbacks == []
    assert len(responses.calls) == 0


@responses.activate
def test_committed_event_is_posted_signed(tenant, django_capture_on_commit_callbacks):
    WebhookEndpointFactory(tenant=tenant, url=URL, secret="whsec_abc")
    responses.add(responses.POST, URL, status=204)

    with django_capture_on_commit_callbacks(execute=True):
        [delivery] = services.event_emit(tenant=tenant, type="message.received", data={"text": "héllo"})

    assert len(responses.calls) == 1
    request = responses.calls[0].request
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "Parley-Webhooks/1"
    assert request.headers["Parley-Event-Id"] == delivery.event_id
    assert request.headers["Parley-Event-Type"] == "message.received"
    assert signing.verify("whsec_abc", request.body, request.headers["Parley-Signature"])
    assert json.loads(request.body) == delivery.payload
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED


def test_emit_many_bulk_writes_and_rings_once(tenant, django_capture_on_commit_callbacks,
                                              django_assert_max_num_queries):
    WebhookEndpointFactory(tenant=tenant, events=[])
    WebhookEndpointFactory(tenant=tenant, events=["message.delivered"])
    WebhookEndpointFactory(tenant=tenant, events=["message.read"])
    WebhookEndpointFactory(tenant=TenantFactory(), events=[])
    events = [("message.delivered", {"message_id": i}) for i in range(300)]

    dispatch = mock.Mock()
    send = mock.Mock()
    with mock.patch("apps.webhooks.tasks.webhook_deliveries_dispatch_task", dispatch), \
            mock.patch("apps.webhooks.tasks.webhook_delivery_send_task", send):
        with django_capture_on_commit_callbacks(execute=True):
            with django_assert_max_num_queries(12):
                written = services.event_emit_many(tenant=tenant, events=events)

    assert written == 600
    assert deliveries(tenant).count() == 600
    assert deliveries(tenant).values("event_id").distinct().count() == 300
    dispatch.delay.assert_called_once_with(tenant_id=tenant.pk)
    send.delay.assert_not_called()


@responses.activate
def test_emit_many_is_delivered_by_the_dispatch_task(tenant, django_capture_on_commit_callbacks):
    first = WebhookEndpointFactory(tenant=tenant, url=URL)
    second = WebhookEndpointFactory(tenant=tenant, url="https://other.example.com/in", events=["message.read"])
    responses.add(responses.POST, URL, status=200)
    responses.add(responses.POST, "https://other.example.com/in", status=503)
    events = [("message.read", {"message_id": i}) for i in range(120)] + [("message.sent", {"message_id": 0})]

    with django_capture_on_commit_callbacks(execute=True):
        assert services.event_emit_many(tenant=tenant, events=events) == 241

    assert len(responses.calls) == 241
    ok = deliveries(tenant).filter(endpoint=first)
    failing = deliveries(tenant).filter(endpoint=second)
    assert ok.filter(status=WebhookDelivery.Status.SUCCEEDED).count() == 121
    assert failing.filter(status=WebhookDelivery.Status.RETRYING, attempt_count=1, last_status_code=503).count() == 120


def test_every_documented_type_is_accepted(tenant):
    for event_type in EVENT_TYPES:
        assert services.event_emit(tenant=tenant, type=event_type, data={}) == []


def test_data_must_be_a_dict(tenant):
    WebhookEndpointFactory(tenant=tenant)
    with pytest.raises(ValueError):
        services.event_emit(tenant=tenant, type="message.sent", data=["not", "a", "dict"])
