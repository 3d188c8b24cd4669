"""The intake's request path stays at verify + INSERT: routes and app secrets are cached per
process, and every change to a number drops them at once. Processing is rung like a doorbell:
a burst of callbacks publishes one task, and a task gives its slot back only after a last look."""

from __future__ import annotations

import hashlib
import json
import time
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.conversations.models import Message
from apps.phone_numbers.models import PhoneNumber
from apps.phone_numbers.numbercache import numbers_invalidate
from apps.phone_numbers.services import phone_number_set_enabled, phone_number_update
from apps.providers import services
from apps.providers.models import WebhookEvent
from tests.factories import MessageFactory, PhoneNumberFactory

from .test_intake import SECRET, post_meta, sign, status_payload


@pytest.fixture(autouse=True)
def free_bells():
    keys = [services._bell_key(slot) for slot in range(services.WEBHOOK_PROCESSORS)]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)


@pytest.fixture
def meta_number(db):
    return PhoneNumberFactory(phone_number_id="777001", waba_id="WABA", verify_token="vt-123",
                              credentials={"access_token": "t", "app_secret": SECRET})


def test_a_known_number_costs_one_insert_per_post(client, meta_number, django_assert_num_queries):
    with mock.patch("apps.providers.tasks.webhook_events_process_pending_task.delay"):
        assert post_meta(client, status_payload("777001", "wamid.1")).status_code == 200
        with django_assert_num_queries(1):  # the INSERT; no lookup, no transaction of its own
            assert post_meta(client, status_payload("777001", "wamid.2")).status_code == 200
    assert WebhookEvent.all_tenants.filter(phone_number=meta_number).count() == 2


def test_a_replaced_app_secret_applies_to_the_next_post(client, meta_number):
    with mock.patch("apps.providers.tasks.webhook_events_process_pending_task.delay"):
        assert post_meta(client, status_payload("777001", "wamid.1")).status_code == 200  # cached now
        phone_number_update(tenant=meta_number.tenant, phone_number=meta_number,
                            secrets_to_replace={"app_secret": "rotated-secret"})
        assert post_meta(client, status_payload("777001", "wamid.2")).status_code == 403
        assert post_meta(client, status_payload("777001", "wamid.3"), secret="rotated-secret").status_code == 200
    assert WebhookEvent.all_tenants.count() == 2


def test_a_disabled_or_deleted_number_is_dropped_at_once(client, meta_number):
    with mock.patch("apps.providers.tasks.webhook_events_process_pending_task.delay"):
        assert post_meta(client, status_payload("777001", "wamid.1")).status_code == 200
        phone_number_set_enabled(tenant=meta_number.tenant, phone_number=meta_number, enabled=False)
        assert post_meta(client, status_payload("777001", "wamid.2")).status_code == 200  # acknowledged ...
        assert WebhookEvent.all_tenants.count() == 1  # ... and dropped
        phone_number_set_enabled(tenant=meta_number.tenant, phone_number=meta_number, enabled=True)
        assert post_meta(client, status_payload("777001", "wamid.3")).status_code == 200
        assert WebhookEvent.all_tenants.count() == 2
        meta_number.delete()
        assert post_meta(client, status_payload("777001", "wamid.4")).status_code == 200
    assert WebhookEvent.all_tenants.count() == 2


