from __future__ import annotations

import threading
from datetime import timedelta
from unittest import mock

import pytest
import responses
from django.utils import timezone

from apps.core.scoping import tenant_scope
from apps.webhooks import sender, services, tasks
from apps.webhooks.models import WebhookDelivery, WebhookDeliveryAttempt
from tests.factories import TenantFactory, WebhookDeliveryFactory, WebhookEndpointFactory

URL = "https://hooks.example.com/parley"


@pytest.fixture(autouse=True)
def _allow_private(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True


def make_deliveries(endpoint, count, **kwargs):
    kwargs.setdefault("next_attempt_at", timezone.now())
    return [
        WebhookDeliveryFactory(endpoint=endpoint, payload={"id": f"evt_{endpoint.pk}_{i}", "type": "message.sent",
                                                           "data": {"n": i}}, **kwargs)
        for i in range(count)
    ]


def statuses(tenant):
    return dict(WebhookDelivery.objects.for_tenant(tenant).values_list("id", "status"))


@responses.activate
def test_dispatch_posts_due_deliveries_in_batches(tenant):
    good = WebhookEndpointFactory(tenant=tenant, url=URL)
    bad = WebhookEndpointFactory(tenant=tenant, url="https://down.example.com/")
    responses.add(responses.POST, URL, status=200)
    responses.add(responses.POST, "https://down.example.com/", status=500)
    make_deliveries(good, 25)
    make_deliveries(bad, 5)
    later = make_deliveries(good, 3, status=WebhookDelivery.Status.RETRYING,
                            next_attempt_at=timezone.now() + timedelta(minutes=10))
    make_deliveries(good, 2, status=WebhookDelivery.Status.SUCCEEDED)

    with tenant_scope(tenant):
        report = services.webhook_deliveries_dispatch(tenant_id=tenant.pk, task_id="t", batch_size=10)

    assert (report.attempted, report.succeeded, report.retrying, report.failed) == (30, 25, 5, 0)
    assert report.batches == 3
    assert len(responses.calls) == 30
    assert report.next_due_at is not None
    assert report.next_due_at <= timezone.now() + timedelta(seconds=11)
    assert all(statuses(tenant)[d.pk] == WebhookDelivery.Status.RETRYING for d in later)
    assert WebhookDeliveryAttempt.objects.for_tenant(tenant).filter(task_id="t").count() == 30


def test_dispatch_posts_concurrently(tenant, monkeypatch):
    endpoint = WebhookEndpointFactory(tenant=tenant, url=URL)
    make_deliveries(endpoint, 8)
    threads = set()
    barrier = threading.Barrier(4, timeout=5)

    def post_event(**kwargs):
        threads.add(threading.get_ident())
        barrier.wait()  # four POSTs in flight at once, or this times out
        return sender.PostResult(status_code=200)

    monkeypatch.setattr(sender, "post_event", post_event)
    report = services.webhook_deliveries_dispatch(tenant_id=tenant.pk, concurrency=4)

    assert report.succeeded == 8
    assert len(threads) == 4


def test_dispatch_stays_inside_its_tenant(tenant, other_tenant, monkeypatch):
    mine = make_deliveries(WebhookEndpointFactory(tenant=tenant), 2)
    theirs = make_deliveries(WebhookEndpointFactory(tenant=other_tenant), 2)
    monkeypatch.setattr(sender, "post_event", lambda **kwargs: sender.PostResult(status_code=200))

    report = services.webhook_deliveries_dispatch(tenant_id=tenant.pk)

    assert report.succeeded == 2
    assert set(statuses(tenant).values()) == {WebhookDelivery.Status.SUCCEEDED}
    assert {statuses(other_tenant)[d.pk] for d in theirs} == {WebhookDelivery.Status.PENDING}
    assert len(mine) == 2


def test_dispatch_task_rings_again_when_retries_are_left(tenant, monkeypatch):
    endpoint = WebhookEndpointFactory(tenant=tenant)
    make_deliveries(endpoint, 3)
    monkeypatch.setattr(sender, "post_event", lambda **kwargs: sender.PostResult(status_code=500))

    with mock.patch.object(tasks.webhook_deliveries_dispatch_task, "apply_async") as apply_async:
        result = tasks.webhook_deliveries_dispatch_task(tenant_id=tenant.pk)

    assert result == {"attempted": 3, "succeeded": 0, "retrying": 3, "failed": 0}
    apply_async.assert_called_once()
    assert apply_async.call_args.kwargs["kwargs"] == {"tenant_id": tenant.pk}
    assert 5 <= apply_async.call_args.kwargs["countdown"] <= 10


def test_dispatch_task_rings_again_when_its_time_budget_runs_out(tenant, monkeypatch):
    endpoint = WebhookEndpointFactory(tenant=tenant)
    make_deliveries(endpoint, 4)
    monkeypatch.setattr(sender, "post_event", lambda **kwargs: sender.PostResult(status_code=200))
    monkeypatch.setattr(services, "DISPATCH_BATCH_SIZE", 2)
    monkeypatch.setattr(services, "DISPATCH_TIME_BUDGET_SECONDS", 0.0)

    with mock.patch.object(tasks.webhook_deliveries_dispatch_task, "delay") as delay:
        tasks.webhook_deliveries_dispatch_task(tenant_id=tenant.pk)

    delay.assert_called_once_with(tenant_id=tenant.pk)
    assert list(statuses(tenant).values()).count(WebhookDelivery.Status.SUCCEEDED) == 2


def test_sweeper_rings_one_dispatch_per_tenant_with_stale_rows(tenant, other_tenant):
    now = timezone.now()
    stale = now - timedelta(seconds=45)
    make_deliveries(WebhookEndpointFactory(tenant=tenant), 3, next_attempt_at=stale)
    make_deliveries(WebhookEndpointFactory(tenant=tenant), 1, status=WebhookDelivery.Status.RETRYING,
                    next_attempt_at=stale)
    make_deliveries(WebhookEndpointFactory(tenant=other_tenant), 2, status=WebhookDelivery.Status.RETRYING,
                    next_attempt_at=stale)
    quiet = TenantFactory()
    make_deliveries(WebhookEndpointFactory(tenant=quiet), 2, next_attempt_at=now - timedelta(seconds=5))
    make_deliveries(WebhookEndpointFactory(tenant=quiet), 2, status=WebhookDelivery.Status.RETRYING,
                    next_attempt_at=now + timedelta(minutes=5))
    make_deliveries(WebhookEndpointFactory(tenant=quiet), 2, status=WebhookDelivery.Status.SUCCEEDED,
                    next_attempt_at=stale)
    make_deliveries(WebhookEndpointFactory(tenant=quiet), 2, status=WebhookDelivery.Status.FAILED,
                    next_attempt_at=stale)

    with mock.patch.object(tasks.webhook_deliveries_dispatch_task, "delay") as delay:
        assert services.webhook_deliveries_sweep() == {tenant.pk: 4, other_tenant.pk: 2}

    assert sorted(call.kwargs["tenant_id"] for call in delay.call_args_list) == sorted([tenant.pk, other_tenant.pk])


@responses.activate
def test_sweep_task_delivers_what_the_broker_lost(tenant):
    responses.add(responses.POST, URL, status=200)
    lost = make_deliveries(WebhookEndpointFactory(tenant=tenant, url=URL), 3,
                           next_attempt_at=timezone.now() - timedelta(minutes=2))

    assert tasks.webhook_deliveries_sweep_task() == {"tenants": 1, "deliveries": 3}

    assert len(responses.calls) == 3
    assert {statuses(tenant)[d.pk] for d in lost} == {WebhookDelivery.Status.SUCCEEDED}


def test_a_claim_held_by_a_dead_worker_is_swept_after_its_lease(tenant, monkeypatch):
    endpoint = WebhookEndpointFactory(tenant=tenant)
    [delivery] = make_deliveries(endpoint, 1)

    def killed(**kwargs):
        raise KeyboardInterrupt  # the worker dies mid-POST

    monkeypatch.setattr(sender, "post_event", killed)
    with pytest.raises(KeyboardInterrupt), tenant_scope(tenant):
        services.webhook_delivery_attempt(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.next_attempt_at > timezone.now() + timedelta(minutes=4)  # leased
    with mock.patch.object(tasks.webhook_deliveries_dispatch_task, "delay"):
        assert services.webhook_deliveries_sweep() == {}
        WebhookDelivery.objects.for_tenant(tenant).filter(pk=delivery.pk).update(
            next_attempt_at=timezone.now() - timedelta(seconds=31))  # the lease ran out
        assert services.webhook_deliveries_sweep() == {tenant.pk: 1}


def test_the_sweeper_is_scheduled(settings):
    entries = [entry for entry in settings.CELERY_BEAT_SCHEDULE.values()
               if entry["task"] == "apps.webhooks.tasks.webhook_deliveries_sweep_task"]
    assert len(entries) == 1
    assert entries[0]["schedule"] <= 30
