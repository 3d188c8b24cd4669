"""Campaign writes: create (validated), launch, schedule, pause, resume, cancel, test send, CSV
audiences. Planning lives in planning.py, feeding the send pipeline in dispatch.py.

Lifecycle::

    draft --launch--> scheduled --due--> planning --planned--> running --all final--> completed
                                           |   ^                  |  ^
                                           v   |                  v  |
                                           paused <---------------+--+   (pause / resume / 131048)
    draft, scheduled, planning, running, paused --cancel--> cancelled
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.contacts.models import Contact, Segment
from apps.conversations.models import Message
from apps.core.exceptions import ApplicationError
from apps.core.phone import InvalidPhoneNumber, normalize_wa_id
from apps.message_templates.models import MessageTemplate
from apps.phone_numbers.models import PhoneNumber
from apps.providers.errors import explain
from apps.tenants.models import Tenant

from .dispatch import FEEDING, cancel_queued, hold_queued, release_held, ring_feed
from .models import Campaign, CampaignRecipient
from .variables import (
    mapping_problems,
    resolve_variables,
    template_content,
    template_variables,
    unsupported_template_reason,
)

MAX_RECIPIENTS = 100_000
RECIPIENT_INSERT_BATCH = 2000
AUDIENCE_KEYS = frozenset({"tags", "segment_id", "filters", "contact_ids"})
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
PHONE_COLUMNS = ("phone", "to", "wa_id", "number", "phone_number", "mobile", "whatsapp")


def _state_error(campaign: Campaign, action: str) -> ApplicationError:
    return ApplicationError(f"A {campaign.get_status_display().lower()} campaign cannot be {action}.",
                            code="campaign_state", http_status=409,
                            details={"status": campaign.status, "action": action})


# --- validation -----------------------------------------------------------------------------

def _check_template(*, number: PhoneNumber, template: MessageTemplate) -> None:
    if template.tenant_id != number.tenant_id:
        raise ApplicationError("No such template in this workspace.", code="template_not_found", http_status=404)
    if template.waba_id != number.waba_id:
        raise ApplicationError(f"Template {template.name!r} belongs to another WhatsApp Business Account than "
                               f"the number {number}.", code="template_not_approved",
                               details={"template_waba_id": template.waba_id, "number_waba_id": number.waba_id})
    if template.status != MessageTemplate.Status.APPROVED:
        raise ApplicationError(f"Template {template.name!r} ({template.language}) is "
                               f"{template.get_status_display().lower()}, not approved.",
                               code="template_not_approved", details={"status": template.status})
    reason = unsupported_template_reason(template=template)
    if reason:
        raise ApplicationError(reason, code="template_not_supported")


def _clean_pace(*, number: PhoneNumber, messages_per_second: int | None) -> int | None:
    if messages_per_second in (None, ""):
        return None
    try:
        pace = int(messages_per_second)
    except (TypeError, ValueError) as exc:
        raise ApplicationError("The pace must be a whole number of messages per second.",
                               code="invalid_pace") from exc
    if pace < 1 or pace > number.messages_per_second:
        raise ApplicationError(f"The pace must be between 1 and the number's budget of "
                               f"{number.messages_per_second} messages/s.", code="invalid_pace",
                               details={"max": number.messages_per_second})
    return pace


def _clean_quiet_hours(quiet_hours: dict | None) -> dict:
    if not quiet_hours:
        return {}
    if not isinstance(quiet_hours, dict) or not quiet_hours.get("start") or not quiet_hours.get("end"):
        raise ApplicationError('Quiet hours need a start and an end, such as {"start": "21:00", "end": "08:00"}.',
                               code="invalid_quiet_hours")
    start, end = str(quiet_hours["start"]).strip(), str(quiet_hours["end"]).strip()
    for value in (start, end):
        if not _TIME.match(value):
            raise ApplicationError(f"{value!r} is not a time of day (HH:MM).", code="invalid_quiet_hours")
    if start == end:
        raise ApplicationError("Quiet hours must not start and end at the same time.", code="invalid_quiet_hours")
    return {"start": start, "end": end}


def tenant_zone(tenant: Tenant) -> ZoneInfo:
    try:
        return ZoneInfo(tenant.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _clean_schedule(*, tenant: Tenant, scheduled_at: datetime | None) -> datetime | None:
    """An aware datetime in the future; a naive one is read in the tenant's time zone."""
    if scheduled_at is None:
        return None
    if timezone.is_naive(scheduled_at):
        scheduled_at = scheduled_at.replace(tzinfo=tenant_zone(tenant))
    if scheduled_at <= timezone.now():
        local = timezone.localtime(scheduled_at, tenant_zone(tenant))
        raise ApplicationError(f"The schedule ({local:%Y-%m-%d %H:%M} {tenant.time_zone}) is in the past.",
                               code="invalid_schedule")
    return scheduled_at


