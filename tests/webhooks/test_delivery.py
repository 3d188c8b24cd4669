from __future__ import annotations

import json
from datetime import timedelta
from unittest import mock

import pytest
import requests
import responses
from django.http import Http404
from django.utils import timezone

from apps.core.scoping import tenant_scope
from apps.webhooks import selectors, sender, services, signing, tasks
from apps.webhooks.models import WebhookDelivery, WebhookDeliveryAttempt
from tests.factories import WebhookDeliveryAttemptFactory, WebhookDeliveryFactory, WebhookEndpointFactory

URL = "https://hooks.example.com/parley"
SECRET = "whsec_delivery_test"


@pytest.fixture(autouse=True)
def _allow_private(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True


@pytest.fixture
def endpoint(tenant):
    return WebhookEndpointFactory(tenant=tenant, url=URL, secret=SECRET)


def make_delivery(endpoint, **kwargs):
    event_id = kwargs.pop("event_id", services.new_event_id())
    payload = {"id": event_id, "type": "message.sent", "created_at": "2025-01-01T00:00:00.000Z",
               "data": {"message_id": 1}}
    kwargs.setdefault("next_attempt_at", timezone.now())
    return WebhookDeliveryFactory(endpoint=endpoint, event_id=event_id, payload=payload, **kwargs)


def attempt(tenant, delivery, task_id="task-1"):
    with tenant_scope(tenant):
        return services.webhook_delivery_attempt(delivery_id=delivery.pk, task_id=task_id)


def attempts_of(delivery):
    return list(WebhookDeliveryAttempt.objects.for_tenant(delivery.tenant_id).filter(delivery=delivery).order_by("id"))


def make_due(delivery):
    WebhookDelivery.objects.for_tenant(delivery.tenant_id).filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1))


def assert_about(moment, expected, slack=5):
    assert abs((moment - expected).total_seconds()) <= slack, (moment, expected)


@responses.activate
def test_2xx_succeeds_with_one_attempt(tenant, endpoint):
    responses.add(responses.POST, URL, status=200, body="thanks")
    delivery = make_delivery(endpoint)

    result = attempt(tenant, delivery, task_id="celery-123")

    assert result.attempted is True
    assert result.status == WebhookDelivery.Status.SUCCEEDED
    assert result.attempt_count == 1
    assert result.last_status_code == 200
    assert result.delivered_at is not None and result.next_attempt_at is None
    [row] = attempts_of(delivery)
    assert (row.task_id, row.status_code, row.response_excerpt, row.error) == ("celery-123", 200, "thanks", "")
    assert row.duration_ms >= 0
    request = responses.calls[0].request
    assert request.body == services.event_body(delivery.payload)
    assert json.loads(request.body)["id"] == delivery.event_id
    assert signing.verify(SECRET, request.body, request.headers["Parley-Signature"])


@responses.activate
def test_500_retries_per_schedule_and_records_each_attempt(tenant, endpoint):
    responses.add(responses.POST, URL, status=500, body="oops")
    delivery = make_delivery(endpoint)

    expected = [10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 14400]
    for number, delay in enumerate(expected, start=1):
        before = timezone.now()
        result = attempt(tenant, delivery)
        assert result.status == WebhookDelivery.Status.RETRYING
        assert result.attempt_count == number
        assert result.last_status_code == 500
        assert_about(result.next_attempt_at, before + timedelta(seconds=delay))
        make_due(delivery)

    rows = attempts_of(delivery)
    assert len(rows) == len(expected) == len(responses.calls)
    assert all(row.status_code == 500 and row.response_excerpt == "oops" for row in rows)


@responses.activate
def test_timeout_is_a_failed_attempt_with_an_error(tenant, endpoint):
    responses.add(responses.POST, URL, body=requests.exceptions.ReadTimeout("read timed out"))
    delivery = make_delivery(endpoint)

    before = timezone.now()
    result = attempt(tenant, delivery)

    assert result.status == WebhookDelivery.Status.RETRYING
    assert result.last_status_code is None
    assert_about(result.next_attempt_at, before + timedelta(seconds=10))
    [row] = attempts_of(delivery)
    assert row.status_code is None
    assert row.error.startswith("timeout") and "read timed out" in row.error


@responses.activate
def test_connection_error_is_a_failed_attempt_with_an_error(tenant, endpoint):
    responses.add(responses.POST, URL, body=requests.exceptions.ConnectionError("connection refused"))
    delivery = make_delivery(endpoint)

    result = attempt(tenant, delivery)

    assert result.status == WebhookDelivery.Status.RETRYING
    [row] = attempts_of(delivery)
    assert row.error.startswith("connection error") and "connection refused" in row.error


