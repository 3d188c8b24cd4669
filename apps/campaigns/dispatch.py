"""Feeding a running campaign into the send pipeline, a batch at a time.

The campaign never sends anything itself. A short feed task (a few seconds, then it rings again)
turns pending recipients into ``Message(queued)`` rows in bulk -- conversation, campaign
recipient link and rendered template content included -- and rings the number's dispatch task,
which takes tokens from the number's bucket, posts, records and retries (apps/conversations/
services/dispatch.py). Only a bounded lead of queued messages (about two seconds of the pace) is
kept ahead of the dispatcher, so a pause or a cancel has little to hold back and takes effect at
once: a paused campaign stops feeding and its not-yet-claimed queued messages are held
(``next_attempt_at`` cleared, which the dispatcher and the sweeper skip); a cancelled one fails
them.

Exactly once: a recipient becomes a message in the same transaction that moves it from
``pending`` to ``queued``, under a lock on the campaign row, and ``Message.campaign_recipient``
is one-to-one -- a second message for the same recipient cannot exist. From there on the
pipeline's own guarantees hold (claim, ``sending``, reconciliation through
``biz_opaque_callback_data``).

Pace: the number's token bucket caps everything at the number's budget. A campaign slower than
its number also takes tokens from its own bucket (``campaign:<id>``) before feeding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from apps.conversations import statuses
from apps.conversations.models import Conversation, Message
from apps.core.bulk import insert_rows
from apps.core.statistics import analyze
from apps.providers.ratelimit import acquire

from .models import Campaign, CampaignRecipient
from .variables import template_content

logger = logging.getLogger(__name__)

FEEDING = (Campaign.Status.PLANNING, Campaign.Status.RUNNING)
# Recipient states that still wait for something.
ACTIVE_RECIPIENT = (CampaignRecipient.Status.NEW, CampaignRecipient.Status.PENDING,
                    CampaignRecipient.Status.QUEUED, CampaignRecipient.Status.SENDING)
# Recipient states in which a message exists (the recipient has been handed to the pipeline).
MESSAGED = (statuses.QUEUED, statuses.SENDING, statuses.ACCEPTED, statuses.SENT, statuses.DELIVERED,
            statuses.READ, statuses.FAILED)
# Provider errors that pause the whole campaign rather than fail one recipient.
PAUSE_CODES = {131048, 131049}

LEAD_SECONDS = 2.0
FEED_BATCH = 500
FEED_IDLE_SLEEP = 0.05
FEED_BELL_TTL = 10


def _feed_bell(campaign_id: int) -> str:
    return f"parley:campaign-feed:{campaign_id}"


def ring_feed(*, tenant_id: int, campaign_id: int, force: bool = False) -> None:
    """Queue a feed task after commit, unless one is already queued or running (a cache key it
    clears when it ends; it expires by itself if the worker died, and the beat tick rings again)."""
    from .tasks import campaign_feed_task

    def ring() -> None:
        if not force and not cache.add(_feed_bell(campaign_id), 1, timeout=FEED_BELL_TTL):
            return
        campaign_feed_task.apply_async(kwargs={"tenant_id": tenant_id, "campaign_id": campaign_id})

    transaction.on_commit(ring)


def effective_pace(campaign: Campaign) -> int:
    budget = campaign.phone_number.messages_per_second
    return max(1, min(campaign.messages_per_second or budget, budget))


# --- quiet hours ---------------------------------------------------------------------------

def _minutes(text: str) -> int:
    hours, minutes = str(text).split(":")
    return int(hours) * 60 + int(minutes)


def in_quiet_hours(campaign: Campaign, *, now: datetime | None = None) -> bool:
    """Whether now, in the tenant's time zone, falls in the campaign's daily quiet window
    (``{"start": "21:00", "end": "08:00"}``; a window may cross midnight)."""
    quiet = campaign.quiet_hours or {}
    if not quiet.get("start") or not quiet.get("end"):
        return False
    local = timezone.localtime(now or timezone.now(), ZoneInfo(campaign.tenant.time_zone or "UTC"))
    current = local.hour * 60 + local.minute
    start, end = _minutes(quiet["start"]), _minutes(quiet["end"])
    if start == end:
        return False
    if start < end:
        return start <= current < end
    return current >= start or current < end


# --- hold and release ----------------------------------------------------------------------

def _campaign_messages(campaign: Campaign):
    # A join on the recipient's primary key, not ``campaign_recipient IN (subquery)``: with the
    # statistics of a recipients table still filling, PostgreSQL planned the subquery as a scan
    # of every recipient of the campaign for each queued message, seconds per feed.
    return Message.objects.for_tenant(campaign.tenant_id).filter(
        campaign_recipient__campaign_id=campaign.pk, campaign_recipient__status=CampaignRecipient.Status.QUEUED)


def hold_queued(campaign: Campaign) -> int:
    """Hold back the campaign's queued messages nobody has claimed yet (the dispatcher only
    claims rows whose ``next_attempt_at`` is due; rows already claimed go out)."""
    held = _campaign_messages(campaign).filter(status=Message.Status.QUEUED, next_attempt_at__isnull=False).update(
        next_attempt_at=None, updated_at=timezone.now())
    Campaign.objects.for_tenant(campaign.tenant_id).filter(pk=campaign.pk).update(held=True)
    campaign.held = True
    return held


def release_held(campaign: Campaign) -> int:
    from apps.conversations.services.dispatch import ring_dispatch

    now = timezone.now()
    released = _campaign_messages(campaign).filter(status=Message.Status.QUEUED, next_attempt_at__isnull=True).update(
        next_attempt_at=now, updated_at=now)
    Campaign.objects.for_tenant(campaign.tenant_id).filter(pk=campaign.pk).update(held=False)
    campaign.held = False
    if released:
        ring_dispatch(tenant_id=campaign.tenant_id, phone_number_id=campaign.phone_number_id)
    return released


def cancel_queued(campaign: Campaign) -> int:
    """A cancelled campaign's unclaimed messages never go out: they fail, saying why, and their
    recipients (with the ones never fed) are cancelled."""
    now = timezone.now()
    messages = _campaign_messages(campaign).filter(status=Message.Status.QUEUED)
    ids = list(messages.values_list("id", flat=True))
    cancelled = 0
    if ids:
        cancelled = Message.objects.for_tenant(campaign.tenant_id).filter(
            id__in=ids, status=Message.Status.QUEUED).update(
            status=Message.Status.FAILED, failed_at=now, status_updated_at=now, next_attempt_at=None, updated_at=now,
            error_title="Campaign cancelled", error_detail="The campaign was cancelled before this message was sent.")
        CampaignRecipient.objects.for_tenant(campaign.tenant_id).filter(
            campaign_id=campaign.pk, status=CampaignRecipient.Status.QUEUED,
            message__status=Message.Status.FAILED, message__error_title="Campaign cancelled",
        ).update(status=CampaignRecipient.Status.CANCELLED, updated_at=now)
    CampaignRecipient.objects.for_tenant(campaign.tenant_id).filter(
        campaign_id=campaign.pk, status__in=[CampaignRecipient.Status.NEW, CampaignRecipient.Status.PENDING],
    ).update(status=CampaignRecipient.Status.CANCELLED, updated_at=now)
    return cancelled


# --- feeding -------------------------------------------------------------------------------

@dataclass
class FeedReport:
    fed: int = 0
    batches: int = 0
    completed: bool = False
    stopped: str = ""


def _lock_campaign(campaign_id: int, tenant_id: int) -> str | None:
    """The campaign's status, with its row locked against a status change; None when a pause, a
    cancel or a resume holds it: the feeder comes back a moment later instead of queueing up
    behind it and keeping a worker process waiting.

    On PostgreSQL the lock is FOR KEY SHARE: it conflicts with the FOR UPDATE that pause, cancel
    and resume take (so either they see the messages this feed makes, or this feed sees their
    status), but not with the planner, whose chunks lock the row FOR NO KEY UPDATE. Feeding
    goes on while a large audience is still being planned."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT status FROM {Campaign._meta.db_table} WHERE tenant_id = %s AND id = %s "
                           "FOR KEY SHARE SKIP LOCKED", [tenant_id, campaign_id])
            row = cursor.fetchone()
        return row[0] if row else None
    qs = Campaign.objects.for_tenant(tenant_id).filter(pk=campaign_id)
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True)
    return qs.values_list("status", flat=True).first()


