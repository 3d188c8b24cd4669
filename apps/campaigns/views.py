"""The marketer's campaign pages: the list, the stepwise create form with a live audience count
and message preview, and the results page with live progress, the funnel, error reasons, the
send rate and the recipients. Thin: services write, selectors read, errors show inline."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.db.models import Count
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh

from apps.contacts.forms import OPERATOR_LABELS
from apps.contacts.models import AttributeDefinition, Contact
from apps.contacts.selectors import segment_list, tag_list
from apps.core.exceptions import ApplicationError
from apps.message_templates.rendering import PLACEHOLDER
from apps.providers.errors import explain
from apps.tenants.decorators import TenantHttpRequest, tenant_member_required

from . import services
from .forms import (
    SOURCE_CHOICES,
    CampaignInput,
    approved_templates,
    default_mapping,
    field_for,
    number_choices,
    parse_campaign_form,
    template_examples,
)
from .models import Campaign, CampaignRecipient
from .selectors import (
    access_campaign,
    campaign_audience_preview,
    campaign_funnel,
    campaign_list,
    campaign_list_counts,
    campaign_rate_series,
    campaign_recipient_list,
)
from .variables import resolve_variables

S = Campaign.Status
ACTIVE = (S.SCHEDULED, S.PLANNING, S.RUNNING, S.PAUSED)
FINAL = (S.COMPLETED, S.CANCELLED, S.FAILED)
LIST_TABS = (
    ("", "All", None),
    ("active", "Active", ACTIVE),
    ("draft", "Drafts", (S.DRAFT,)),
    ("completed", "Completed", (S.COMPLETED,)),
    ("stopped", "Cancelled or failed", (S.CANCELLED, S.FAILED)),
)
LIST_SIZE = 50
RECIPIENT_PAGE = 50
EXPORT_PAGE = 500
PREVIEW_SAMPLES = 3
# How often the results page asks for fresh figures, by status (seconds); final ones do not.
POLL_SECONDS = {S.PLANNING: 2, S.RUNNING: 2, S.PAUSED: 5, S.SCHEDULED: 5}
AFTERGLOW = timedelta(hours=24)
AFTERGLOW_POLL_SECONDS = 30
RECIPIENT_STATUS_FILTERS = (
    ("", "Every status"), ("pending", "Pending"), ("queued", "Queued"), ("sent", "Sent (any later state)"),
    ("delivered", "Delivered or read"), ("read", "Read"), ("replied", "Replied"), ("failed", "Failed"),
    ("skipped", "Skipped"), ("cancelled", "Cancelled"),
)


def _render(request: TenantHttpRequest, template_name: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    with timezone.override(request.tenant.time_zone):
        return render(request, template_name, {"section": "campaigns", **context}, status=status)


def _fragment(request: TenantHttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def _detail_url(campaign: Campaign) -> str:
    return reverse("campaigns:detail", kwargs={"tenant_slug": campaign.tenant.slug, "campaign_id": campaign.pk})


def _int(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 19 else None


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


# --- list ---------------------------------------------------------------------------------

def _list_counts(*, tenant, campaign_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The listed campaigns' counts (one grouped read for all of them), with the percentages
    and progress-bar segments the cards show."""
    counts = campaign_list_counts(tenant=tenant, campaign_ids=campaign_ids)
    for row in counts.values():
        row["progress"] = _pct(row["final"], row["targeted"])
        row["delivered_pct"] = _pct(row["delivered"], row["sent"])
        row["read_pct"] = _pct(row["read"], row["sent"])
        row["segments"] = _segments(row)
    return counts


def _segments(n: dict[str, int]) -> list[dict[str, Any]]:
    """The stacked progress bar: read, delivered, sent, failed, skipped, as % of the targeted."""
    whole = n["targeted"]
    return [{"key": key, "label": label, "pct": _pct(value, whole), "value": value} for key, label, value in (
        ("read", "Read", n["read"]), ("delivered", "Delivered", n["delivered"] - n["read"]),
        ("sent", "Sent", n["sent"] - n["delivered"]), ("failed", "Failed", n["failed"]),
        ("skipped", "Skipped", n["skipped"] + n.get("cancelled", 0))) if value > 0]


