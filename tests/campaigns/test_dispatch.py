"""Feeding campaigns into the send pipeline (locmem backend), pause / resume / cancel, spam-rate
pauses, completion and its webhooks, replies."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.campaigns.dispatch import FeedCursor, campaign_feed, feed_batch
from apps.campaigns.models import Campaign, CampaignRecipient
from apps.campaigns.planning import campaign_plan
from apps.campaigns.selectors import campaign_funnel, campaign_rate_series, campaign_recipient_list
from apps.campaigns.services import (
    campaign_cancel,
    campaign_create,
    campaign_launch,
    campaign_pause,
    campaign_resume,
)
from apps.conversations.models import Conversation, Message
from apps.conversations.services import message_receive, message_statuses_apply, messages_dispatch
from apps.core.exceptions import ApplicationError
from apps.providers.backends import locmem
from apps.providers.events import ErrorInfo, InboundMessage, StatusUpdate
from apps.providers.exceptions import ProviderPermanentError
from apps.webhooks.models import WebhookDelivery
from tests.factories import WebhookEndpointFactory

from .conftest import MAPPING, tagged


def launch(scoped, number, template, tag, n, **kwargs):
    tagged(scoped, tag, n)
    campaign = campaign_create(tenant=scoped, name="Spring", phone_number=number, template=template,
                               audience={"tags": [tag.name]}, variable_mapping=MAPPING, **kwargs)
    campaign_launch(campaign=campaign)
    campaign_plan(tenant_id=scoped.pk, campaign_id=campaign.pk, time_budget=60)
    campaign.refresh_from_db()
    return campaign


def pump(campaign, rounds=50):
    """Feed and dispatch until nothing moves (the work the feed and dispatch tasks share)."""
    for _ in range(rounds):
        fed = campaign_feed(tenant_id=campaign.tenant_id, campaign_id=campaign.pk, time_budget=0).fed
        sent = messages_dispatch(tenant_id=campaign.tenant_id, phone_number_id=campaign.phone_number_id,
                                 time_budget=0).claimed
        if not fed and not sent:
            break
    campaign.refresh_from_db()


def statuses_of(campaign):
    return Counter(CampaignRecipient.objects.for_tenant(campaign.tenant_id).filter(campaign=campaign)
                   .values_list("status", flat=True))


def status_update(message, status, *, code=None):
    return StatusUpdate(provider="meta_cloud", route_key="5550001", provider_message_id=message.provider_message_id,
                        wa_message_id=message.wa_message_id, status=status, timestamp=timezone.now(),
                        errors=(ErrorInfo(code, "Error", "m", "d"),) if code else (), recipient_wa_id="",
                        conversation={}, pricing={}, callback_data=None, raw={})


@pytest.fixture(autouse=True)
def endpoint(tenant):
    return WebhookEndpointFactory(tenant=tenant)


def test_every_recipient_is_sent_once_in_its_conversation_and_the_campaign_completes(scoped, number, template, vip):
    campaign = launch(scoped, number, template, vip, 30)
    assert campaign.status == Campaign.Status.RUNNING
    pump(campaign)
    sent_to = Counter(message.to for _, message in locmem.outbox)
    assert len(sent_to) == 30 and set(sent_to.values()) == {1}
    assert statuses_of(campaign) == Counter({"accepted": 30})
    message = Message.objects.for_tenant(scoped).select_related("campaign_recipient", "conversation").first()
    recipient = message.campaign_recipient
    assert message.content["components"][0]["parameters"][0]["text"] == recipient.contact.name
    assert message.conversation.last_message_preview == f"Hi {recipient.contact.name}, Everything is on sale."
    assert Conversation.objects.for_tenant(scoped).count() == 30
    # Still running: the answers are in, completion is the next feed's finding.
    campaign_feed(tenant_id=scoped.pk, campaign_id=campaign.pk, time_budget=0)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED and campaign.completed_at
    events = list(WebhookDelivery.objects.for_tenant(scoped).filter(event_type__startswith="campaign.")
                  .order_by("id").values_list("event_type", "payload"))
    assert [e[0] for e in events] == ["campaign.started", "campaign.completed"]
    assert events[1][1]["data"]["funnel"]["sent"] == 30
    # Delivery reports move the recipients on, in bulk, through the status writer.
    messages = list(Message.objects.for_tenant(scoped).order_by("id")[:10])
    message_statuses_apply(phone_number=number, updates=[status_update(m, "delivered") for m in messages])
    funnel = campaign_funnel(campaign=campaign)
    assert (funnel["targeted"], funnel["sent"], funnel["delivered"], funnel["progress"]) == (30, 30, 10, 1.0)
    assert campaign_rate_series(campaign=campaign)[0]["count"] == 30


def test_only_a_bounded_lead_is_queued_ahead_of_the_dispatcher(scoped, number, template, vip):
    campaign = launch(scoped, number, template, vip, 25)
    assert feed_batch(campaign=campaign, lead=10) == 10
    assert feed_batch(campaign=campaign, lead=10) == 0  # the lead is full until the dispatcher claims
    messages_dispatch(tenant_id=scoped.pk, phone_number_id=number.pk, time_budget=0)
    assert feed_batch(campaign=campaign, lead=10) == 10
    assert statuses_of(campaign) == Counter({"accepted": 10, "queued": 10, "pending": 5})


def test_the_feed_cursor_reads_on_after_what_it_fed_and_still_finds_a_recipient_behind_it(scoped, number, template,
                                                                                           vip):
    campaign = launch(scoped, number, template, vip, 6)
    cursor = FeedCursor()
    assert feed_batch(campaign=campaign, lead=3, cursor=cursor) == 3
    first = list(CampaignRecipient.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True))
    assert cursor.after == first[2]
    # A recipient behind the cursor is pending again (as if planned late): it waits for those after
    # the cursor, then is read from the campaign's start.
    CampaignRecipient.objects.filter(pk=first[0]).update(status="pending")
    Message.objects.filter(campaign_recipient_id=first[0]).delete()
    messages_dispatch(tenant_id=scoped.pk, phone_number_id=number.pk, time_budget=0)
    assert feed_batch(campaign=campaign, lead=3, cursor=cursor) == 3
    assert cursor.after == first[5]
    messages_dispatch(tenant_id=scoped.pk, phone_number_id=number.pk, time_budget=0)
    assert feed_batch(campaign=campaign, lead=3, cursor=cursor) == 1
    assert cursor.after == first[0]
    assert not CampaignRecipient.objects.filter(campaign=campaign, status="pending").exists()


def test_pause_holds_queued_messages_and_resume_releases_them(scoped, number, template, vip):
    campaign = launch(scoped, number, template, vip, 20)
    feed_batch(campaign=campaign, lead=8)
    campaign_pause(campaign=campaign, reason="Checking the copy")
    assert campaign_feed(tenant_id=scoped.pk, campaign_id=campaign.pk, time_budget=0).fed == 0
    assert messages_dispatch(tenant_id=scoped.pk, phone_number_id=number.pk, time_budget=0).claimed == 0
    assert locmem.outbox == []
    campaign.refresh_from_db()
    assert campaign.status == "paused" and campaign.status_reason == "Checking the copy" and campaign.held
    with pytest.raises(ApplicationError) as exc:
        campaign_pause(campaign=campaign)
    assert exc.value.code == "campaign_state"
    campaign_resume(campaign=campaign)
    pump(campaign)
    assert len(locmem.outbox) == 20 and campaign.status == "completed"


def test_cancel_fails_unclaimed_messages_and_cancels_the_rest(scoped, number, template, vip):
    campaign = launch(scoped, number, template, vip, 20)
    feed_batch(campaign=campaign, lead=8)
    messages_dispatch(tenant_id=scoped.pk, phone_number_id=number.pk, time_budget=0)  # 8 go out
    feed_batch(campaign=campaign, lead=5)
    campaign_cancel(campaign=campaign)
    pump(campaign)
    assert len(locmem.outbox) == 8
    assert statuses_of(campaign) == Counter({"accepted": 8, "cancelled": 12})
    cancelled = Message.objects.for_tenant(scoped).filter(status="failed")
    assert cancelled.count() == 5 and cancelled.first().error_title == "Campaign cancelled"
    with pytest.raises(ApplicationError):
        campaign_resume(campaign=campaign)


def test_spam_rate_error_from_a_status_webhook_pauses_the_campaign(scoped, number, template, vip):
    campaign = launch(scoped, number, template, vip, 20)
    feed_batch(campaign=campaign, lead=5)
    messages_dispatch(tenant_id=scoped.pk, phone_number_id=number.pk, time_budget=0)
    feed_batch(campaign=campaign, lead=5)
    first = Message.objects.for_tenant(scoped).filter(status="accepted").first()
    message_statuses_apply(phone_number=number, updates=[status_update(first, "failed", code=131048)])
    campaign.refresh_from_db()
    assert campaign.status == "paused" and campaign.paused_error_code == 131048
    assert "Spam rate limit" in campaign.status_reason
    pump(campaign)
    assert len(locmem.outbox) == 5  # the queued lead was held
    funnel = campaign_funnel(campaign=campaign)
    assert funnel["failed_by_code"][0]["code"] == 131048 and "quality" in funnel["failed_by_code"][0]["explanation"]
    failed = campaign_recipient_list(campaign=campaign, error_code=131048)
    assert len(failed) == 1 and failed[0].contact is not None


def test_spam_rate_error_answering_the_send_pauses_too(scoped, number, template, vip):
    campaign = launch(scoped, number, template, vip, 10)
    locmem.script(ProviderPermanentError("spam", provider="meta_cloud", code=131048, title="Spam rate limit hit"))
    feed_batch(campaign=campaign, lead=4)
    messages_dispatch(tenant_id=scoped.pk, phone_number_id=number.pk, time_budget=0)
    campaign.refresh_from_db()
    assert campaign.status == "paused" and campaign.paused_error_code == 131048
    assert statuses_of(campaign)["failed"] == 1
    assert CampaignRecipient.objects.for_tenant(scoped).get(campaign=campaign, status="failed").error_code == 131048


def test_a_slower_pace_than_the_number_is_kept(scoped, number, template, vip):
    campaign = launch(scoped, number, template, vip, 40, messages_per_second=8)
    report = campaign_feed(tenant_id=scoped.pk, campaign_id=campaign.pk, time_budget=1.0)
    # One second at 8/s, plus the bucket's one-token burst (and one batch of slack for timing).
    assert 4 <= report.fed <= 11


def test_replies_within_the_window_count_toward_the_campaign(scoped, number, template, vip):
    campaign = launch(scoped, number, template, vip, 3)
    pump(campaign)
    recipient = CampaignRecipient.objects.for_tenant(scoped).filter(campaign=campaign).select_related("contact").first()
    message_receive(phone_number=number, inbound=InboundMessage(
        provider="meta_cloud", route_key="5550001", wa_id=recipient.contact.wa_id, profile_name="", text="Yes!",
        provider_message_id="wamid.REPLY", timestamp=timezone.now() + timedelta(seconds=5), type="text",
        content={"body": "Yes!"}, context_id=None, media=None, errors=(), raw={}))
    assert campaign_funnel(campaign=campaign)["replied"] == 1
    assert [r.pk for r in campaign_recipient_list(campaign=campaign, status="replied")] == [recipient.pk]


def test_a_retry_that_comes_back_after_a_pause_or_cancel_is_held_by_the_tick(scoped, number, template, vip):
    from apps.campaigns.services import campaigns_tick

    paused = launch(scoped, number, template, vip, 4)
    feed_batch(campaign=paused, lead=2)
    claimed = messages_dispatch(tenant_id=scoped.pk, phone_number_id=number.pk, time_budget=0).message_ids
    campaign_pause(campaign=paused)
    # The answer to an in-flight send was a 429: the row is queued again, due, after the pause.
    Message.objects.for_tenant(scoped).filter(pk=claimed[0]).update(status="queued", next_attempt_at=timezone.now())
    CampaignRecipient.objects.for_tenant(scoped).filter(message__pk=claimed[0]).update(status="queued")
    campaigns_tick()
    assert Message.objects.for_tenant(scoped).get(pk=claimed[0]).next_attempt_at is None
    campaign_cancel(campaign=paused)
    Message.objects.for_tenant(scoped).filter(pk=claimed[1]).update(status="queued", next_attempt_at=timezone.now())
    CampaignRecipient.objects.for_tenant(scoped).filter(message__pk=claimed[1]).update(status="queued")
    campaigns_tick()
    assert Message.objects.for_tenant(scoped).get(pk=claimed[1]).status == "failed"
    assert messages_dispatch(tenant_id=scoped.pk, phone_number_id=number.pk, time_budget=0).claimed == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row lock modes are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_the_feeder_goes_on_beside_the_planner_but_not_beside_a_pause():
    """A chunk of planning locks the campaign FOR NO KEY UPDATE, which the feeder's FOR KEY SHARE
    does not wait for; a pause (FOR UPDATE) makes the feeder skip and come back."""
    from apps.campaigns.dispatch import _lock_campaign
    from tests.factories import CampaignFactory

    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    held, release = threading.Event(), threading.Event()

    def hold(no_key: bool) -> None:
        try:
            with transaction.atomic():
                list(Campaign.objects.for_tenant(campaign.tenant_id).filter(pk=campaign.pk)
                     .select_for_update(no_key=no_key).values_list("id", flat=True))
                held.set()
                release.wait(10)
        finally:
            connection.close()

    for no_key, expected in ((True, Campaign.Status.RUNNING), (False, None)):
        held.clear()
        release.clear()
        holder = threading.Thread(target=hold, args=(no_key,))
        holder.start()
        try:
            assert held.wait(10)
            with transaction.atomic():
                assert _lock_campaign(campaign.pk, campaign.tenant_id) == expected
        finally:
            release.set()
            holder.join()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite's write lock serializes feeds already")
@pytest.mark.django_db(transaction=True)
def test_two_feeders_of_one_campaign_take_turns_instead_of_feeding_a_recipient_twice(
        scoped, number, template, vip, monkeypatch):
    """A second feeder (its lease lapsed while the first was busy) reading the recipients the
    first is feeding would insert the same messages and die on the unique key; it waits for
    the first to commit and feeds what is left."""
    from apps.campaigns import dispatch, tasks

    # Planned, not fed: the feed task (run at once in tests, on commit) does nothing here.
    monkeypatch.setattr(tasks.campaign_feed_task, "apply_async", lambda *args, **kwargs: None)
    campaign = launch(scoped, number, template, vip, 6)
    assert statuses_of(campaign) == {"pending": 6}
    real_insert = dispatch.insert_rows
    first = threading.current_thread
    inserted, go = threading.Event(), threading.Event()
    slow_thread: list[threading.Thread] = []

    def insert_then_wait(model, *args, **kwargs):
        result = real_insert(model, *args, **kwargs)
        if model is Message and first() in slow_thread:
            inserted.set()
            assert go.wait(10)
        return result

    monkeypatch.setattr(dispatch, "insert_rows", insert_then_wait)
    fed, errors = {}, []

    def feed(name: str, want: int) -> None:
        try:
            fresh = Campaign.objects.for_tenant(scoped.pk).select_related("phone_number", "template").get(pk=campaign.pk)
            fed[name] = feed_batch(campaign=fresh, lead=100, want=want)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    slow = threading.Thread(target=feed, args=("slow", 4))
    slow_thread.append(slow)
    slow.start()
    assert inserted.wait(10)
    second = threading.Thread(target=feed, args=("second", 4))
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waiting for the first feed to commit
    go.set()
    slow.join(10)
    second.join(10)
    assert errors == []
    assert fed == {"slow": 4, "second": 2}
    recipient_ids = list(Message.objects.for_tenant(scoped).filter(campaign_recipient__campaign=campaign)
                         .values_list("campaign_recipient_id", flat=True))
    assert len(recipient_ids) == len(set(recipient_ids)) == 6