def _clean_audience(*, tenant: Tenant, audience: dict | None) -> dict:
    audience = dict(audience or {})
    unknown = set(audience) - AUDIENCE_KEYS
    if unknown:
        raise ApplicationError(f"Unknown audience key(s): {', '.join(sorted(unknown))}.", code="invalid_audience")
    cleaned: dict[str, Any] = {}
    if audience.get("tags"):
        if not isinstance(audience["tags"], list):
            raise ApplicationError("audience.tags must be a list of tag names.", code="invalid_audience")
        cleaned["tags"] = [str(t) for t in audience["tags"]]
    if audience.get("segment_id") not in (None, ""):
        segment = Segment.objects.for_tenant(tenant).filter(pk=_int(audience["segment_id"])).first()
        if segment is None:
            raise ApplicationError("No such segment in this workspace.", code="segment_not_found", http_status=404)
        cleaned["segment_id"] = segment.pk
    if audience.get("filters"):
        from apps.contacts.selectors import contact_filter

        contact_filter(tenant=tenant, filters=audience["filters"])  # raises on an unknown shape
        cleaned["filters"] = audience["filters"]
    if audience.get("contact_ids"):
        ids = audience["contact_ids"]
        if not isinstance(ids, list):
            raise ApplicationError("audience.contact_ids must be a list of contact ids.", code="invalid_audience")
        cleaned["contact_ids"] = sorted({_int(i) for i in ids} - {-1})
    return cleaned


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _clean_recipients(recipients: list[dict] | None) -> list[tuple[str, dict]]:
    if recipients is None:
        return []
    if not isinstance(recipients, list):
        raise ApplicationError("recipients must be a list of {to, variables}.", code="invalid_recipients")
    if len(recipients) > MAX_RECIPIENTS:
        raise ApplicationError(f"At most {MAX_RECIPIENTS:,} recipients per campaign.", code="too_many_recipients",
                               details={"max": MAX_RECIPIENTS, "given": len(recipients)})
    cleaned = []
    for index, row in enumerate(recipients):
        if not isinstance(row, dict) or not str(row.get("to") or "").strip():
            raise ApplicationError(f"Recipient {index + 1} has no number (to).", code="invalid_recipients",
                                   details={"index": index})
        variables = row.get("variables") or {}
        if isinstance(variables, list):  # positional values in order
            variables = {str(i): v for i, v in enumerate(variables, start=1)}
        if not isinstance(variables, dict):
            raise ApplicationError(f"Recipient {index + 1}: variables must be an object or a list.",
                                   code="invalid_recipients", details={"index": index})
        cleaned.append((str(row["to"]).strip()[:64],
                        {str(k): "" if v is None else str(v)[:1024] for k, v in variables.items()}))
    return cleaned


# --- create and launch ----------------------------------------------------------------------