def test_storing_a_callback_checks_no_foreign_key_in_the_database(client, meta_number):
    """A deferred foreign-key check would lock the tenant's and the number's rows (FOR KEY
    SHARE) at the commit of every acknowledgement, queueing concurrent ones on those two rows.
    Deleting a number or a workspace still reaches its callbacks, through Django."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, WebhookEvent._meta.db_table)
    assert [name for name, constraint in constraints.items() if constraint["foreign_key"]] == []
    with mock.patch("apps.providers.tasks.webhook_events_process_pending_task.delay"):
        assert post_meta(client, status_payload("777001", "wamid.1")).status_code == 200
    tenant = meta_number.tenant
    meta_number.delete()
    event = WebhookEvent.all_tenants.get()
    assert (event.tenant_id, event.phone_number_id) == (tenant.pk, None)
    tenant.delete()
    assert not WebhookEvent.all_tenants.exists()


def test_a_stored_callback_reads_back_through_the_orm_as_it_came(meta_number):
    """The INSERT hands the driver plain values, not each field's get_db_prep_save: every
    column must still read back through the ORM as the fields would have written it."""
    route = services.NumberRoute(phone_number_id=meta_number.pk, tenant_id=meta_number.tenant_id, app_secret=SECRET)
    raw = json.dumps(status_payload("777001", "wamid.RB")).encode() + b"\x00\xff"  # any bytes, kept as they are
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=ab", "Cookie": "not kept"}
    before = timezone.now()
    with mock.patch("apps.providers.tasks.webhook_events_process_pending_task.delay"):
        event_id = services.webhook_event_record(provider="meta_cloud", body=raw, headers=headers, route=route)
        assert services.webhook_event_record(provider="meta_cloud", body=raw, headers=headers, route=route) is None
    event = WebhookEvent.all_tenants.get()
    assert event.pk == event_id
    assert bytes(event.body) == raw and event.body_sha256 == hashlib.sha256(raw).hexdigest()
    assert event.headers == {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=ab"}
    assert (event.tenant_id, event.phone_number_id, event.provider) == (meta_number.tenant_id, meta_number.pk,
                                                                        "meta_cloud")
    assert (event.attempts, event.error, event.processed_at) == (0, "", None)
    assert before <= event.received_at == event.created_at == event.updated_at <= timezone.now()
    # Stored as a JSON document the database can query, and a time it can compare.
    assert WebhookEvent.all_tenants.filter(received_at__gte=before, headers__has_key="X-Hub-Signature-256").count() == 1


def test_a_callback_whose_number_is_gone_is_applied_as_unrouted(client, meta_number):
    """A callback stored while its number was being deleted (nothing in the database refuses
    it now) is marked processed, its route key logged, instead of failing for ever."""
    with mock.patch("apps.providers.tasks.webhook_events_process_pending_task.delay"):
        assert post_meta(client, status_payload("777001", "wamid.1")).status_code == 200
    with connection.cursor() as cursor:  # as the concurrent delete left it: no SET NULL ran
        cursor.execute(f"DELETE FROM {PhoneNumber._meta.db_table} WHERE id = %s", [meta_number.pk])
    numbers_invalidate()
    report = services.webhook_events_process_pending(slot=0)
    assert report.unrouted == ["777001"]
    event = WebhookEvent.all_tenants.get()
    assert event.processed_at is not None and event.error == ""


def test_a_new_number_is_routed_at_once_after_a_miss(client, db):
    assert post_meta(client, status_payload("777002")).status_code == 200  # unknown: cached as such
    PhoneNumberFactory(phone_number_id="777002", credentials={"app_secret": SECRET})
    with mock.patch("apps.providers.tasks.webhook_events_process_pending_task.delay"):
        assert post_meta(client, status_payload("777002")).status_code == 200
    assert WebhookEvent.all_tenants.count() == 1


def test_gupshup_tokens_are_cached_and_forgotten_with_the_number(client, db):
    number = PhoneNumberFactory(provider="gupshup", phone_number_id="", webhook_token="tok-1")
    body = json.dumps({"app": "x", "type": "message-event", "payload": {}}).encode()
    with mock.patch("apps.providers.tasks.webhook_events_process_pending_task.delay"):
        assert client.post("/webhooks/gupshup/tok-1/", body, content_type="application/json").status_code == 200
        number.webhook_token = "tok-2"
        number.save()
        assert client.post("/webhooks/gupshup/tok-1/", body + b" ", content_type="application/json").status_code == 403
        assert client.post("/webhooks/gupshup/tok-2/", body + b" ", content_type="application/json").status_code == 200


def test_a_burst_of_callbacks_publishes_one_task(client, meta_number, django_capture_on_commit_callbacks):
    with mock.patch("apps.providers.tasks.webhook_events_process_pending_task.delay") as delay, \
            django_capture_on_commit_callbacks(execute=True):
        for i in range(20):
            assert post_meta(client, status_payload("777001", f"wamid.{i}")).status_code == 200
    delay.assert_called_once_with(slot=0)  # the task has not started: the others found the bell held
    assert WebhookEvent.all_tenants.count() == 20


def test_a_task_gives_its_slot_back_only_when_nothing_is_left(meta_number, django_capture_on_commit_callbacks):
    message = MessageFactory(conversation__tenant=meta_number.tenant, conversation__phone_number=meta_number,
                             status="accepted", provider_message_id="wamid.A")
    raw = json.dumps(status_payload("777001", "wamid.A", "read")).encode()
    route = services.NumberRoute(phone_number_id=meta_number.pk, tenant_id=meta_number.tenant_id, app_secret=SECRET)
    # Stored while slot 0 is held by a running task: no new task is rung ...
    cache.add(services._bell_key(0), 1)
    with mock.patch("apps.providers.tasks.webhook_events_process_pending_task.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            services.webhook_event_record(provider="meta_cloud", body=raw,
                                          headers={"X-Hub-Signature-256": sign(raw)}, route=route)
        assert len(callbacks) == 1
        delay.assert_not_called()
        # ... and the running task applies it before it lets go of the slot.
        report = services.webhook_events_process_pending(slot=0)
    assert report.statuses_applied == 1
    assert Message.objects.for_tenant(meta_number.tenant).get(pk=message.pk).status == "read"
    assert cache.get(services._bell_key(0)) is None
    assert not WebhookEvent.all_tenants.filter(processed_at__isnull=True).exists()


def test_a_backlog_rings_a_helper(meta_number, monkeypatch):
    monkeypatch.setattr(services, "PENDING_BATCH", 2)
    route = services.NumberRoute(phone_number_id=meta_number.pk, tenant_id=meta_number.tenant_id, app_secret=SECRET)
    with mock.patch("apps.providers.tasks.webhook_events_process_pending_task.delay") as delay:
        for i in range(5):
            raw = json.dumps(status_payload("777001", f"wamid.{i}")).encode()
            services.webhook_event_record(provider="meta_cloud", body=raw, headers={}, route=route)
        cache.set(services._bell_key(0), 1)
        services.webhook_events_process_pending(slot=0)
    assert mock.call(slot=1) in delay.call_args_list
    assert not WebhookEvent.all_tenants.filter(processed_at__isnull=True).exists()


def test_the_bell_of_a_task_that_died_expires(client, meta_number, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(services, "WEBHOOK_BELL_TTL_SECONDS", 0.5)
    with mock.patch("apps.providers.tasks.webhook_events_process_pending_task.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            assert post_meta(client, status_payload("777001", "wamid.1")).status_code == 200
        delay.assert_called_once_with(slot=0)  # that task never runs (its worker died)
        time.sleep(0.6)
        with django_capture_on_commit_callbacks(execute=True):
            assert post_meta(client, status_payload("777001", "wamid.2")).status_code == 200
    assert delay.call_count == 2  # the next callback rang again


def test_the_sweeper_applies_stored_callbacks_before_resending(meta_number, settings,
                                                                django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from apps.conversations.services import messages_sweep

    # The POST went out, its answer was lost, and the status webhook that adopts the row is stored
    # but not yet applied (its task died): the row must be adopted, never sent again.
    orphan = MessageFactory(conversation__tenant=meta_number.tenant, conversation__phone_number=meta_number,
                            status="sending", provider_message_id=None,
                            sending_at=timezone.now() - timedelta(seconds=settings.PARLEY_RECONCILE_WINDOW_SECONDS + 5))
    payload = status_payload("777001", "wamid.ADOPT", "sent")
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] = str(orphan.pk)
    raw = json.dumps(payload).encode()
    route = services.NumberRoute(phone_number_id=meta_number.pk, tenant_id=meta_number.tenant_id, app_secret=SECRET)
    cache.add(services._bell_key(0), 1)  # held by the task that died
    services.webhook_event_record(provider="meta_cloud", body=raw, headers={}, route=route)
    cache.delete(services._bell_key(0))  # ... until its key expired
    with django_capture_on_commit_callbacks(execute=True):
        report = messages_sweep()
    assert report.requeued_unknown == 0
    orphan.refresh_from_db()
    assert (orphan.status, orphan.provider_message_id) == ("sent", "wamid.ADOPT")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("in_a_transaction", [False, True])
def test_a_batch_commits_without_waiting_for_the_disk_and_only_that_batch(meta_number, in_a_transaction):
    """The stored callback is the durable record: applying it may commit asynchronously (a
    batch lost in a crash stays unprocessed and is applied again), nothing else may -- not a
    caller's transaction that the batch runs in."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    MessageFactory(conversation__tenant=meta_number.tenant, conversation__phone_number=meta_number,
                   status="accepted", provider_message_id="wamid.S")
    raw = json.dumps(status_payload("777001", "wamid.S", "read")).encode()
    route = services.NumberRoute(phone_number_id=meta_number.pk, tenant_id=meta_number.tenant_id, app_secret=SECRET)
    with mock.patch("apps.providers.tasks.webhook_events_process_pending_task.delay"):
        services.webhook_event_record(provider="meta_cloud", body=raw, headers={}, route=route)
        with CaptureQueriesContext(connection) as captured:
            if in_a_transaction:
                with transaction.atomic():
                    report = services.webhook_events_process_pending(slot=0)
            else:
                report = services.webhook_events_process_pending(slot=0)
    assert report.statuses_applied == 1
    sql = [q["sql"] for q in captured.captured_queries]
    if in_a_transaction:
        assert "SET LOCAL synchronous_commit TO OFF" not in sql
    else:
        setting = sql.index("SET LOCAL synchronous_commit TO OFF")
        assert any(s.startswith('UPDATE "conversations_message"') for s in sql[setting:])
    with connection.cursor() as cursor:  # SET LOCAL: gone with the batch's transaction
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


