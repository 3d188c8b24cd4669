"""The pipeline with real parts: a Celery worker process, the Cloud API emulator over HTTP,
Parley's web app receiving the emulator's signed webhooks, and a tenant endpoint receiving
Parley's signed events. Runs on whatever database and broker the suite is configured with
(PostgreSQL + Redis in CI's first pass)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from apps.conversations.models import Conversation, Message, MessageAttempt
from apps.conversations.services import message_send, messages_sweep, ring_dispatch
from apps.core.scoping import tenant_scope
from apps.message_templates.models import MessageTemplate
from apps.phone_numbers.services import phone_number_create
from apps.providers.services import webhook_events_sweep
from apps.tenants.services import tenant_create
from apps.webhooks import signing
from apps.webhooks.services import webhook_endpoint_create

from .harness import emulator, wait_until, worker

pytestmark = pytest.mark.e2e

SECRET = "e2e-app-secret"
PNID = "900100200300"
CUSTOMER = "14155550123"


def setup_workspace(emulator_url: str):
    tenant = tenant_create(slug="e2e", name="E2E", owner_email="owner@e2e.test", owner_password="pw")
    number = phone_number_create(tenant=tenant, provider="meta_cloud", display_number="15550009999",
                                 phone_number_id=PNID, waba_id="emulator-waba", access_token="token",
                                 app_secret=SECRET, graph_api_url=emulator_url, messages_per_second=200)
    MessageTemplate.objects.for_tenant(tenant).create(
        tenant=tenant, phone_number=number, waba_id="emulator-waba", name="hello_world", language="en_US",
        status=MessageTemplate.Status.APPROVED,
        components=[{"type": "BODY", "text": "Welcome and congratulations!!"}])
    return tenant, number


def test_send_statuses_inbound_window_and_signed_customer_webhooks(e2e_env, e2e_logs, live_server, receiver):
    emu = emulator(e2e_env, e2e_logs, webhook_url=f"{live_server.url}/webhooks/meta/", app_secret=SECRET,
                   args=["--sent-delay", "0.1", "--delivered-delay", "0.3", "--read-delay", "0.6", "--jitter", "0",
                         "--flush-interval", "0.05", "--seed", "1"])
    work = worker(e2e_env, e2e_logs)
    try:
        tenant, number = setup_workspace(emu.url)
        _, secret = webhook_endpoint_create(tenant=tenant, url=receiver.url)

        # A customer writes: the signed webhook is stored, a worker applies it, the window opens.
        emu.control("POST", "inbound", json={"phone_number_id": PNID, "from": CUSTOMER, "name": "Ada", "text": "Hi!"})
        conversation = wait_until(
            lambda: Conversation.objects.for_tenant(tenant).filter(
                contact__wa_id=CUSTOMER, window_expires_at__gt=timezone.now()).first(),
            what="the inbound message to open the window")
        inbound = Message.objects.for_tenant(tenant).get(conversation=conversation, direction="inbound")
        assert inbound.text_preview == "Hi!" and conversation.contact.profile_name == "Ada"

        # A reply goes out through the worker and climbs the status ladder from real webhooks.
        with tenant_scope(tenant), transaction.atomic():
            reply = message_send(tenant=tenant, to=CUSTOMER, type="text", content={"body": "Hello Ada!"})
        reply = wait_until(lambda: Message.objects.for_tenant(tenant).filter(pk=reply.pk, status="read").first(),
                           what="the reply to be read", timeout=40)
        assert reply.provider_message_id.startswith("wamid.")
        assert reply.accepted_at and reply.sent_at and reply.delivered_at and reply.read_at
        assert MessageAttempt.objects.for_tenant(tenant).filter(message=reply).count() == 1

        # The emulator received Meta's exact body, with the number's token and our callback data.
        sent = [m for m in emu.control("GET", "messages")["messages"]
                if m["body"].get("biz_opaque_callback_data") == str(reply.pk)]
        assert len(sent) == 1
        assert sent[0]["body"] == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": CUSTOMER,
                                   "type": "text", "text": {"body": "Hello Ada!"},
                                   "biz_opaque_callback_data": str(reply.pk)}

        # A template reaches a contact with no open window.
        with tenant_scope(tenant), transaction.atomic():
            template = message_send(tenant=tenant, to="14155550999", type="template",
                                    content={"name": "hello_world", "language": {"code": "en_US"}})
        wait_until(lambda: Message.objects.for_tenant(tenant).filter(pk=template.pk, status="read").exists(),
                   what="the template to be read", timeout=40)

        # The tenant's endpoint got every event, each signed with its secret.
        wanted = {"message.received", "conversation.opened", "message.accepted", "message.sent",
                  "message.delivered", "message.read"}
        wait_until(lambda: wanted <= set(receiver.types()), what=f"events {wanted}", timeout=40)
        for post in receiver.posts:
            assert signing.verify(secret, post["body"], post["headers"]["Parley-Signature"])
        assert len({p["json"]["id"] for p in receiver.posts}) == len(receiver.posts)
    finally:
        work.stop()
        emu.process.stop()


def test_worker_killed_mid_send_sends_every_message_exactly_once(e2e_env, e2e_logs, live_server):
    emu = emulator(e2e_env, e2e_logs, webhook_url=f"{live_server.url}/webhooks/meta/", app_secret=SECRET,
                   args=["--latency-ms", "150", "--sent-delay", "0.2", "--delivered-delay", "0.5", "--read-delay",
                         "1", "--jitter", "0", "--flush-interval", "0.05", "--seed", "2"])
    total = 300
    tenant, number = setup_workspace(emu.url)
    with tenant_scope(tenant), transaction.atomic():
        ids = [message_send(tenant=tenant, to=f"1415556{i:04d}", type="template", dispatch=False,
                            content={"name": "hello_world", "language": {"code": "en_US"}}).pk for i in range(total)]
        ring_dispatch(tenant_id=tenant.pk, phone_number_id=number.pk, bells=2)
    messages = Message.objects.for_tenant(tenant).filter(pk__in=ids)
    first = worker(e2e_env, e2e_logs, name="first")
    try:
        # Kill the worker while POSTs are in flight (the emulator answers after 150 ms): rows
        # are left in `sending` with their answers lost.
        wait_until(lambda: messages.filter(status__in=["accepted", "sent", "delivered", "read"]).count() >= 40
                   and messages.filter(status="sending").exists(), what="sends in flight", timeout=40, interval=0.01)
        first.kill()
        in_flight = messages.filter(status="sending").count()
        assert in_flight > 0, "the kill must catch rows in flight for this test to mean anything"
    finally:
        first.stop()
    second = worker(e2e_env, e2e_logs, name="second")
    try:
        left: dict[str, int] = {}

        def settled() -> bool:
            # What beat does every few seconds. The killed worker may have held a webhook
            # processing slot: callbacks stored while its key lives ring nobody until the
            # webhook sweeper rings again.
            messages_sweep()
            webhook_events_sweep()
            left.clear()
            left.update(messages.exclude(status__in=["sent", "delivered", "read"]).values("status")
                        .annotate(n=Count("id")).values_list("status", "n"))
            return not left

        wait_until(settled, what="every message to be sent", timeout=90, interval=1.0,
                   describe=lambda: f"left by status: {left}")
        stats = emu.control("GET", "stats")
    finally:
        second.stop()
        emu.process.stop()
    counts = {int(k): v for k, v in stats["by_callback_data"].items() if k.isdigit() and int(k) in ids}
    assert len(counts) == total, f"lost: {sorted(set(ids) - set(counts))[:10]}"
    duplicates = {k: v for k, v in counts.items() if v != 1}
    assert duplicates == {}, f"sent more than once: {duplicates}"
