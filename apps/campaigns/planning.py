"""Planning: turn a campaign's audience into CampaignRecipient rows, in bulk, a chunk at a time.

Two sources, in this order:

1. the audience (tags AND segment AND filters, OR'ed with explicit contact ids), walked by
   contact id in chunks; the highest id done is kept on the campaign (``planning_cursor``) in the
   same transaction as the chunk's rows, so a killed planner resumes where it stopped, and the
   unique (campaign, contact) constraint makes a replayed chunk a no-op;
2. explicit recipients (API list or CSV upload) stored as ``new`` rows at creation: each chunk
   normalizes the numbers, creates missing contacts in bulk and settles every row.

Every recipient ends ``pending`` with its resolved variables, or ``skipped`` with a reason:
opted out, invalid number, duplicate (the same contact twice in this campaign), missing variable,
or already messaged by this campaign (the contact's earlier row in this campaign has a message).
Nothing is held in memory beyond one chunk. A planning task works for a few seconds and rings
again; feeding starts as soon as the first chunk is committed. Planning keeps about
PLAN_AHEAD_SECONDS of sending ahead of the feeder and no more: a large audience is planned
alongside the sending instead of all at once, so the two do not fight over the CPU at the start.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.contacts.models import Contact, Segment
from apps.contacts.selectors import contact_filter
from apps.core.bulk import insert_rows
from apps.core.exceptions import ApplicationError
from apps.core.phone import InvalidPhoneNumber, normalize_wa_id
from apps.core.statistics import analyze
from apps.tenants.models import Tenant

from .dispatch import MESSAGED, STATISTICS_INTERVAL
from .models import Campaign, CampaignRecipient
from .variables import resolve_variables, template_variables

logger = logging.getLogger(__name__)

CHUNK = 1000
STOP = -1  # a step's answer when the campaign may no longer be planned
PLAN_BELL_TTL = 30
PLAN_AHEAD_SECONDS = 20  # of the campaign's pace, planned and waiting to be fed
PLANNABLE = (Campaign.Status.PLANNING, Campaign.Status.PAUSED)
SKIP = CampaignRecipient.SkipReason
_CONTACT_FIELDS = ("id", "wa_id", "name", "profile_name", "attributes", "opt_in_status")


def _plan_bell(campaign_id: int) -> str:
    return f"parley:campaign-plan:{campaign_id}"


def ring_plan(*, tenant_id: int, campaign_id: int) -> None:
    from .tasks import campaign_plan_task

    def ring() -> None:
        if cache.add(_plan_bell(campaign_id), 1, timeout=PLAN_BELL_TTL):
            campaign_plan_task.apply_async(kwargs={"tenant_id": tenant_id, "campaign_id": campaign_id})

    transaction.on_commit(ring)


def audience_queryset(*, tenant: Tenant, audience: dict) -> QuerySet[Contact]:
    """The audience's contacts, unordered: tags AND segment AND filters, OR the explicit ids."""
    audience = audience or {}
    narrowing: list[QuerySet] = []
    if audience.get("segment_id"):
        segment = Segment.objects.for_tenant(tenant).filter(pk=audience["segment_id"]).first()
        if segment is None:
            raise ApplicationError("The campaign's segment was deleted.", code="segment_not_found")
        narrowing.append(contact_filter(tenant=tenant, filters=segment.filters))
    filters = dict(audience.get("filters") or {})
    if audience.get("tags"):
        filters["tags"] = [*(filters.get("tags") or []), *audience["tags"]]
    if filters:
        narrowing.append(contact_filter(tenant=tenant, filters=filters))
    contacts = Contact.objects.for_tenant(tenant)
    ids = list(audience.get("contact_ids") or ())
    if not narrowing:
        return contacts.filter(pk__in=ids) if ids else contacts.none()
    qs = narrowing[0].prefetch_related(None).order_by()
    for other in narrowing[1:]:
        qs = qs.filter(pk__in=other.order_by().values("pk"))
    if ids:
        # Filters narrow, explicit contacts add: one level of subquery, never nested ones.
        return contacts.filter(Q(pk__in=qs.values("pk")) | Q(pk__in=ids))
    return qs


def _valid_number(wa_id: str) -> str | None:
    try:
        normalized = normalize_wa_id(wa_id)
    except InvalidPhoneNumber:
        return None
    return normalized


@dataclass
class PlanReport:
    chunks: int = 0
    planned: int = 0
    done: bool = False
    ahead: bool = False  # stopped because enough is planned for now