def _stored(number, *, processed: bool = False, attempts: int = 0) -> WebhookEvent:
    body = json.dumps(status_payload(number.phone_number_id, f"wamid.{time.time_ns()}")).encode()
    return WebhookEvent.all_tenants.create(
        tenant=number.tenant, phone_number=number, provider="meta_cloud", body=body,
        body_sha256=hashlib.sha256(body).hexdigest(), attempts=attempts,
        processed_at=timezone.now() if processed else None)


def test_the_tenants_with_callbacks_to_apply_are_each_found_once(db):
    numbers = [PhoneNumberFactory() for _ in range(4)]
    for number in numbers[:3]:
        _stored(number)
        _stored(number)
    _stored(numbers[1], processed=True)
    _stored(numbers[3], processed=True)  # everything applied: not listed
    _stored(numbers[2], attempts=services.MAX_PROCESS_ATTEMPTS)  # given up on: its tenant still has one
    given_up = PhoneNumberFactory()
    _stored(given_up, attempts=services.MAX_PROCESS_ATTEMPTS)  # only given-up callbacks: not listed
    WebhookEvent.all_tenants.create(provider="meta_cloud", body=b"{}", body_sha256="unrouted")  # no tenant
    expected = sorted(n.tenant_id for n in numbers[:3])
    assert services._tenants_with_pending() == expected
    assert services._tenants_with_pending(limit=2) == expected[:2]