@dataclass
class FeedCursor:
    """The largest recipient id a feed task has fed. Its next read starts after it, instead of
    walking again, from the campaign's first recipient, the index entries of every recipient it
    fed (dead until VACUUM comes: each left ``pending`` with a rewrite)."""

    after: int = 0


def feed_batch(*, campaign: Campaign, lead: int, want: int | None = None, cursor: FeedCursor | None = None) -> int:
    """Turn up to ``want`` pending recipients into queued messages -- no more than keeps ``lead``
    messages queued -- in one transaction, and ring the number's dispatch task. Returns how many
    were fed. With a ``cursor``, recipients after it are read first; only when there are none is
    the campaign read from its start (a recipient planned or put back below the cursor)."""
    from apps.conversations.services.dispatch import ring_dispatch

    tenant_id = campaign.tenant_id
    number = campaign.phone_number
    template = campaign.template
    with transaction.atomic():
        # Pause and cancel take this lock too: either they see these messages, or this sees them.
        if _lock_campaign(campaign.pk, tenant_id) not in FEEDING:
            return 0
        _one_feeder_at_a_time(campaign.pk)
        recipients = CampaignRecipient.objects.for_tenant(tenant_id)
        waiting = _unclaimed_count(campaign=campaign, limit=lead)
        room = min(lead - waiting, lead if want is None else want)
        if room <= 0:
            return 0
        pending = (recipients.filter(campaign_id=campaign.pk, status=CampaignRecipient.Status.PENDING)
                   .order_by("id").values_list("id", "contact_id", "variables"))
        after = cursor.after if cursor else 0
        rows = list((pending.filter(id__gt=after) if after else pending)[:min(room, FEED_BATCH)])
        if not rows and after:
            rows = list(pending[:min(room, FEED_BATCH)])
        if not rows:
            return 0
        if cursor:
            cursor.after = rows[-1][0]
        contact_ids = [row[1] for row in rows]
        conversations = Conversation.objects.for_tenant(tenant_id)
        by_contact = dict(conversations.filter(phone_number=number, contact_id__in=contact_ids)
                          .values_list("contact_id", "id"))
        missing = [cid for cid in contact_ids if cid not in by_contact]
        now = timezone.now()
        if missing:
            # Listed from the start (last_message_at set), as the UPDATE below would make them:
            # the inbox's tally then counts them once per INSERT, not once per row (models.py).
            insert_rows(Conversation, [{"contact_id": cid} for cid in missing],
                        {"tenant_id": tenant_id, "phone_number_id": number.pk, "last_message_at": now,
                         "created_at": now, "updated_at": now}, ignore_conflicts=True)
            by_contact.update(conversations.filter(phone_number=number, contact_id__in=missing)
                              .values_list("contact_id", "id"))
        messages = []
        previews: dict[int, str] = {}  # conversation id -> preview
        for recipient_id, contact_id, values in rows:
            content, body = template_content(template=template, values=values or {})
            preview = body[:255]
            previews[by_contact[contact_id]] = preview
            messages.append({"conversation_id": by_contact[contact_id], "contact_id": contact_id, "content": content,
                             "text_preview": preview, "campaign_recipient_id": recipient_id})
        # One INSERT with an array per column (bulk_create spent a fifth of the sending worker's
        # CPU preparing values and placeholders); a recipient fed twice still violates the unique key.
        insert_rows(Message, messages, {
            "tenant_id": tenant_id, "phone_number_id": number.pk, "direction": Message.Direction.OUTBOUND,
            "type": Message.Type.TEMPLATE, "status": Message.Status.QUEUED, "status_updated_at": now,
            "occurred_at": now, "next_attempt_at": now, "created_at": now, "updated_at": now})
        fed = recipients.filter(id__in=[row[0] for row in rows], status=CampaignRecipient.Status.PENDING).update(
            status=CampaignRecipient.Status.QUEUED, updated_at=now)
        if fed != len(rows):  # the campaign lock makes this impossible; never paper over it
            raise RuntimeError(f"campaign {campaign.pk}: {len(rows) - fed} recipient(s) changed under the lock")
        # The conversations show the campaign message last, like any other send: one UPDATE,
        # each conversation taking the preview of its newest message.
        distinct = set(previews.values())
        preview = distinct.pop() if len(distinct) == 1 else Subquery(
            Message.objects.for_tenant(tenant_id).filter(conversation_id=OuterRef("pk"))
            .order_by("-id").values("text_preview")[:1])
        conversations.filter(id__in=list(previews)).update(
            last_message_at=now, last_message_type=Message.Type.TEMPLATE, last_message_preview=preview,
            last_message_direction=Message.Direction.OUTBOUND, updated_at=now)
        ring_dispatch(tenant_id=tenant_id, phone_number_id=number.pk)
    return len(rows)