@transaction.atomic
def campaign_create(*, tenant: Tenant, name: str, phone_number: PhoneNumber, template: MessageTemplate,
                    audience: dict | None, variable_mapping: dict | None, messages_per_second: int | None = None,
                    quiet_hours: dict | None = None, scheduled_at: datetime | None = None, created_by=None,
                    recipients: list[dict] | None = None) -> Campaign:
    """A validated draft. ``recipients`` (an explicit list, from the API or a CSV upload) are
    stored as given and checked by planning; an audience is resolved at planning time."""
    name = str(name or "").strip()
    if not name:
        raise ApplicationError("Give the campaign a name.", code="invalid_name")
    if phone_number is None or phone_number.tenant_id != tenant.pk:
        raise ApplicationError("No such phone number in this workspace.", code="phone_number_not_found",
                               http_status=404)
    if phone_number.status == PhoneNumber.Status.DISABLED:
        raise ApplicationError(f"The number {phone_number} is disabled.", code="phone_number_not_found")
    if template is None:
        raise ApplicationError("Choose an approved template.", code="template_not_approved")
    _check_template(number=phone_number, template=template)
    mapping = variable_mapping or {}
    rows = _clean_recipients(recipients)
    if not isinstance(mapping, dict):
        raise ApplicationError("The variable mapping must be an object.", code="invalid_variable_mapping")
    if not rows:
        # Every contact of an audience is filled from the mapping, so it must cover everything.
        problems = mapping_problems(template=template, mapping=mapping)
        if problems:
            raise ApplicationError(" ".join(problems), code="invalid_variable_mapping",
                                   details={"problems": problems, "variables": template_variables(template=template)})
    else:
        # Explicit recipients bring their own values; what the mapping does give must make sense.
        covered = {k: v for k, v in mapping.items() if k in template_variables(template=template)}
        problems = [p for p in mapping_problems(template=template, mapping=covered) if "has no value" not in p]
        if problems:
            raise ApplicationError(" ".join(problems), code="invalid_variable_mapping", details={"problems": problems})
    cleaned_audience = _clean_audience(tenant=tenant, audience=audience)
    if not cleaned_audience and not rows:
        raise ApplicationError("Choose an audience: tags, a segment, filters, contacts or a list of numbers.",
                               code="empty_audience")
    campaign = Campaign.objects.for_tenant(tenant).create(
        tenant=tenant, name=name[:200], phone_number=phone_number, template=template, audience=cleaned_audience,
        variable_mapping=mapping, messages_per_second=_clean_pace(number=phone_number,
                                                                  messages_per_second=messages_per_second),
        quiet_hours=_clean_quiet_hours(quiet_hours), scheduled_at=_clean_schedule(tenant=tenant,
                                                                                 scheduled_at=scheduled_at),
        created_by=created_by if getattr(created_by, "pk", None) else None,
    )
    scoped = CampaignRecipient.objects.for_tenant(tenant)
    for start in range(0, len(rows), RECIPIENT_INSERT_BATCH):
        scoped.bulk_create([
            CampaignRecipient(tenant=tenant, campaign=campaign, to=to, variables=variables,
                              status=CampaignRecipient.Status.NEW)
            for to, variables in rows[start:start + RECIPIENT_INSERT_BATCH]
        ])
    return campaign


@transaction.atomic
def campaign_launch(*, campaign: Campaign) -> Campaign:
    """Scheduled when ``scheduled_at`` is in the future; otherwise planning starts now."""
    locked = Campaign.objects.for_tenant(campaign.tenant_id).select_for_update().get(pk=campaign.pk)
    if locked.status != Campaign.Status.DRAFT:
        raise _state_error(locked, "launched")
    _check_template(number=locked.phone_number, template=locked.template)
    if locked.scheduled_at and locked.scheduled_at > timezone.now():
        locked.status = Campaign.Status.SCHEDULED
        locked.save(update_fields=["status", "updated_at"])
        return locked
    return campaign_start(campaign=locked)


def campaign_start(*, campaign: Campaign) -> Campaign:
    """Planning begins (and feeding with it); ``campaign.started`` goes out."""
    from apps.webhooks.services import event_emit

    from .planning import ring_plan
    from .selectors import campaign_event_data

    now = timezone.now()
    with transaction.atomic():
        started = Campaign.objects.for_tenant(campaign.tenant_id).filter(
            pk=campaign.pk, status__in=[Campaign.Status.DRAFT, Campaign.Status.SCHEDULED],
        ).update(status=Campaign.Status.PLANNING, started_at=now, updated_at=now)
        if not started:
            campaign.refresh_from_db()
            return campaign
        campaign.status, campaign.started_at = Campaign.Status.PLANNING, now
        event_emit(tenant=campaign.tenant, type="campaign.started", data=campaign_event_data(campaign))
        ring_plan(tenant_id=campaign.tenant_id, campaign_id=campaign.pk)
        ring_feed(tenant_id=campaign.tenant_id, campaign_id=campaign.pk)
    return campaign