def test_a_caught_up_task_gathers_the_next_callbacks_into_one_batch(meta_number, settings, monkeypatch):
    """After a round that was not full, the task waits PARLEY_WEBHOOK_GATHER_SECONDS holding its
    slot: callbacks stored meanwhile ring no task, and the next round applies them together."""
    settings.PARLEY_WEBHOOK_GATHER_SECONDS = 0.05
    route = services.NumberRoute(phone_number_id=meta_number.pk, tenant_id=meta_number.tenant_id, app_secret=SECRET)

    def record(i: int) -> None:
        raw = json.dumps(status_payload("777001", f"wamid.G{i}")).encode()
        services.webhook_event_record(provider="meta_cloud", body=raw, headers={}, route=route)

    record(0)
    batches, pauses = [], []
    real_batch = services._process_tenant_batch

    def counting_batch(tenant_id, report):
        applied = real_batch(tenant_id, report)
        if applied:
            batches.append(applied)
        return applied

    def pause(seconds):
        pauses.append(seconds)
        if len(pauses) == 1:  # three callbacks arrive while the task waits
            for i in range(1, 4):
                record(i)

    monkeypatch.setattr(services, "_process_tenant_batch", counting_batch)
    monkeypatch.setattr(services.time, "sleep", pause)
    with mock.patch("apps.providers.tasks.webhook_events_process_pending_task.delay") as delay:
        cache.set(services._bell_key(0), 1)  # this task's slot
        report = services.webhook_events_process_pending(slot=0)
    delay.assert_not_called()  # the slot was held all along: the three rang nobody
    assert batches == [1, 3]
    assert pauses == [0.05, 0.05]  # after each round that was not full
    assert report.statuses_applied == 0  # the statuses match no message; each event is still processed
    assert not WebhookEvent.all_tenants.filter(processed_at__isnull=True).exists()
    assert cache.get(services._bell_key(0)) is None