@require_GET
@tenant_member_required("campaigns")
def campaign_list_page(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = request.tenant
    current = request.GET.get("status", "")
    tabs = {key: statuses for key, _, statuses in LIST_TABS}
    if current not in tabs:
        current = ""
    by_status = dict(campaign_list(tenant=tenant).order_by().values_list("status").annotate(n=Count("id")))
    qs = campaign_list(tenant=tenant)
    if tabs[current]:
        qs = qs.filter(status__in=tabs[current])
    rows = list(qs.select_related("created_by")[:LIST_SIZE])
    counts = _list_counts(tenant=tenant, campaign_ids=[c.pk for c in rows])
    tab_list = [{"key": key, "label": label,
                 "count": sum(by_status.values()) if statuses is None else sum(by_status.get(s, 0) for s in statuses)}
                for key, label, statuses in LIST_TABS]
    return _render(request, "campaigns/list.html", {
        "campaigns": [{"campaign": c, "counts": counts[c.pk], "live": c.status in (S.PLANNING, S.RUNNING)}
                      for c in rows],
        "tabs": tab_list, "current": current, "total": sum(by_status.values()),
        "any_live": any(c.status in (S.PLANNING, S.RUNNING) for c in rows),
    })


# --- create -------------------------------------------------------------------------------

def _form_context(request: TenantHttpRequest, got: CampaignInput) -> dict[str, Any]:
    tenant = request.tenant
    numbers = list(number_choices(tenant=tenant))
    if got.phone_number is None and len(numbers) == 1:
        got.phone_number = numbers[0]
    templates = list(approved_templates(tenant=tenant, number=got.phone_number))
    return {
        "got": got, "numbers": numbers, "templates": templates,
        "segments": list(segment_list(tenant=tenant)), "tags": list(tag_list(tenant=tenant)),
        "definitions": list(AttributeDefinition.objects.for_tenant(tenant).order_by("label")),
        "operators": OPERATOR_LABELS.items(),
        "attribute_rows": got.attribute_rows or [{"key": "", "op": "eq", "value": ""}],
        "mapping_rows": _mapping_rows(got),
        "sources": SOURCE_CHOICES, "time_zone": tenant.time_zone or "UTC",
        "now_local": timezone.localtime(timezone.now(), services.tenant_zone(tenant)),
    }


def _mapping_rows(got: CampaignInput) -> list[dict[str, Any]]:
    if got.template is None:
        return []
    examples = template_examples(got.template)
    guess = default_mapping(got.template)
    rows = []
    for name in got.variables:
        rule = got.mapping.get(name) or guess.get(name, {"source": "literal"})
        where = "header" if name.startswith("header.") else "button" if name.startswith("button.") else "body"
        label = name.split(".", 1)[1] if "." in name else name
        if name == "header.media":
            label = "media link"
        rows.append({"name": name, "label": label, "where": where, "rule": rule, "example": examples.get(name, "")})
    return rows


@require_http_methods(["GET", "POST"])
@tenant_member_required("campaigns")
def campaign_new(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = request.tenant
    if request.method == "GET":
        got = parse_campaign_form(tenant=tenant, data=request.GET)
        got.errors.clear()
        if got.template is not None:
            # Variables the form has no row for yet (a template was just chosen) get a first guess.
            guess = default_mapping(got.template)
            got.mapping = {name: got.mapping[name] if f"map-{name}-source" in request.GET else guess[name]
                           for name in got.variables}
        context = _form_context(request, got)
        target = request.htmx.target if _fragment(request) else None
        if target == "template-field":
            return _render(request, "campaigns/new.html#number-change", context)
        if target == "mapping-section":
            response = _render(request, "campaigns/new.html#mapping", context)
            response["HX-Trigger-After-Settle"] = "campaign-form-changed"
            return response
        return _render(request, "campaigns/new.html", context)

    got = parse_campaign_form(tenant=tenant, data=request.POST, files=request.FILES)
    if got.audience_kind == "csv" and got.recipients is None and "audience" not in got.errors:
        got.add_error("audience", "Choose a CSV file with a phone column (and one column per variable).")
    if got.valid:
        try:
            campaign = services.campaign_create(
                tenant=tenant, name=got.name, phone_number=got.phone_number, template=got.template,
                audience=got.audience if got.audience_kind == "contacts" else {},
                variable_mapping=got.mapping, messages_per_second=got.messages_per_second,
                quiet_hours=got.quiet_hours, scheduled_at=got.scheduled_at if got.schedule == "later" else None,
                created_by=request.user, recipients=got.recipients)
        except ApplicationError as exc:
            got.add_error(field_for(exc), exc.message)
        else:
            if request.POST.get("action") == "draft":
                messages.success(request, f"“{campaign.name}” is saved as a draft. Launch it when you are ready.")
            else:
                try:
                    campaign = services.campaign_launch(campaign=campaign)
                except ApplicationError as exc:
                    messages.error(request, f"Saved as a draft but not launched: {exc.message}")
                else:
                    messages.success(request, _launched_words(campaign, tenant))
            url = _detail_url(campaign)
            return HttpResponseClientRedirect(url) if _fragment(request) else HttpResponseRedirect(url)
    context = _form_context(request, got)
    return _render(request, "campaigns/new.html", context)


def _launched_words(campaign: Campaign, tenant) -> str:
    if campaign.status == S.SCHEDULED and campaign.scheduled_at:
        local = timezone.localtime(campaign.scheduled_at, services.tenant_zone(tenant))
        return f"“{campaign.name}” is scheduled for {local:%b %-d, %Y at %H:%M} ({tenant.time_zone})."
    return f"“{campaign.name}” is sending."


def _parts(text: str, values: dict[str, str], prefix: str = "") -> list[dict[str, Any]]:
    """``text`` cut at its placeholders, each filled from ``values`` (or marked missing)."""
    parts: list[dict[str, Any]] = []
    position = 0
    for match in PLACEHOLDER.finditer(text or ""):
        if match.start() > position:
            parts.append({"text": text[position:match.start()]})
        name = prefix + match.group(1)
        value = values.get(name, "")
        parts.append({"text": value or match.group(0), "var": name, "missing": not value})
        position = match.end()
    if position < len(text or ""):
        parts.append({"text": text[position:]})
    return parts


def _reachable_first(contacts: list[Contact]) -> list[Contact]:
    """Sample contacts who will receive it first; opted-out ones (skipped) last."""
    return sorted(contacts, key=lambda c: c.opt_in_status == Contact.OptIn.OPTED_OUT)


def _bubble(template, values: dict[str, str]) -> dict[str, Any]:
    """The template as this recipient will read it: header, body, footer and buttons."""
    bubble: dict[str, Any] = {"header": [], "header_media": "", "body": [], "footer": "", "buttons": []}
    for component in template.components or []:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            if str(component.get("format", "TEXT")).upper() == "TEXT":
                bubble["header"] = _parts(str(component.get("text", "")), values, "header.")
            else:
                bubble["header_media"] = str(component.get("format", "")).lower()
        elif kind == "BODY":
            bubble["body"] = _parts(str(component.get("text", "")), values)
        elif kind == "FOOTER":
            bubble["footer"] = str(component.get("text", ""))
        elif kind == "BUTTONS":
            bubble["buttons"] = [str(b.get("text", "")) for b in component.get("buttons") or [] if isinstance(b, dict)]
    return bubble


@require_POST
@tenant_member_required("campaigns")
def campaign_preview(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """The live side panel: how many contacts the audience names, a few of them, and the
    message as each of them will read it."""
    tenant = request.tenant
    got = parse_campaign_form(tenant=tenant, data=request.POST, files=request.FILES)
    audience: dict[str, Any] = {"count": None, "sample": [], "error": "", "words": got.audience_words}
    samples: list[dict[str, Any]] = []  # {"label", "contact", "given"}
    if got.audience_kind == "csv":
        if got.errors.get("audience"):
            audience["error"] = got.errors["audience"][0]
        elif got.recipients is not None:
            audience["count"] = len(got.recipients)
            wa_ids = [r["to"] for r in got.recipients[:PREVIEW_SAMPLES]]
            known = {c.wa_id: c for c in Contact.objects.for_tenant(tenant).filter(wa_id__in=[
                "".join(ch for ch in w if ch.isdigit()) for w in wa_ids])}
            for row in got.recipients[:PREVIEW_SAMPLES]:
                contact = known.get("".join(ch for ch in row["to"] if ch.isdigit()))
                samples.append({"label": contact.display_name if contact else row["to"], "to": row["to"],
                                "contact": contact, "given": row["variables"]})
    elif got.errors.get("audience"):
        audience["error"] = got.errors["audience"][0]
    elif got.audience:
        try:
            found = campaign_audience_preview(tenant=tenant, audience=got.audience)
        except ApplicationError as exc:
            audience["error"] = exc.message
        else:
            audience["count"], audience["sample"] = found["count"], _reachable_first(found["sample"])
            for contact in audience["sample"][:PREVIEW_SAMPLES]:
                samples.append({"label": contact.display_name, "to": f"+{contact.wa_id}", "contact": contact,
                                "given": None})
    previews = []
    if got.template is not None:
        if not samples:
            samples = [{"label": "Example contact", "to": "", "contact": None, "given": None, "example": True}]
        for sample in samples:
            values, missing = resolve_variables(template=got.template, mapping=got.mapping,
                                                contact=sample["contact"], given=sample["given"])
            previews.append({**sample, "bubble": _bubble(got.template, values), "missing": missing})
    pace = None
    if got.phone_number is not None:
        pace = min(got.messages_per_second or got.phone_number.messages_per_second,
                   got.phone_number.messages_per_second)
    return _render(request, "campaigns/new.html#live-preview", {
        "got": got, "audience": audience, "previews": previews, "pace": pace,
        "eta": _eta(audience["count"], pace) if audience["count"] and pace else "",
    })


def _eta(count: int, pace: int) -> str:
    seconds = count / max(pace, 1)
    if seconds < 60:
        return "under a minute"
    if seconds < 3600:
        minutes = round(seconds / 60)
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    hours = seconds / 3600
    return f"about {hours:.1f} hours"


@require_POST
@tenant_member_required("campaigns")
def campaign_test_send(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = request.tenant
    got = parse_campaign_form(tenant=tenant, data=request.POST)
    to = request.POST.get("test_to", "").strip()
    result: dict[str, Any] = {"to": to}
    if got.phone_number is None:
        result["error"] = "Choose the number to send from first."
    elif got.template is None:
        result["error"] = "Choose an approved template first."
    elif not to:
        result["error"] = "Type the WhatsApp number to send the test to, with its country code."
    else:
        try:
            message = services.campaign_send_test(tenant=tenant, phone_number=got.phone_number,
                                                  template=got.template, variable_mapping=got.mapping, to=to)
        except ApplicationError as exc:
            result["error"] = exc.message
        else:
            result["message"] = message
    return _render(request, "campaigns/new.html#test-result", {"result": result})


# --- results ------------------------------------------------------------------------------

def _funnel_rows(funnel: dict[str, Any]) -> list[dict[str, Any]]:
    targeted = funnel["targeted"]
    rows = [
        ("targeted", "Targeted", funnel["targeted"], "Everyone the audience named"),
        ("sent", "Sent", funnel["sent"], "Accepted by WhatsApp"),
        ("delivered", "Delivered", funnel["delivered"], "Reached the phone"),
        ("read", "Read", funnel["read"], "Opened (when read receipts are on)"),
        ("replied", "Replied", funnel["replied"], "Wrote back within the window"),
        ("failed", "Failed", funnel["failed"], "Refused by WhatsApp or the provider"),
        ("skipped", "Skipped", funnel["skipped"], "Not sent, by Parley’s checks"),
    ]
    return [{"key": key, "label": label, "value": value, "hint": hint, "pct": _pct(value, targeted)}
            for key, label, value, hint in rows]


def _chart(series: list[dict], pace: int) -> dict[str, Any] | None:
    """Bars for messages/s over time, sized for a 600×140 SVG, with the pace as a dashed line."""
    if not series:
        return None
    width, height, top = 600.0, 120.0, 8.0
    peak = max(point.get("per_second", point["count"]) for point in series)
    scale_max = max(peak, 1) * 1.15
    slot = width / len(series)
    bars = []
    for index, point in enumerate(series):
        rate = point.get("per_second", point["count"])
        h = (height - top) * rate / scale_max
        bars.append({"x": round(index * slot + slot * 0.12, 2), "y": round(height - h, 2),
                     "w": round(max(slot * 0.76, 1), 2), "h": round(h, 2), "rate": rate, "t": point["t"]})
    pace_y = height - (height - top) * pace / scale_max if pace <= scale_max else None
    span = (series[-1]["t"] - series[0]["t"]).total_seconds() + (
        (series[1]["t"] - series[0]["t"]).total_seconds() if len(series) > 1 else 1)
    total = sum(point["count"] for point in series)
    return {"bars": bars, "peak": peak, "pace": pace, "pace_y": round(pace_y, 2) if pace_y is not None else None,
            "start": series[0]["t"], "end": series[-1]["t"], "average": round(total / span, 1) if span else total,
            "width": int(width), "height": int(height)}


def _poll_seconds(campaign: Campaign) -> int | None:
    """Fast while sending; then slowly for a day after completion, while delivery reports and
    replies still arrive; never for cancelled, failed or draft campaigns."""
    if campaign.status == S.COMPLETED:
        recent = campaign.completed_at and timezone.now() - campaign.completed_at < AFTERGLOW
        return AFTERGLOW_POLL_SECONDS if recent else None
    return POLL_SECONDS.get(campaign.status)


def _live_context(campaign: Campaign) -> dict[str, Any]:
    from .dispatch import effective_pace

    funnel = campaign_funnel(campaign=campaign)
    if campaign.status in (S.DRAFT, S.SCHEDULED):
        ready = _ready(campaign, funnel)
        pace = effective_pace(campaign)
        return {"campaign": campaign, "funnel": funnel, "poll": _poll_seconds(campaign), "is_final": False,
                "not_started": True, "pace": pace, "eta": _eta(ready["expected"], pace) if ready["expected"] else "",
                **ready}
    series = campaign_rate_series(campaign=campaign, buckets=60)
    handled = funnel["targeted"] - funnel["pending"] - funnel["queued"]
    duration = ""
    if campaign.started_at and campaign.completed_at:
        duration = _duration((campaign.completed_at - campaign.started_at).total_seconds())
    return {
        "duration": duration,
        "campaign": campaign, "funnel": funnel, "funnel_rows": _funnel_rows(funnel),
        "progress_pct": round(funnel["progress"] * 100, 1), "handled": max(handled, 0),
        "segments": _segments(funnel),
        "chart": _chart(series, effective_pace(campaign)), "pace": effective_pace(campaign),
        "poll": _poll_seconds(campaign), "is_final": campaign.status in FINAL,
        "failed_total": funnel["failed"], "skipped_total": funnel["skipped"],
    }


def _ready(campaign: Campaign, funnel: dict[str, Any]) -> dict[str, Any]:
    """Before it starts: how many it would reach now, and the message for one of them."""
    sample, given, count, error = None, None, funnel["targeted"], ""
    if count:  # an uploaded list: its first row
        first = campaign_recipient_list(campaign=campaign, limit=1)
        if first:
            sample, given = first[0].contact, first[0].variables
    else:
        try:
            found = campaign_audience_preview(tenant=campaign.tenant, audience=campaign.audience)
        except ApplicationError as exc:
            error = exc.message
        else:
            count = found["count"]
            sample = next(iter(_reachable_first(found["sample"])), None)
    values, missing = resolve_variables(template=campaign.template, mapping=campaign.variable_mapping,
                                        contact=sample, given=given)
    return {"expected": count, "audience_error": error, "sample": sample,
            "bubble": _bubble(campaign.template, values), "missing": missing}


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _recipient_filters(request: TenantHttpRequest) -> dict[str, Any]:
    status = request.GET.get("status", "")
    if status not in dict(RECIPIENT_STATUS_FILTERS):
        status = ""
    reason = request.GET.get("skip_reason", "")
    if reason not in CampaignRecipient.SkipReason.values:
        reason = ""
    code_text = request.GET.get("error_code", "").strip()
    code = int(code_text) if code_text.lstrip("-").isdigit() and len(code_text) < 10 else None
    return {"status": status, "skip_reason": reason, "error_code": code}


def _recipient_rows(campaign: Campaign, filters: dict[str, Any], after: int | None) -> tuple[list[dict], int | None]:
    rows = campaign_recipient_list(campaign=campaign, status=filters["status"] or None,
                                   skip_reason=filters["skip_reason"] or None, error_code=filters["error_code"],
                                   after_id=after, limit=RECIPIENT_PAGE + 1)
    more = len(rows) > RECIPIENT_PAGE
    rows = rows[:RECIPIENT_PAGE]
    titles: dict[int, str] = {}
    out = []
    for r in rows:
        title = ""
        if r.error_code is not None:
            if r.error_code not in titles:
                titles[r.error_code] = explain(campaign.phone_number.provider, r.error_code).title
            title = titles[r.error_code]
        out.append({"r": r, "name": r.contact.display_name if r.contact_id else "",
                    "number": r.contact.wa_id if r.contact_id else r.to, "error_title": title})
    return out, (rows[-1].pk if more and rows else None)


def _recipients_query(filters: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in filters.items() if v not in (None, "")})


@require_GET
@tenant_member_required("campaigns")
def campaign_detail(request: TenantHttpRequest, tenant_slug: str, campaign_id: int) -> HttpResponse:
    campaign = access_campaign(tenant=request.tenant, campaign_id=campaign_id)
    filters = _recipient_filters(request)
    rows, next_cursor = _recipient_rows(campaign, filters, None)
    context = _live_context(campaign)
    context.update({
        "rows": rows, "next_cursor": next_cursor, "filters": filters, "filters_query": _recipients_query(filters),
        "status_filters": RECIPIENT_STATUS_FILTERS, "skip_reasons": CampaignRecipient.SkipReason.choices,
        "audience_words": _audience_words(campaign), "created_by": campaign.created_by,
    })
    return _render(request, "campaigns/detail.html", context)


def _audience_words(campaign: Campaign) -> list[str]:
    from apps.contacts.forms import describe_filters
    from apps.contacts.models import Segment

    audience = campaign.audience or {}
    words = []
    if audience.get("segment_id"):
        segment = Segment.objects.for_tenant(campaign.tenant_id).filter(pk=audience["segment_id"]).first()
        words.append(f"segment “{segment.name}”" if segment else "a deleted segment")
    if audience.get("tags"):
        words.append("tagged " + " + ".join(audience["tags"]))
    words += describe_filters(audience.get("filters"))
    if audience.get("contact_ids"):
        words.append(f"{len(audience['contact_ids'])} chosen contacts")
    return words or ["an uploaded list of numbers"]


@require_GET
@tenant_member_required("campaigns")
def campaign_progress(request: TenantHttpRequest, tenant_slug: str, campaign_id: int) -> HttpResponse:
    """The live part of the results page; it stops asking once the campaign is final."""
    campaign = access_campaign(tenant=request.tenant, campaign_id=campaign_id)
    return _render(request, "campaigns/detail.html#live", {**_live_context(campaign), "oob": True})


@require_GET
@tenant_member_required("campaigns")
def campaign_recipients(request: TenantHttpRequest, tenant_slug: str, campaign_id: int) -> HttpResponse:
    campaign = access_campaign(tenant=request.tenant, campaign_id=campaign_id)
    filters = _recipient_filters(request)
    after = _int(request.GET.get("after"))
    rows, next_cursor = _recipient_rows(campaign, filters, after)
    context = {"campaign": campaign, "rows": rows, "next_cursor": next_cursor, "filters": filters,
               "filters_query": _recipients_query(filters)}
    if after is not None:
        return _render(request, "campaigns/detail.html#recipient-rows", context)
    return _render(request, "campaigns/detail.html#recipients-table", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@tenant_member_required("campaigns")
def campaign_export(request: TenantHttpRequest, tenant_slug: str, campaign_id: int) -> StreamingHttpResponse:
    """Every recipient as CSV, read a keyset page at a time (memory stays flat)."""
    campaign = access_campaign(tenant=request.tenant, campaign_id=campaign_id)
    filters = _recipient_filters(request)
    provider = campaign.phone_number.provider
    zone = services.tenant_zone(request.tenant)
    writer = csv.writer(_Echo())

    def stamp(value) -> str:
        return timezone.localtime(value, zone).strftime("%Y-%m-%d %H:%M:%S") if value else ""

    def rows() -> Iterator[str]:
        yield writer.writerow(["recipient_id", "name", "number", "status", "skip_reason", "error_code", "error",
                               "replied_at", "updated_at"])
        after = None
        titles: dict[int, str] = {}
        while True:
            page = campaign_recipient_list(campaign=campaign, status=filters["status"] or None,
                                           skip_reason=filters["skip_reason"] or None,
                                           error_code=filters["error_code"], after_id=after, limit=EXPORT_PAGE)
            for r in page:
                if r.error_code is not None and r.error_code not in titles:
                    titles[r.error_code] = explain(provider, r.error_code).title
                yield writer.writerow([
                    r.pk, r.contact.display_name if r.contact_id else "", r.contact.wa_id if r.contact_id else r.to,
                    r.status, r.skip_reason, "" if r.error_code is None else r.error_code,
                    titles.get(r.error_code, "") if r.error_code is not None else "", stamp(r.replied_at),
                    stamp(r.updated_at)])
            if len(page) < EXPORT_PAGE:
                return
            after = page[-1].pk

    slug = "".join(ch if ch.isalnum() else "-" for ch in campaign.name.lower()).strip("-")[:60] or "campaign"
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-{slug}.csv"'
    return response


def _action(request: TenantHttpRequest, campaign_id: int, act, done) -> HttpResponse:
    """Run a state change; its refusal (``campaign_state``) is shown next to the buttons."""
    campaign = access_campaign(tenant=request.tenant, campaign_id=campaign_id)
    try:
        campaign = act(campaign)
    except ApplicationError as exc:
        if _fragment(request):
            context = _live_context(campaign)
            context["action_error"] = exc.message
            return _render(request, "campaigns/detail.html#actions", context, status=409)
        messages.error(request, exc.message)
        return HttpResponseRedirect(_detail_url(campaign))
    messages.success(request, done(campaign) if callable(done) else done)
    return HttpResponseClientRefresh() if _fragment(request) else HttpResponseRedirect(_detail_url(campaign))


@require_POST
@tenant_member_required("campaigns")
def campaign_launch(request: TenantHttpRequest, tenant_slug: str, campaign_id: int) -> HttpResponse:
    return _action(request, campaign_id, lambda c: services.campaign_launch(campaign=c),
                   lambda c: _launched_words(c, request.tenant))


@require_POST
@tenant_member_required("campaigns")
def campaign_pause(request: TenantHttpRequest, tenant_slug: str, campaign_id: int) -> HttpResponse:
    reason = request.POST.get("reason", "").strip()[:500] or f"Paused by {request.user.get_full_name() or request.user.email}"
    return _action(request, campaign_id, lambda c: services.campaign_pause(campaign=c, reason=reason),
                   "Paused. Messages already handed to WhatsApp still arrive; nothing new goes out.")


@require_POST
@tenant_member_required("campaigns")
def campaign_resume(request: TenantHttpRequest, tenant_slug: str, campaign_id: int) -> HttpResponse:
    return _action(request, campaign_id, lambda c: services.campaign_resume(campaign=c), "Resumed.")


@require_POST
@tenant_member_required("campaigns")
def campaign_cancel(request: TenantHttpRequest, tenant_slug: str, campaign_id: int) -> HttpResponse:
    return _action(request, campaign_id, lambda c: services.campaign_cancel(campaign=c),
                   "Cancelled. Nobody else will receive this campaign.")
