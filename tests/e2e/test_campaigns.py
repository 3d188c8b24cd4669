"""Campaigns with real parts: Celery worker processes (killed with SIGKILL mid-dispatch, twice,
and restarted), the Cloud API emulator over HTTP counting what it received per recipient, and
Parley's web app receiving the emulator's status webhooks. Runs on the suite's database and
broker (PostgreSQL + Redis when DATABASE_URL / CELERY_BROKER_URL say so)."""

from __future__ import annotations

import bisect
import time

import pytest
from django.db.models import Count

from apps.campaigns.models import Campaign, CampaignRecipient
from apps.campaigns.services import campaign_create, campaign_launch, campaigns_tick
from apps.contacts.models import Contact, ContactTag, Tag
from apps.conversations.models import Message
from apps.conversations.services import messages_sweep
from apps.core.scoping import tenant_scope
from apps.message_templates.models import MessageTemplate
from apps.phone_numbers.services import phone_number_create
from apps.tenants.services import tenant_create

from .harness import emulator, wait_until, worker

pytestmark = pytest.mark.e2e

SECRET = "e2e-campaign-secret"
PNID = "900100200400"
TEMPLATE_BODY = "Hi {{1}}, your order {{2}} has shipped and is on its way."
MAPPING = {"1": {"source": "name", "fallback": "there"}, "2": {"source": "attribute", "key": "order"}}
IN_FLIGHT = ["accepted", "sent", "delivered", "read"]


def setup_campaign(emulator_url: str, *, recipients: int, budget: int):
    tenant = tenant_create(slug="e2e-campaigns", name="E2E campaigns", owner_email="owner@e2e.test", owner_password="pw")
    number = phone_number_create(tenant=tenant, provider="meta_cloud", display_number="15550009998",
                                 phone_number_id=PNID, waba_id="emulator-waba", access_token="token",
                                 app_secret=SECRET, graph_api_url=emulator_url, messages_per_second=budget)
    template = MessageTemplate.objects.for_tenant(tenant).create(
        tenant=tenant, phone_number=number, waba_id="emulator-waba", name="order_update", language="en",
        status=MessageTemplate.Status.APPROVED, components=[{"type": "BODY", "text": TEMPLATE_BODY}])
    tag = Tag.objects.for_tenant(tenant).create(tenant=tenant, name="e2e")
    contacts = Contact.objects.for_tenant(tenant).bulk_create([
        Contact(tenant=tenant, wa_id=f"1415557{i:04d}", name=f"Customer {i}", attributes={"order": f"#{1000 + i}"})
        for i in range(recipients)])
    ContactTag.objects.for_tenant(tenant).bulk_create([ContactTag(tenant=tenant, contact=c, tag=tag) for c in contacts])
    with tenant_scope(tenant):
        campaign = campaign_create(tenant=tenant, name="E2E", phone_number=number, template=template,
                                   audience={"tags": ["e2e"]}, variable_mapping=MAPPING)
        campaign_launch(campaign=campaign)
    return tenant, number, campaign


def beat() -> None:
    """What beat does: the campaign tick every second, the send sweeper every few."""
    campaigns_tick()
    messages_sweep()


def wait_completed(campaign: Campaign, *, timeout: float) -> None:
    def done() -> bool:
        beat()
        return Campaign.objects.for_tenant(campaign.tenant_id).get(pk=campaign.pk).status == "completed"

    wait_until(done, what="the campaign to complete", timeout=timeout, interval=1.0)


def worst_second(times: list[float]) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + 1.0, lo=i) - i for i, t in enumerate(times)), default=0)


def assert_exactly_once(emu, tenant, campaign, total: int) -> list[float]:
    """Every recipient reached the emulator exactly once; returns the emulator's accept times."""
    stats = emu.control("GET", "stats")
    messages = Message.objects.for_tenant(tenant).filter(campaign_recipient__campaign=campaign)
    ids = {str(pk) for pk in messages.values_list("id", flat=True)}
    assert len(ids) == total, f"{total - len(ids)} recipients never got a message row"
    by_callback = {k: v for k, v in stats["by_callback_data"].items() if k in ids}
    assert len(by_callback) == total, f"lost: {sorted(ids - set(by_callback))[:10]}"
    assert {k: v for k, v in by_callback.items() if v != 1} == {}, "a message reached the provider twice"
    wa_ids = set(Contact.objects.for_tenant(tenant).values_list("wa_id", flat=True))
    by_recipient = {k: v for k, v in stats["by_recipient"].items() if k in wa_ids}
    assert len(by_recipient) == total and set(by_recipient.values()) == {1}, "a recipient got two messages"
    final = dict(CampaignRecipient.objects.for_tenant(tenant).filter(campaign=campaign).values("status")
                 .annotate(n=Count("id")).values_list("status", "n"))
    assert sum(final.get(s, 0) for s in IN_FLIGHT) == total, final
    accepted: list[float] = []
    since = 0
    while True:
        page = emu.control("GET", "messages", params={"since": since, "limit": 5000})["messages"]
        if not page:
            return accepted
        accepted += [m["accepted_at"] for m in page if m["biz_opaque_callback_data"] in ids]
        since = page[-1]["seq"]