def test_the_pause_never_outlasts_the_slot_key(meta_number, settings, monkeypatch):
    settings.PARLEY_WEBHOOK_GATHER_SECONDS = 10.0
    _stored(meta_number)
    pauses = []
    monkeypatch.setattr(services.time, "sleep", pauses.append)
    cache.set(services._bell_key(0), 1)
    services.webhook_events_process_pending(slot=0)
    assert pauses == [services.WEBHOOK_BELL_TTL_SECONDS / 2]


def test_a_full_round_goes_on_without_a_pause(meta_number, settings, monkeypatch):
    settings.PARLEY_WEBHOOK_GATHER_SECONDS = 0.05
    monkeypatch.setattr(services, "PENDING_BATCH", 2)
    monkeypatch.setattr(services, "WEBHOOK_PROCESSORS", 1)  # no helper
    for _ in range(4):
        _stored(meta_number)
    pauses = []
    monkeypatch.setattr(services.time, "sleep", pauses.append)
    cache.set(services._bell_key(0), 1)
    services.webhook_events_process_pending(slot=0)
    assert pauses == []  # full, full, then nothing left: no round was a caught-up one
    assert not WebhookEvent.all_tenants.filter(processed_at__isnull=True).exists()


def test_the_pending_callbacks_are_read_through_their_index(meta_number):
    """Both reads of the processor go through the pending index; the tenant list by plain index
    scans (a bitmap scan never marks the entries of applied callbacks dead, and without a
    VACUUM went on visiting their rows)."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's plans")
    for _ in range(3):
        _stored(meta_number)
    now = timezone.now()  # a table worth an index: 3 callbacks to apply among 3,000 applied
    WebhookEvent.all_tenants.bulk_create(
        WebhookEvent(tenant=meta_number.tenant, phone_number=meta_number, provider="meta_cloud", body=b"{}",
                     body_sha256=f"applied-{i}", processed_at=now) for i in range(3000))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE providers_webhookevent")
    plans = []
    with CaptureQueriesContext(connection) as queries:
        assert services._tenants_with_pending() == [meta_number.tenant_id]
        assert len(services._claim_batch(meta_number.tenant_id)) == 3
    for query in queries.captured_queries:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + query["sql"])
            plan = "\n".join(row[0] for row in cursor.fetchall())
        plans.append(plan)
        assert "webhook_event_pending_idx" in plan, plan
        assert "Seq Scan" not in plan, plan
    assert len(plans) == 2
    assert "Bitmap" not in plans[0], plans[0]