FEED_LOCK_NAMESPACE = 0x50A7  # the first key of the two-key advisory lock of a campaign's feed


def _one_feeder_at_a_time(campaign_id: int) -> None:
    """Wait for any other feed of this campaign to commit: the campaign lock above is shared
    by feeders, and two feeds reading the same pending recipients at once would insert the
    same messages (the second failing on the unique key and its task dying). A second feeder
    is rare -- its lease lapsed while the first was busy for longer than FEED_BELL_TTL -- and
    after the wait it reads what the first left pending. SQLite's write lock already
    serializes feeds."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [FEED_LOCK_NAMESPACE, str(campaign_id)])


def _unclaimed_count(*, campaign: Campaign, limit: int) -> int:
    """How many of the campaign's messages (up to ``limit``) wait in the queue, due."""
    return len(_campaign_messages(campaign).filter(status=Message.Status.QUEUED, next_attempt_at__isnull=False)
               .values_list("id", flat=True)[:limit])


# A campaign adds messages (and conversations) faster than autovacuum comes round to analyze
# them (apps/core/statistics.py): the feeder refreshes the statistics after its first couple of
# thousand messages, then every STATISTICS_EVERY, a table at most every STATISTICS_INTERVAL
# seconds whichever task asks.
STATISTICS_FIRST, STATISTICS_EVERY = 2_000, 25_000
STATISTICS_INTERVAL = 15


