"""Provider webhook intake over HTTP: verify, store raw, acknowledge; then processing.
Every fixture body is posted, correctly signed, through the real view and must be stored,
parsed and applied with no error."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.conversations.models import Message
from apps.core.scoping import tenant_scope
from apps.providers.models import WebhookEvent
from apps.providers.services import webhook_events_sweep
from apps.providers.webhooks import meta_route_keys
from tests.factories import MessageFactory, PhoneNumberFactory, TenantFactory

from .test_parsers_meta import body, fixture_cases

SECRET = "app-secret"


def sign(raw: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def post_meta(client, payload, *, secret=SECRET, signature=None):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post("/webhooks/meta/", raw, content_type="application/json",
                       HTTP_X_HUB_SIGNATURE_256=signature if signature is not None else sign(raw, secret))


def status_payload(phone_number_id, wamid="wamid.A", status="delivered"):
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001", "phone_number_id": phone_number_id},
        "statuses": [{"id": wamid, "status": status, "timestamp": "1750030073", "recipient_id": "14155550100"}]}}]}]}


@pytest.fixture
def meta_number(db):
    return PhoneNumberFactory(phone_number_id="777001", waba_id="WABA", verify_token="vt-123",
                              credentials={"access_token": "t", "app_secret": SECRET})


def test_verification_handshake(client, meta_number):
    ok = client.get("/webhooks/meta/", {"hub.mode": "subscribe", "hub.verify_token": "vt-123", "hub.challenge": "42"})
    assert ok.status_code == 200 and ok.content == b"42"
    bad = client.get("/webhooks/meta/", {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"})
    assert bad.status_code == 403


def test_a_signed_status_is_stored_acknowledged_and_applied(client, meta_number, django_capture_on_commit_callbacks):
    message = MessageFactory(conversation__tenant=meta_number.tenant, conversation__phone_number=meta_number,
                             status="accepted", provider_message_id="wamid.A")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_meta(client, status_payload("777001"))
    assert response.status_code == 200
    event = WebhookEvent.all_tenants.get()
    assert event.tenant_id == meta_number.tenant_id and event.processed_at and event.error == ""
    assert Message.objects.for_tenant(meta_number.tenant).get(pk=message.pk).status == "delivered"
    meta_number.refresh_from_db()
    assert meta_number.last_webhook_at is not None


def test_bad_or_missing_signature_is_403_and_stores_nothing(client, meta_number):
    assert post_meta(client, status_payload("777001"), secret="wrong").status_code == 403
    assert post_meta(client, status_payload("777001"), signature="").status_code == 403
    assert post_meta(client, status_payload("777001"), signature="sha1=abc").status_code == 403
    assert not WebhookEvent.all_tenants.exists()


def test_malformed_json_is_400(client, meta_number):
    assert post_meta(client, b"{not json").status_code == 400
    assert post_meta(client, b"[1, 2]").status_code == 400
    assert not WebhookEvent.all_tenants.exists()


def test_unknown_numbers_are_acknowledged_and_not_stored(client, meta_number):
    assert post_meta(client, status_payload("999999")).status_code == 200
    assert not WebhookEvent.all_tenants.exists()


def test_retried_bodies_are_stored_once(client, meta_number, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert post_meta(client, status_payload("777001")).status_code == 200
        assert post_meta(client, status_payload("777001")).status_code == 200
    assert WebhookEvent.all_tenants.count() == 1 and len(callbacks) == 1


def test_a_failing_event_keeps_its_error_and_the_sweeper_retries_it(client, meta_number, settings):
    raw = json.dumps(status_payload("777001")).encode()
    event = WebhookEvent.all_tenants.create(tenant=meta_number.tenant, phone_number=meta_number, provider="meta_cloud",
                                            body=b"{broken", body_sha256="x" * 64)
    from apps.providers.services import webhook_event_process

    with pytest.raises(json.JSONDecodeError):
        webhook_event_process(event_id=event.pk)
    event.refresh_from_db()
    assert event.processed_at is None and event.attempts == 1 and "JSONDecodeError" in event.error
    event.body = raw
    event.save()
    WebhookEvent.all_tenants.filter(pk=event.pk).update(
        received_at=timezone.now() - timedelta(seconds=settings.PARLEY_WEBHOOK_EVENT_STALE_SECONDS + 1))
    webhook_events_sweep()  # rings for it (eager in tests: processed right away)
    event.refresh_from_db()
    assert event.processed_at is not None and event.error == ""


def test_the_sweeper_rings_again_for_callbacks_a_dead_worker_left_unrung(meta_number):
    """A worker killed while it held a processing slot leaves the slot's key alive for a few
    seconds; callbacks stored meanwhile ring nobody. The sweeper rings for them once the key
    has lapsed, without waiting for the per-event stale window."""
    from django.core.cache import cache

    from apps.providers.services import WEBHOOK_BELL_TTL_SECONDS, _bell_key

    message = MessageFactory(conversation__tenant=meta_number.tenant, conversation__phone_number=meta_number,
                             status="accepted", provider_message_id="wamid.A")
    raw = json.dumps(status_payload("777001")).encode()
    event = WebhookEvent.all_tenants.create(tenant=meta_number.tenant, phone_number=meta_number, provider="meta_cloud",
                                            body=raw, body_sha256=hashlib.sha256(raw).hexdigest())
    WebhookEvent.all_tenants.filter(pk=event.pk).update(
        received_at=timezone.now() - timedelta(seconds=WEBHOOK_BELL_TTL_SECONDS + 1))
    cache.set(_bell_key(0), 1, timeout=60)  # the dead worker's slot, not yet expired
    try:
        assert webhook_events_sweep() == 0
        event.refresh_from_db()
        assert event.processed_at is None  # a task is believed at work: nothing rung twice
        cache.delete(_bell_key(0))  # the key lapses
        assert webhook_events_sweep() == 0  # rung, not re-enqueued one by one
    finally:
        cache.delete(_bell_key(0))
    event.refresh_from_db()
    assert event.processed_at is not None and event.error == ""
    assert Message.objects.for_tenant(meta_number.tenant).get(pk=message.pk).status == "delivered"


def test_another_tenants_number_cannot_be_reached_through_a_shared_payload(client, meta_number,
                                                                             django_capture_on_commit_callbacks):
    other = PhoneNumberFactory(tenant=TenantFactory(), phone_number_id="888001",
                               credentials={"app_secret": "other-secret"})
    MessageFactory(conversation__tenant=other.tenant, conversation__phone_number=other, status="accepted",
                   provider_message_id="wamid.B")
    payload = status_payload("777001")
    payload["entry"][0]["changes"].append(status_payload("888001", "wamid.B")["entry"][0]["changes"][0])
    with django_capture_on_commit_callbacks(execute=True):
        assert post_meta(client, payload).status_code == 200  # signed with meta_number's secret
    assert Message.objects.for_tenant(other.tenant).get(provider_message_id="wamid.B").status == "accepted"


META_CASES = [c for c in fixture_cases() if c[0].startswith("meta/")]


@pytest.mark.parametrize(("relative", "case"), META_CASES, ids=[f"{r}#{c}" if c else r for r, c in META_CASES])
def test_every_meta_fixture_is_stored_parsed_and_applied(client, db, relative, case, django_capture_on_commit_callbacks):
    payload = body(relative, case)
    keys = meta_route_keys(payload)
    phone_ids = sorted(k for k in keys if not k.startswith("waba:"))
    wabas = sorted(k.removeprefix("waba:") for k in keys if k.startswith("waba:"))
    if not phone_ids and not wabas:
        pytest.skip("no routable id in this payload")
    tenant = TenantFactory()
    for index, phone_id in enumerate(phone_ids or ["waba-level-only"]):
        PhoneNumberFactory(tenant=tenant, phone_number_id=phone_id, waba_id=wabas[0] if wabas else "WABA",
                           credentials={"app_secret": SECRET}, display_number=f"1555111{index:04d}")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_meta(client, payload)
    assert response.status_code == 200
    event = WebhookEvent.all_tenants.get()
    assert event.error == "" and event.processed_at is not None, event.error
    with tenant_scope(tenant):
        inbound = [m for m in Message.objects.all() if m.direction == "inbound"]
    # Every inbound message in the payload became a row.
    from apps.providers.events import InboundMessage
    from apps.providers.webhooks import parse_meta

    expected = {e.provider_message_id for e in parse_meta(payload) if isinstance(e, InboundMessage)}
    assert {m.provider_message_id for m in inbound} == expected


GUPSHUP_CASES = [c for c in fixture_cases() if c[0].startswith("gupshup/")]


@pytest.mark.parametrize(("relative", "case"), GUPSHUP_CASES, ids=[r for r, _ in GUPSHUP_CASES])
def test_every_gupshup_fixture_is_stored_parsed_and_applied(client, db, relative, case,
                                                              django_capture_on_commit_callbacks):
    payload = body(relative, case)
    partner = "entry" in payload
    number = PhoneNumberFactory(provider="gupshup_partner" if partner else "gupshup", phone_number_id="",
                                credentials={"api_key": "k"})
    path = f"/webhooks/{'gupshup-partner' if partner else 'gupshup'}/{number.webhook_token}/"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(path, json.dumps(payload), content_type="application/json")
    assert response.status_code == 200
    event = WebhookEvent.all_tenants.get()
    assert event.error == "" and event.processed_at is not None, event.error


def test_gupshup_needs_the_right_token(client, db):
    number = PhoneNumberFactory(provider="gupshup", phone_number_id="")
    assert client.post("/webhooks/gupshup/wrong/", "{}", content_type="application/json").status_code == 403
    assert client.post(f"/webhooks/gupshup/{number.webhook_token}/", "nope",
                       content_type="application/json").status_code == 400
    # A Gupshup classic token does not open the partner endpoint.
    assert client.post(f"/webhooks/gupshup-partner/{number.webhook_token}/", "{}",
                       content_type="application/json").status_code == 403
    assert not WebhookEvent.all_tenants.exists()