def _far_enough_ahead(campaign: Campaign) -> bool:
    """Whether PLAN_AHEAD_SECONDS of the campaign's pace are planned and not yet fed."""
    from .dispatch import effective_pace

    ahead = PLAN_AHEAD_SECONDS * effective_pace(campaign)
    waiting = CampaignRecipient.objects.for_tenant(campaign.tenant_id).filter(
        campaign_id=campaign.pk, status=CampaignRecipient.Status.PENDING).values_list("id", flat=True)[:ahead]
    return len(waiting) >= ahead


def _lock_plannable(campaign: Campaign) -> bool:
    # FOR NO KEY UPDATE where there is one: a pause or a cancel (FOR UPDATE) waits for the
    # chunk, while the feeder (FOR KEY SHARE, see dispatch._lock_campaign) goes on meanwhile.
    qs = Campaign.objects.for_tenant(campaign.tenant_id).filter(pk=campaign.pk)
    if connection.features.has_select_for_update:
        qs = qs.select_for_update(no_key=connection.features.has_select_for_no_key_update)
    row = qs.values_list("status", "planned_at").first()
    return bool(row) and row[0] in PLANNABLE and row[1] is None


def _plan_audience_chunk(*, campaign: Campaign, names: list[str]) -> int | None:
    """Plan the audience contacts of the next id range: how many (0 when the range holds none),
    None when every contact has been walked, STOP when the campaign may not be planned."""
    tenant_id = campaign.tenant_id
    with transaction.atomic():
        if not _lock_plannable(campaign):
            return STOP
        cursor = Campaign.objects.for_tenant(tenant_id).values_list("planning_cursor", flat=True).get(pk=campaign.pk)
        # Walk the tenant's contacts by id range, a chunk at a time, and apply the audience
        # within the range: every query is bounded whatever the filter (or its selectivity).
        audience = audience_queryset(tenant=campaign.tenant, audience=campaign.audience)
        window = list(Contact.objects.for_tenant(tenant_id).filter(pk__gt=cursor).order_by("pk")
                      .values_list("pk", flat=True)[:CHUNK])
        if not window:
            return None
        upper = window[-1]
        contacts = list(audience.filter(pk__gt=cursor, pk__lte=upper).order_by("pk").only(*_CONTACT_FIELDS))
        Campaign.objects.for_tenant(tenant_id).filter(pk=campaign.pk).update(planning_cursor=upper)
        if not contacts:
            return 0  # nothing of the audience in this range
        rows = []
        for contact in contacts:
            rows.append(_settle(campaign=campaign, names=names, contact=contact, to=contact.wa_id, given=None))
        now = timezone.now()
        insert_rows(CampaignRecipient, [{"contact_id": r.contact_id, "to": r.to, "status": r.status,
                                         "skip_reason": r.skip_reason, "variables": r.variables} for r in rows],
                    {"tenant_id": tenant_id, "campaign_id": campaign.pk, "created_at": now, "updated_at": now},
                    ignore_conflicts=True)  # a contact already planned (a retried chunk) stays as it was
        return len(rows)


def _settle(*, campaign: Campaign, names: list[str], contact: Contact, to: str, given: dict | None,
            row: CampaignRecipient | None = None) -> CampaignRecipient:
    row = row or CampaignRecipient(tenant_id=campaign.tenant_id, campaign_id=campaign.pk)
    row.contact_id, row.to = contact.pk, to
    if _valid_number(contact.wa_id) is None:
        row.status, row.skip_reason, row.variables = CampaignRecipient.Status.SKIPPED, SKIP.INVALID_NUMBER, {}
        return row
    if contact.opt_in_status == Contact.OptIn.OPTED_OUT:
        row.status, row.skip_reason, row.variables = CampaignRecipient.Status.SKIPPED, SKIP.OPTED_OUT, {}
        return row
    values, missing = resolve_variables(template=campaign.template, mapping=campaign.variable_mapping,
                                        contact=contact, given=given, names=names)
    if missing:
        row.status, row.skip_reason = CampaignRecipient.Status.SKIPPED, SKIP.MISSING_VARIABLE
        row.variables = {"missing": missing}
        return row
    row.status, row.skip_reason, row.variables = CampaignRecipient.Status.PENDING, "", values
    return row