def _statistics_due(before: int, after: int) -> bool:
    if before < STATISTICS_FIRST <= after:
        return True
    return after // STATISTICS_EVERY > before // STATISTICS_EVERY


def campaign_feed(*, tenant_id: int, campaign_id: int, time_budget: float | None = None) -> FeedReport:
    """One feed task's work: feed, keep the lead, watch for completion, for at most
    ``time_budget`` seconds; then ring again if the campaign is still running."""
    report = FeedReport()
    budget = settings.PARLEY_CAMPAIGN_FEED_TIME_BUDGET if time_budget is None else time_budget
    deadline = time.monotonic() + budget
    last_reconcile = 0.0
    cursor = FeedCursor()
    try:
        while True:
            # Hold the lease while alive, so the beat tick does not start a second feeder.
            cache.set(_feed_bell(campaign_id), 1, timeout=FEED_BELL_TTL)
            campaign = (Campaign.objects.for_tenant(tenant_id).select_related("phone_number", "template", "tenant")
                        .filter(pk=campaign_id).first())
            if campaign is None or campaign.status not in FEEDING:
                report.stopped = campaign.status if campaign else "missing"
                return report
            if in_quiet_hours(campaign):
                if not campaign.held:
                    with transaction.atomic():
                        hold_queued(campaign)
                report.stopped = "quiet_hours"
                return report
            if campaign.held:
                with transaction.atomic():
                    release_held(campaign)
            pace = effective_pace(campaign)
            lead = max(10, int(pace * LEAD_SECONDS))
            want = None
            if pace < campaign.phone_number.messages_per_second:
                # Slower than the number: the campaign's own bucket sets the pace.
                want = acquire(key=f"campaign:{campaign.pk}", rate=pace, want=max(1, min(FEED_BATCH, pace // 4)),
                               timeout=0.25)
            fed = feed_batch(campaign=campaign, lead=lead, want=want, cursor=cursor) if want != 0 else 0
            if _statistics_due(report.fed, report.fed + fed):
                analyze(Message, Conversation, CampaignRecipient, at_most_every=STATISTICS_INTERVAL)
            report.fed += fed
            report.batches += 1 if fed else 0
            if not fed:
                has_pending = CampaignRecipient.objects.for_tenant(tenant_id).filter(
                    campaign_id=campaign_id, status__in=[CampaignRecipient.Status.PENDING,
                                                         CampaignRecipient.Status.NEW]).exists()
                if not has_pending and campaign.planned_at is not None:
                    if time.monotonic() - last_reconcile > 1.0:
                        recipients_reconcile(campaign=campaign)
                        last_reconcile = time.monotonic()
                    if campaign_complete_if_done(campaign=campaign):
                        report.completed = True
                        return report
            if time.monotonic() >= deadline:
                report.stopped = "time_budget"
                return report
            if not fed:
                time.sleep(FEED_IDLE_SLEEP * (4 if campaign.planned_at else 1))
    finally:
        cache.delete(_feed_bell(campaign_id))
        if report.stopped == "time_budget":
            ring_feed(tenant_id=tenant_id, campaign_id=campaign_id)


# --- following the messages ----------------------------------------------------------------

def recipients_follow(*, tenant_id: int, updates: Iterable[tuple[int, str, int | None]]) -> None:
    """Recipients follow their messages: ``updates`` is ``(recipient id, status, error code)``
    for a whole batch of messages (one call per bulk write of the send pipeline). One conditional
    UPDATE per (status, code), under the forward-only rule; a spam-rate or ecosystem error
    (131048 / 131049) pauses the campaign."""
    groups: dict[tuple[str, int | None], list[int]] = {}
    for recipient_id, status, error_code in updates:
        if recipient_id:
            key = (status, error_code if status == statuses.FAILED else None)
            groups.setdefault(key, []).append(recipient_id)
    if not groups:
        return
    now = timezone.now()
    scoped = CampaignRecipient.objects.for_tenant(tenant_id)
    for (status, error_code), ids in groups.items():
        scoped.filter(id__in=ids, status__in=statuses.statuses_that_may_become(status)).update(
            status=status, error_code=error_code, updated_at=now)
    pausing = {code: ids for (status, code), ids in groups.items() if status == statuses.FAILED and code in PAUSE_CODES}
    for code, ids in pausing.items():
        campaign_ids = set(scoped.filter(id__in=ids).values_list("campaign_id", flat=True))
        for campaign in Campaign.objects.for_tenant(tenant_id).filter(pk__in=campaign_ids, status__in=FEEDING):
            from .services import campaign_pause_for_error

            campaign_pause_for_error(campaign=campaign, code=code)


def recipients_reconcile(*, campaign: Campaign) -> int:
    """Recipients still ``queued`` whose message moved on without them (for example a send the
    sweeper gave up on) take their message's status."""
    scoped = CampaignRecipient.objects.for_tenant(campaign.tenant_id)
    messages = Message.objects.for_tenant(campaign.tenant_id)
    changed = 0
    now = timezone.now()
    for status in (statuses.ACCEPTED, statuses.SENT, statuses.DELIVERED, statuses.READ, statuses.FAILED):
        lagging = scoped.filter(campaign_id=campaign.pk, status=CampaignRecipient.Status.QUEUED,
                                message__status=status)
        if status == statuses.FAILED:
            code = Subquery(messages.filter(campaign_recipient_id=OuterRef("pk")).values("error_code")[:1])
            changed += lagging.update(status=status, error_code=code, updated_at=now)
        else:
            changed += lagging.update(status=status, updated_at=now)
    return changed


def campaign_complete_if_done(*, campaign: Campaign) -> bool:
    """Complete a running, fully planned campaign once no recipient waits for anything."""
    from apps.webhooks.services import event_emit

    from .selectors import campaign_event_data

    if campaign.status != Campaign.Status.RUNNING or campaign.planned_at is None:
        return False
    if CampaignRecipient.objects.for_tenant(campaign.tenant_id).filter(
            campaign_id=campaign.pk, status__in=ACTIVE_RECIPIENT).exists():
        return False
    now = timezone.now()
    with transaction.atomic():
        done = Campaign.objects.for_tenant(campaign.tenant_id).filter(
            pk=campaign.pk, status=Campaign.Status.RUNNING).update(status=Campaign.Status.COMPLETED,
                                                                   completed_at=now, updated_at=now)
        if done:
            campaign.status, campaign.completed_at = Campaign.Status.COMPLETED, now
            event_emit(tenant=campaign.tenant, type="campaign.completed", data=campaign_event_data(campaign))
    return bool(done)