def campaigns_start_due(*, now: datetime | None = None) -> int:
    """Beat: start every scheduled campaign whose time has come (the database is the record)."""
    now = now or timezone.now()
    count = 0
    for campaign in (Campaign.objects.unscoped().filter(status=Campaign.Status.SCHEDULED, scheduled_at__lte=now)
                     .select_related("tenant")):
        campaign_start(campaign=campaign)
        count += 1
    return count


def campaigns_tick() -> dict:
    """Beat, every second: start due campaigns, keep a planner and a feeder ringing for every
    active campaign (the bells are deduplicated, so this is cheap), hold quiet ones."""
    from .dispatch import in_quiet_hours
    from .planning import ring_plan

    started = campaigns_start_due()
    rung = 0
    active = (Campaign.objects.unscoped().filter(status__in=[*FEEDING, Campaign.Status.PAUSED])
              .select_related("tenant"))
    # A send that was being answered while the campaign was paused or cancelled may come back
    # to the queue for a retry afterwards: hold (or cancel) it too.
    recently = timezone.now() - timedelta(hours=1)
    for campaign in Campaign.objects.unscoped().filter(
            Q(status=Campaign.Status.PAUSED) | Q(status=Campaign.Status.CANCELLED, completed_at__gte=recently)):
        with transaction.atomic():
            if campaign.status == Campaign.Status.PAUSED:
                hold_queued(campaign)
            else:
                cancel_queued(campaign)
    for campaign in active:
        if campaign.planned_at is None and campaign.status in (Campaign.Status.PLANNING, Campaign.Status.PAUSED):
            ring_plan(tenant_id=campaign.tenant_id, campaign_id=campaign.pk)
        if campaign.status in FEEDING:
            if in_quiet_hours(campaign):
                if not campaign.held:
                    with transaction.atomic():
                        hold_queued(campaign)
                continue
            ring_feed(tenant_id=campaign.tenant_id, campaign_id=campaign.pk)
            rung += 1
    return {"started": started, "rung": rung}


# --- pause, resume, cancel ------------------------------------------------------------------

def _locked(campaign: Campaign) -> Campaign:
    return Campaign.objects.for_tenant(campaign.tenant_id).select_for_update().select_related(
        "tenant", "phone_number").get(pk=campaign.pk)


@transaction.atomic
def campaign_pause(*, campaign: Campaign, reason: str = "") -> Campaign:
    """Stop feeding and hold the queued messages nobody has claimed; at most the batch being
    posted right now still goes out."""
    locked = _locked(campaign)
    if locked.status not in FEEDING:
        raise _state_error(locked, "paused")
    locked.status = Campaign.Status.PAUSED
    locked.status_reason = str(reason or "")[:2000]
    locked.save(update_fields=["status", "status_reason", "updated_at"])
    hold_queued(locked)
    return locked


def campaign_pause_for_error(*, campaign: Campaign, code: int) -> Campaign | None:
    """A provider error that concerns the whole number (131048 spam rate, 131049 ecosystem limit)
    pauses the campaign, saying why; a person resumes it once the number's quality allows."""
    info = explain("meta_cloud", code)
    reason = f"Paused automatically: {info.title} (error {code}). {info.explanation}"
    try:
        with transaction.atomic():
            paused = campaign_pause(campaign=campaign, reason=reason)
            Campaign.objects.for_tenant(campaign.tenant_id).filter(pk=campaign.pk).update(paused_error_code=code)
            paused.paused_error_code = code
            return paused
    except ApplicationError:
        return None  # already paused, cancelled or completed: nothing to stop


@transaction.atomic
def campaign_resume(*, campaign: Campaign) -> Campaign:
    from .planning import ring_plan

    locked = _locked(campaign)
    if locked.status != Campaign.Status.PAUSED:
        raise _state_error(locked, "resumed")
    locked.status = Campaign.Status.RUNNING if locked.planned_at else Campaign.Status.PLANNING
    locked.status_reason = ""
    locked.paused_error_code = None
    locked.save(update_fields=["status", "status_reason", "paused_error_code", "updated_at"])
    release_held(locked)
    if locked.planned_at is None:
        ring_plan(tenant_id=locked.tenant_id, campaign_id=locked.pk)
    ring_feed(tenant_id=locked.tenant_id, campaign_id=locked.pk)
    return locked