@responses.activate
def test_redirects_are_not_followed(tenant, endpoint):
    responses.add(responses.POST, URL, status=302, headers={"Location": "https://elsewhere.example.com/"})
    delivery = make_delivery(endpoint)

    result = attempt(tenant, delivery)

    assert result.status == WebhookDelivery.Status.RETRYING
    assert result.last_status_code == 302
    assert len(responses.calls) == 1


@responses.activate
def test_response_excerpt_is_at_most_2_kb(tenant, endpoint):
    responses.add(responses.POST, URL, status=400, body="x" * 100_000)
    delivery = make_delivery(endpoint)

    attempt(tenant, delivery)

    [row] = attempts_of(delivery)
    assert len(row.response_excerpt.encode()) == 2048


@responses.activate
def test_gives_up_24_hours_after_creation(tenant, endpoint):
    responses.add(responses.POST, URL, status=502)
    old = make_delivery(endpoint)
    WebhookDelivery.objects.for_tenant(tenant).filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(hours=25))

    result = attempt(tenant, old)

    assert result.status == WebhookDelivery.Status.FAILED
    assert result.next_attempt_at is None
    assert result.attempt_count == 1
    assert len(attempts_of(old)) == 1


@responses.activate
def test_last_retry_that_would_land_past_24_hours_gives_up(tenant, endpoint):
    responses.add(responses.POST, URL, status=500)
    young = make_delivery(endpoint)
    late = make_delivery(endpoint, attempt_count=12, status=WebhookDelivery.Status.RETRYING)
    for delivery in (young, late):
        WebhookDelivery.objects.for_tenant(tenant).filter(pk=delivery.pk).update(
            created_at=timezone.now() - timedelta(hours=21))
        WebhookDeliveryAttemptFactory.create_batch(delivery.attempt_count, delivery=delivery, status_code=500)

    assert attempt(tenant, young).status == WebhookDelivery.Status.RETRYING  # +10 s is inside the window
    assert attempt(tenant, late).status == WebhookDelivery.Status.FAILED  # +4 h is not


@responses.activate
def test_a_settled_delivery_is_not_posted_again(tenant, endpoint):
    responses.add(responses.POST, URL, status=200)
    delivery = make_delivery(endpoint)
    attempt(tenant, delivery)

    again = attempt(tenant, delivery)

    assert again.attempted is False
    assert again.status == WebhookDelivery.Status.SUCCEEDED
    assert len(responses.calls) == 1
    assert len(attempts_of(delivery)) == 1


@responses.activate
def test_a_delivery_that_is_not_due_is_not_posted(tenant, endpoint):
    delivery = make_delivery(endpoint, status=WebhookDelivery.Status.RETRYING,
                             next_attempt_at=timezone.now() + timedelta(minutes=5))

    result = attempt(tenant, delivery)

    assert result.attempted is False
    assert len(responses.calls) == 0


def test_a_concurrent_second_call_finds_nothing_to_claim(tenant, endpoint, monkeypatch):
    delivery = make_delivery(endpoint)
    calls = []
    inner = {}

    def post_event(**kwargs):
        calls.append(kwargs)
        # A second copy of the task runs while the first one's POST is in flight.
        inner["result"] = attempt(tenant, delivery, task_id="copy")
        return sender.PostResult(status_code=200, duration_ms=5)

    monkeypatch.setattr(sender, "post_event", post_event)
    result = attempt(tenant, delivery, task_id="first")

    assert len(calls) == 1
    assert inner["result"].attempted is False
    assert result.status == WebhookDelivery.Status.SUCCEEDED
    assert [row.task_id for row in attempts_of(delivery)] == ["first"]


@responses.activate
def test_a_disabled_endpoint_is_not_posted(tenant, endpoint):
    endpoint.is_active = False
    endpoint.save()
    delivery = make_delivery(endpoint)

    result = attempt(tenant, delivery)

    assert len(responses.calls) == 0
    assert result.status == WebhookDelivery.Status.RETRYING
    [row] = attempts_of(delivery)
    assert "disabled" in row.error


@responses.activate
def test_replay_sends_the_same_event_again(tenant, endpoint, django_capture_on_commit_callbacks):
    responses.add(responses.POST, URL, status=500)
    responses.add(responses.POST, URL, status=200)
    delivery = make_delivery(endpoint)
    WebhookDelivery.objects.for_tenant(tenant).filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(hours=30))
    assert attempt(tenant, delivery).status == WebhookDelivery.Status.FAILED

    with django_capture_on_commit_callbacks(execute=True):
        replayed = services.webhook_delivery_replay(tenant=tenant, delivery_id=delivery.pk)
        assert replayed.status == WebhookDelivery.Status.PENDING
        assert replayed.attempt_count == 0

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert delivery.attempt_count == 1
    assert [row.status_code for row in attempts_of(delivery)] == [500, 200]
    first, second = (call.request for call in responses.calls)
    assert first.body == second.body
    assert first.headers["Parley-Event-Id"] == second.headers["Parley-Event-Id"] == delivery.event_id


