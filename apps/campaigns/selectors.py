"""Campaign reads: lists, the funnel, recipients (keyset pages), the rate series, audience
previews and the webhook payloads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncSecond
from django.http import Http404

from apps.conversations.models import Message
from apps.providers.errors import explain
from apps.tenants.models import Tenant

from .models import Campaign, CampaignRecipient

R = CampaignRecipient.Status
# Recipient states that need nothing more from the campaign (the message left, or never will).
FINAL = (R.ACCEPTED, R.SENT, R.DELIVERED, R.READ, R.FAILED, R.SKIPPED, R.CANCELLED)


def campaign_list(*, tenant: Tenant) -> QuerySet[Campaign]:
    return (Campaign.objects.for_tenant(tenant).select_related("template", "phone_number")
            .order_by("-created_at", "-id"))


def access_campaign(*, tenant: Tenant, campaign_id: Any) -> Campaign:
    """The tenant's campaign; another tenant's id (or no such id) is a 404."""
    try:
        pk = int(campaign_id)
    except (TypeError, ValueError) as exc:
        raise Http404("No campaign matches the given query.") from exc
    campaign = (Campaign.objects.for_tenant(tenant).select_related("template", "phone_number", "tenant")
                .filter(pk=pk).first())
    if campaign is None:
        raise Http404("No campaign matches the given query.")
    return campaign


def campaign_funnel(*, campaign: Campaign) -> dict:
    """Counts by stage. The stages are cumulative: ``sent`` counts every recipient whose message
    the provider accepted (accepted, sent, delivered or read), ``delivered`` includes read.
    ``queued`` is handed to the send pipeline and not answered yet; ``pending`` is planned (or,
    for an explicit list, not yet checked) and not yet handed over."""
    scoped = CampaignRecipient.objects.for_tenant(campaign.tenant_id).filter(campaign_id=campaign.pk)
    by_status = dict(scoped.order_by().values_list("status").annotate(n=Count("id")))
    count = lambda *names: sum(by_status.get(n, 0) for n in names)  # noqa: E731
    targeted = sum(by_status.values())
    replied = scoped.filter(replied_at__isnull=False).count()
    provider = campaign.phone_number.provider
    failed_by_code = []
    for code, n in (scoped.filter(status=R.FAILED).order_by().values_list("error_code")
                    .annotate(n=Count("id")).order_by("-n")):
        if code is None:
            title, explanation = "Not sent", "The message could not be sent; see the message for details."
        else:
            info = explain(provider, code)
            title, explanation = info.title, info.explanation
        failed_by_code.append({"code": code, "title": title, "explanation": explanation, "count": n})
    labels = dict(CampaignRecipient.SkipReason.choices)
    skipped_by_reason = [
        {"reason": reason, "label": labels.get(reason, reason or "Skipped"), "count": n}
        for reason, n in (scoped.filter(status=R.SKIPPED).order_by().values_list("skip_reason")
                          .annotate(n=Count("id")).order_by("-n"))
    ]
    final = count(*FINAL)
    return {
        "targeted": targeted,
        "pending": count(R.NEW, R.PENDING),
        "queued": count(R.QUEUED, R.SENDING),
        "accepted": count(R.ACCEPTED),
        "sent": count(R.ACCEPTED, R.SENT, R.DELIVERED, R.READ),
        "delivered": count(R.DELIVERED, R.READ),
        "read": count(R.READ),
        "replied": replied,
        "failed": count(R.FAILED),
        "skipped": count(R.SKIPPED),
        "cancelled": count(R.CANCELLED),
        "failed_by_code": failed_by_code,
        "skipped_by_reason": skipped_by_reason,
        "progress": (final / targeted) if targeted else (1.0 if campaign.status == Campaign.Status.COMPLETED else 0.0),
    }


def campaign_recipient_list(*, campaign: Campaign, status: str | None = None, skip_reason: str | None = None,
                            error_code: int | None = None, after_id: int | None = None,
                            limit: int = 50) -> list[CampaignRecipient]:
    """A page of recipients in id order after ``after_id`` (keyset: pass the last id back)."""
    qs = (CampaignRecipient.objects.for_tenant(campaign.tenant_id).filter(campaign_id=campaign.pk)
          .select_related("contact").order_by("id"))
    if status == "sent":  # the funnel's cumulative stages
        qs = qs.filter(status__in=[R.ACCEPTED, R.SENT, R.DELIVERED, R.READ])
    elif status == "delivered":
        qs = qs.filter(status__in=[R.DELIVERED, R.READ])
    elif status == "replied":
        qs = qs.filter(replied_at__isnull=False)
    elif status == "pending":
        qs = qs.filter(status__in=[R.NEW, R.PENDING])
    elif status == "queued":
        qs = qs.filter(status__in=[R.QUEUED, R.SENDING])
    elif status:
        qs = qs.filter(status=status)
    if skip_reason:
        qs = qs.filter(skip_reason=skip_reason)
    if error_code is not None:
        qs = qs.filter(error_code=error_code)
    if after_id:
        qs = qs.filter(id__gt=after_id)
    return list(qs[:max(1, min(int(limit), 500))])


def campaign_rate_series(*, campaign: Campaign, buckets: int = 60) -> list[dict]:
    """Messages accepted by the provider over time: one point per second while the campaign ran
    for at most ``buckets`` seconds, otherwise ``buckets`` equal slices; ``count`` is the number in
    the slice and ``per_second`` its average rate."""
    per_second = list(
        Message.objects.for_tenant(campaign.tenant_id)
        .filter(campaign_recipient__campaign_id=campaign.pk, accepted_at__isnull=False)
        .annotate(t=TruncSecond("accepted_at")).order_by().values_list("t").annotate(n=Count("id")).order_by("t"))
    if not per_second:
        return []
    start, end = per_second[0][0], per_second[-1][0]
    span = int((end - start).total_seconds()) + 1
    buckets = max(1, int(buckets))
    width = max(1, -(-span // buckets))  # ceiling
    series: list[dict] = []
    totals: dict[int, int] = {}
    for t, n in per_second:
        index = int((t - start).total_seconds()) // width
        totals[index] = totals.get(index, 0) + n
    for index in range(-(-span // width)):
        count = totals.get(index, 0)
        series.append({"t": start + timedelta(seconds=index * width), "count": count,
                       "per_second": round(count / width, 1)})
    return series


def campaign_audience_preview(*, tenant: Tenant, audience: dict) -> dict:
    """How many contacts an audience names now (before skips) and up to five of them."""
    from .planning import audience_queryset
    from .services import _clean_audience

    qs = audience_queryset(tenant=tenant, audience=_clean_audience(tenant=tenant, audience=audience))
    return {"count": qs.count(), "sample": list(qs.order_by("-id")[:5])}


def campaign_event_data(campaign: Campaign) -> dict:
    """The ``data`` of campaign.started / campaign.completed webhooks."""
    data = {
        "id": campaign.pk, "name": campaign.name, "status": campaign.status,
        "phone_number_id": campaign.phone_number_id,
        "template": {"name": campaign.template.name, "language": campaign.template.language},
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "completed_at": campaign.completed_at.isoformat() if campaign.completed_at else None,
    }
    if campaign.status == Campaign.Status.COMPLETED:
        funnel = campaign_funnel(campaign=campaign)
        data["funnel"] = {k: funnel[k] for k in ("targeted", "sent", "delivered", "read", "replied", "failed",
                                                 "skipped")}
    return data


def campaign_list_counts(*, tenant: Tenant, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Recipient counts of several campaigns in two grouped queries (not one funnel each):
    targeted, the cumulative stages sent / delivered / read, replied, failed, skipped,
    cancelled, and ``final`` (recipients in a final state)."""
    R = CampaignRecipient.Status
    stage = {R.ACCEPTED: ("sent",), R.SENT: ("sent",), R.DELIVERED: ("sent", "delivered"),
             R.READ: ("sent", "delivered", "read"), R.FAILED: ("failed",), R.SKIPPED: ("skipped",),
             R.CANCELLED: ("cancelled",)}
    final = {R.ACCEPTED, R.SENT, R.DELIVERED, R.READ, R.FAILED, R.SKIPPED, R.CANCELLED}
    counts = {pk: {"targeted": 0, "sent": 0, "delivered": 0, "read": 0, "replied": 0, "failed": 0, "skipped": 0,
                   "cancelled": 0, "final": 0} for pk in campaign_ids}
    if not campaign_ids:
        return counts
    scoped = CampaignRecipient.objects.for_tenant(tenant).filter(campaign_id__in=campaign_ids).order_by()
    for campaign_id, status, n in scoped.values_list("campaign_id", "status").annotate(n=Count("id")):
        row = counts[campaign_id]
        row["targeted"] += n
        for key in stage.get(status, ()):
            row[key] += n
        if status in final:
            row["final"] += n
    for campaign_id, n in (scoped.filter(replied_at__isnull=False).values_list("campaign_id")
                           .annotate(n=Count("id"))):
        counts[campaign_id]["replied"] = n
    return counts