def _plan_explicit_chunk(*, campaign: Campaign, names: list[str]) -> int | None:
    """Settle the next chunk of explicit (``new``) recipients; None when there are none left,
    STOP when the campaign may not be planned."""
    tenant_id = campaign.tenant_id
    scoped = CampaignRecipient.objects.for_tenant(tenant_id)
    with transaction.atomic():
        if not _lock_plannable(campaign):
            return STOP
        rows = list(scoped.filter(campaign_id=campaign.pk, status=CampaignRecipient.Status.NEW)
                    .order_by("id").only("id", "to", "variables")[:CHUNK])
        if not rows:
            return None
        numbers = {row.pk: _valid_number(row.to) for row in rows}
        wa_ids = {n for n in numbers.values() if n}
        contacts_qs = Contact.objects.for_tenant(tenant_id)
        known = {c.wa_id: c for c in contacts_qs.filter(wa_id__in=wa_ids).only(*_CONTACT_FIELDS)}
        new = [Contact(tenant_id=tenant_id, wa_id=w) for w in wa_ids if w not in known]
        if new:
            contacts_qs.bulk_create(new, ignore_conflicts=True)
            known.update({c.wa_id: c for c in contacts_qs.filter(wa_id__in=[c.wa_id for c in new])
                          .only(*_CONTACT_FIELDS)})
        earlier = dict(scoped.filter(campaign_id=campaign.pk, contact_id__in=[c.pk for c in known.values()])
                       .values_list("contact_id", "status"))
        seen: set[int] = set()
        now = timezone.now()
        for row in rows:
            row.updated_at = now
            wa_id = numbers[row.pk]
            if wa_id is None:
                row.status, row.skip_reason, row.contact_id = CampaignRecipient.Status.SKIPPED, SKIP.INVALID_NUMBER, None
                continue
            contact = known[wa_id]
            if contact.pk in earlier or contact.pk in seen:
                row.status, row.contact_id = CampaignRecipient.Status.SKIPPED, None
                row.skip_reason = SKIP.ALREADY_MESSAGED if earlier.get(contact.pk) in MESSAGED else SKIP.DUPLICATE
                row.to = wa_id
                continue
            seen.add(contact.pk)
            _settle(campaign=campaign, names=names, contact=contact, to=wa_id, given=row.variables, row=row)
        scoped.bulk_update(rows, ["status", "skip_reason", "contact", "to", "variables", "updated_at"],
                           batch_size=CHUNK)
        return len(rows)


def campaign_plan(*, tenant_id: int, campaign_id: int, time_budget: float | None = None) -> PlanReport:
    """Plan chunk after chunk for at most ``time_budget`` seconds; ring again when not done."""
    from .services import campaign_fail

    report = PlanReport()
    budget = settings.PARLEY_DISPATCH_TIME_BUDGET if time_budget is None else time_budget
    deadline = time.monotonic() + budget
    campaign = (Campaign.objects.for_tenant(tenant_id).select_related("tenant", "template", "phone_number")
                .filter(pk=campaign_id).first())
    try:
        if campaign is None or campaign.status not in PLANNABLE or campaign.planned_at is not None:
            report.done = True
            return report
        names = template_variables(template=campaign.template)
        for step in (_plan_audience_chunk, _plan_explicit_chunk):
            while True:
                cache.set(_plan_bell(campaign_id), 1, timeout=PLAN_BELL_TTL)  # the lease, while alive
                if _far_enough_ahead(campaign):
                    report.ahead = True
                    return report  # the campaign tick rings planning again every second
                try:
                    planned = step(campaign=campaign, names=names)
                except ApplicationError as exc:  # the audience cannot be resolved any more
                    campaign_fail(campaign=campaign, reason=exc.message)
                    report.done = True
                    return report
                if planned is None:
                    break
                if planned == STOP:  # cancelled, or planned by another task
                    report.done = True
                    return report
                report.chunks += 1
                report.planned += planned
                if report.chunks in STATISTICS_AFTER_CHUNKS:
                    analyze(CampaignRecipient, at_most_every=STATISTICS_INTERVAL)
                if time.monotonic() >= deadline:
                    return report
        _finish(campaign)
        report.done = True
        return report
    finally:
        cache.delete(_plan_bell(campaign_id))
        if not report.done and not report.ahead:
            ring_plan(tenant_id=tenant_id, campaign_id=campaign_id)


# The feeder starts while planning goes on, and PostgreSQL's own analyze comes a minute or more
# after a bulk insert (apps/core/statistics.py): until then the planner believes the campaign has
# a handful of recipients and picks plans that walk all of them. Fresh statistics after the first
# chunks of each planning task (unless another task refreshed them in the last
# STATISTICS_INTERVAL seconds), and at the end.
STATISTICS_AFTER_CHUNKS = (1, 10, 50)


def _finish(campaign: Campaign) -> None:
    from .dispatch import ring_feed

    analyze(CampaignRecipient)
    now = timezone.now()
    with transaction.atomic():
        scoped = Campaign.objects.for_tenant(campaign.tenant_id).filter(pk=campaign.pk, planned_at__isnull=True)
        scoped.filter(status=Campaign.Status.PLANNING).update(status=Campaign.Status.RUNNING, planned_at=now,
                                                              updated_at=now)
        scoped.filter(status=Campaign.Status.PAUSED).update(planned_at=now, updated_at=now)
        ring_feed(tenant_id=campaign.tenant_id, campaign_id=campaign.pk)