@responses.activate
def test_a_replay_gets_a_fresh_24_hour_window(tenant, endpoint, django_capture_on_commit_callbacks):
    responses.add(responses.POST, URL, status=500)
    delivery = make_delivery(endpoint, status=WebhookDelivery.Status.FAILED, attempt_count=3, next_attempt_at=None)
    WebhookDeliveryAttemptFactory.create_batch(3, delivery=delivery, status_code=500)
    WebhookDelivery.objects.for_tenant(tenant).filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(hours=30))

    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_delivery_replay(tenant=tenant, delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.RETRYING
    assert delivery.attempt_count == 1
    make_due(delivery)
    before = timezone.now()
    result = attempt(tenant, delivery)
    assert result.status == WebhookDelivery.Status.RETRYING
    assert_about(result.next_attempt_at, before + timedelta(seconds=30))
    assert len(attempts_of(delivery)) == 5


def test_another_tenants_delivery_is_a_404(tenant, other_tenant, endpoint):
    delivery = make_delivery(endpoint)
    with pytest.raises(Http404):
        services.webhook_delivery_replay(tenant=other_tenant, delivery_id=delivery.pk)
    with pytest.raises(Http404):
        selectors.access_delivery(tenant=other_tenant, delivery_id=delivery.pk)
    with pytest.raises(Http404):
        services.webhook_delivery_replay(tenant=tenant, delivery_id="not-a-number")
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING


@responses.activate
def test_a_task_for_another_tenant_posts_nothing(tenant, other_tenant, endpoint):
    delivery = make_delivery(endpoint)
    with pytest.raises(WebhookDelivery.DoesNotExist):
        attempt(other_tenant, delivery)
    assert tasks.webhook_delivery_send_task(tenant_id=other_tenant.pk, delivery_id=delivery.pk) == "gone"
    assert len(responses.calls) == 0


def test_the_service_needs_a_tenant_in_scope(endpoint):
    from apps.core.scoping import TenantScopeError

    delivery = make_delivery(endpoint)
    with pytest.raises(TenantScopeError):
        services.webhook_delivery_attempt(delivery_id=delivery.pk)


@responses.activate
def test_send_task_schedules_its_own_retry(tenant, endpoint):
    responses.add(responses.POST, URL, status=503)
    delivery = make_delivery(endpoint)

    with mock.patch.object(tasks.webhook_delivery_send_task, "apply_async") as apply_async:
        status = tasks.webhook_delivery_send_task(tenant_id=tenant.pk, delivery_id=delivery.pk)

    assert status == WebhookDelivery.Status.RETRYING
    apply_async.assert_called_once()
    kwargs = apply_async.call_args.kwargs
    assert kwargs["kwargs"] == {"tenant_id": tenant.pk, "delivery_id": delivery.pk}
    assert 5 <= kwargs["countdown"] <= 10


@responses.activate
def test_send_task_does_not_reschedule_a_success(tenant, endpoint):
    responses.add(responses.POST, URL, status=200)
    delivery = make_delivery(endpoint)

    with mock.patch.object(tasks.webhook_delivery_send_task, "apply_async") as apply_async:
        status = tasks.webhook_delivery_send_task(tenant_id=tenant.pk, delivery_id=delivery.pk)

    assert status == WebhookDelivery.Status.SUCCEEDED
    apply_async.assert_not_called()


@responses.activate
def test_eager_send_task_runs_once_per_due_attempt(tenant, endpoint):
    responses.add(responses.POST, URL, status=500)
    delivery = make_delivery(endpoint)

    tasks.webhook_delivery_send_task.delay(tenant_id=tenant.pk, delivery_id=delivery.pk)

    # The retry it queued ran at once (eager) and found the delivery not due yet.
    assert len(responses.calls) == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.RETRYING


@responses.activate
def test_a_multibyte_excerpt_stays_within_2_kb(tenant, endpoint):
    responses.add(responses.POST, URL, status=500, body=("é" * 5000).encode())
    delivery = make_delivery(endpoint)

    attempt(tenant, delivery)

    [row] = attempts_of(delivery)
    assert row.response_excerpt == "é" * 1024