@transaction.atomic
def campaign_cancel(*, campaign: Campaign) -> Campaign:
    locked = _locked(campaign)
    if locked.status in (Campaign.Status.COMPLETED, Campaign.Status.CANCELLED, Campaign.Status.FAILED):
        raise _state_error(locked, "cancelled")
    now = timezone.now()
    locked.status = Campaign.Status.CANCELLED
    locked.completed_at = now
    locked.save(update_fields=["status", "completed_at", "updated_at"])
    cancel_queued(locked)
    return locked


def campaign_fail(*, campaign: Campaign, reason: str) -> None:
    Campaign.objects.for_tenant(campaign.tenant_id).filter(pk=campaign.pk).exclude(
        status__in=[Campaign.Status.COMPLETED, Campaign.Status.CANCELLED]).update(
        status=Campaign.Status.FAILED, status_reason=reason[:2000], completed_at=timezone.now(),
        updated_at=timezone.now())


# --- test send and CSV ----------------------------------------------------------------------

def campaign_send_test(*, tenant: Tenant, phone_number: PhoneNumber, template: MessageTemplate,
                       variable_mapping: dict, to: str, contact: Contact | None = None) -> Message:
    """Send the campaign's message to one number now, filled for ``contact`` (or the contact with
    that number, when there is one). Every send policy applies."""
    from apps.conversations.services import message_send

    if phone_number is None or phone_number.tenant_id != tenant.pk:
        raise ApplicationError("No such phone number in this workspace.", code="phone_number_not_found",
                               http_status=404)
    _check_template(number=phone_number, template=template)
    try:
        wa_id = normalize_wa_id(to)
    except InvalidPhoneNumber as exc:
        raise ApplicationError(exc.message, code="invalid_recipient", details=exc.details) from exc
    if contact is not None and contact.tenant_id != tenant.pk:
        contact = None
    sample = contact or Contact.objects.for_tenant(tenant).filter(wa_id=wa_id).first()
    values, missing = resolve_variables(template=template, mapping=variable_mapping or {}, contact=sample)
    if missing:
        raise ApplicationError(f"No value for {', '.join('{{' + m + '}}' for m in missing)}: map it or give a "
                               "fallback.", code="missing_variable", details={"missing": missing})
    content, _ = template_content(template=template, values=values)
    return message_send(tenant=tenant, to=wa_id, type="template", content=content, phone_number=phone_number)


def campaign_recipients_csv_parse(*, tenant: Tenant, file) -> list[dict]:
    """Rows of a CSV upload as ``[{"to", "variables"}]``: one column holds the number (phone, to,
    wa_id, number, mobile…), every other column is a variable named by its header (``1``,
    ``first_name``…)."""
    raw = file.read() if hasattr(file, "read") else file
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ApplicationError("The file is not UTF-8 text. Save it as CSV (UTF-8).", code="invalid_csv") from exc
    text = str(raw or "")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if not header:
        raise ApplicationError("The file is empty.", code="invalid_csv")
    names = [h.strip() for h in header]
    lowered = [h.lower() for h in names]
    phone_index = next((lowered.index(c) for c in PHONE_COLUMNS if c in lowered), None)
    if phone_index is None:
        raise ApplicationError(f"No phone column: name one column {', '.join(PHONE_COLUMNS[:3])}….",
                               code="invalid_csv", details={"columns": names})
    rows = []
    for line_number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(rows) >= MAX_RECIPIENTS:
            raise ApplicationError(f"At most {MAX_RECIPIENTS:,} rows per upload.", code="too_many_recipients")
        to = cells[phone_index].strip() if phone_index < len(cells) else ""
        if not to:
            raise ApplicationError(f"Line {line_number} has no phone number.", code="invalid_csv",
                                   details={"line": line_number})
        variables = {names[i]: cells[i].strip() for i in range(len(names))
                     if i != phone_index and i < len(cells) and names[i] and cells[i].strip()}
        rows.append({"to": to, "variables": variables})
    if not rows:
        raise ApplicationError("The file has a header but no rows.", code="invalid_csv")
    return rows