def test_workers_killed_twice_mid_campaign_send_every_recipient_exactly_once_within_budget(
        e2e_env, e2e_logs, live_server):
    total, budget = 600, 150
    emu = emulator(e2e_env, e2e_logs, webhook_url=f"{live_server.url}/webhooks/meta/", app_secret=SECRET,
                   args=["--latency-ms", "150", "--sent-delay", "0.2", "--delivered-delay", "0.5", "--read-delay",
                         "1", "--jitter", "0", "--flush-interval", "0.05", "--seed", "3"])
    tenant, number, campaign = setup_campaign(emu.url, recipients=total, budget=budget)
    messages = Message.objects.for_tenant(tenant).filter(campaign_recipient__campaign=campaign)
    first = worker(e2e_env, e2e_logs, name="first")
    try:
        # Kill the worker while POSTs are in flight and the feeder is mid-run.
        wait_until(lambda: messages.filter(status__in=IN_FLIGHT).count() >= 100
                   and messages.filter(status="sending").exists(), what="sends in flight", timeout=90,
                   interval=0.01)
        first.kill()
        assert messages.filter(status="sending").exists(), "the kill must catch sends in flight"
        assert CampaignRecipient.objects.for_tenant(tenant).filter(campaign=campaign, status="pending").exists()
    finally:
        first.stop()
    # And its successor too, later in the run, as a deploy gone wrong might.
    second = worker(e2e_env, e2e_logs, name="second")
    try:
        last_beat = [0.0]

        def sending_again() -> bool:
            if time.monotonic() - last_beat[0] >= 1.0:
                # The first kill left a feed bell and rows in sending that only beat clears.
                beat()
                last_beat[0] = time.monotonic()
            return (messages.filter(status__in=IN_FLIGHT).count() >= 350
                    and messages.filter(status="sending").exists())

        wait_until(sending_again, what="sends in flight again", timeout=90, interval=0.01)
        second.kill()
        assert messages.filter(status="sending").exists(), "the second kill must catch sends in flight"
    finally:
        second.stop()
    third = worker(e2e_env, e2e_logs, name="third")
    try:
        wait_completed(campaign, timeout=180)
        accepted = assert_exactly_once(emu, tenant, campaign, total)
    finally:
        third.stop()
        emu.process.stop()
    # Pacing: never more than the budget + 5 % (+1, a message is not divisible) in any second.
    assert worst_second(accepted) <= budget * 1.05 + 1, worst_second(accepted)


def test_a_429_storm_is_ridden_out_without_duplicates(e2e_env, e2e_logs, live_server):
    total = 120
    emu = emulator(e2e_env, e2e_logs, webhook_url=f"{live_server.url}/webhooks/meta/", app_secret=SECRET,
                   args=["--rate-limit-share", "0.8", "--sent-delay", "0.2", "--jitter", "0", "--seed", "4",
                         "--flush-interval", "0.05"])
    tenant, number, campaign = setup_campaign(emu.url, recipients=total, budget=80)
    one = worker(e2e_env, e2e_logs, name="storm")
    try:
        wait_until(lambda: emu.control("GET", "stats")["injected_rate_limits"] >= 50, what="the storm",
                   timeout=60, interval=0.2)
        emu.control("POST", "config", json={"rate_limit_share": 0.0})  # the storm passes
        time.sleep(0.5)
        wait_completed(campaign, timeout=180)
        assert_exactly_once(emu, tenant, campaign, total)
    finally:
        one.stop()
        emu.process.stop()
    retried = Message.objects.for_tenant(tenant).filter(campaign_recipient__campaign=campaign, attempt_count__gt=1)
    assert retried.exists(), "the storm must have made some sends retry"
