"""Provider webhook intake: store the raw callback (before acknowledging it), then process it
in a task with pure parsers and the conversation services."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.conversations.services import contact_opt_event_apply, message_receive, message_statuses_apply
from apps.core.scoping import tenant_scope
from apps.message_templates.services import template_status_apply
from apps.phone_numbers.models import PhoneNumber

from .events import InboundMessage, OptEvent, OtherEvent, StatusUpdate, TemplateStatusUpdate
from .models import WebhookEvent
from .webhooks import meta_route_keys, parse_gupshup, parse_gupshup_partner, parse_meta

logger = logging.getLogger(__name__)

PARSERS = {
    WebhookEvent.Provider.META_CLOUD: parse_meta,
    WebhookEvent.Provider.GUPSHUP: parse_gupshup,
    WebhookEvent.Provider.GUPSHUP_PARTNER: parse_gupshup_partner,
}
KEPT_HEADERS = ("Content-Type", "User-Agent", "X-Hub-Signature-256", "X-Forwarded-For")
MAX_PROCESS_ATTEMPTS = 8


def meta_numbers_for(payload: dict) -> list[PhoneNumber]:
    """The numbers a Meta payload speaks for (phone number ids, or the WABA for account-level
    fields). Looked up across tenants: the tenant is not known until the signature is checked."""
    keys = meta_route_keys(payload)
    phone_ids = {k for k in keys if not k.startswith("waba:")}
    wabas = {k.removeprefix("waba:") for k in keys if k.startswith("waba:")}
    condition = Q(phone_number_id__in=phone_ids) | Q(waba_id__in=wabas) if wabas else Q(phone_number_id__in=phone_ids)
    if not phone_ids and not wabas:
        return []
    return list(PhoneNumber.all_tenants.filter(provider=PhoneNumber.Provider.META_CLOUD).filter(condition)
                .exclude(status=PhoneNumber.Status.DISABLED).order_by("id"))


def meta_signature_valid(*, body: bytes, header: str, numbers: list[PhoneNumber]) -> PhoneNumber | None:
    """The number whose app secret signed ``body`` (X-Hub-Signature-256), or None."""
    if not header.startswith("sha256="):
        return None
    given = header.removeprefix("sha256=").strip()
    tried: set[str] = set()
    for number in numbers:
        secret = (number.credentials or {}).get("app_secret", "")
        if not secret or secret in tried:
            continue
        tried.add(secret)
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, given):
            return number
    return None


def webhook_event_record(*, provider: str, body: bytes, headers: dict, phone_number: PhoneNumber) -> WebhookEvent | None:
    """Store the callback exactly as it came. Returns None when the same body was already stored
    (providers retry); queues processing once the row is committed."""
    from .tasks import webhook_event_process_task

    kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
    try:
        with transaction.atomic():
            event = WebhookEvent.all_tenants.create(
                tenant_id=phone_number.tenant_id, phone_number=phone_number, provider=provider, headers=kept,
                body=body, body_sha256=hashlib.sha256(body).hexdigest(),
            )
            transaction.on_commit(lambda: webhook_event_process_task.delay(event_id=event.pk))
    except IntegrityError:
        return None
    return event


@dataclass
class ProcessReport:
    inbound: int = 0
    duplicates: int = 0
    statuses_applied: int = 0
    statuses_ignored: int = 0
    statuses_unmatched: int = 0
    templates: int = 0
    opt_events: int = 0
    other: int = 0
    unrouted: list[str] = field(default_factory=list)


def _route(event: WebhookEvent, route_key: str, cache: dict[str, PhoneNumber | None]) -> PhoneNumber | None:
    if event.provider != WebhookEvent.Provider.META_CLOUD:
        return event.phone_number  # the URL token named the number
    if route_key not in cache:
        numbers = PhoneNumber.objects.for_tenant(event.tenant_id).filter(provider=PhoneNumber.Provider.META_CLOUD)
        cache[route_key] = (numbers.filter(phone_number_id=route_key).first()
                            or numbers.filter(waba_id=route_key).order_by("id").first())
    return cache[route_key]


def webhook_event_process(*, event_id: int) -> ProcessReport | None:
    """Parse and apply one stored callback, all of it or none of it (so a retry is safe)."""
    event = WebhookEvent.all_tenants.select_related("phone_number").filter(pk=event_id).first()
    if event is None or event.processed_at is not None or event.tenant_id is None:
        return None
    report = ProcessReport()
    try:
        with tenant_scope(event.tenant_id), transaction.atomic():
            payload = json.loads(bytes(event.body))
            events = PARSERS[event.provider](payload)
            cache: dict[str, PhoneNumber | None] = {}
            statuses: dict[int, tuple[PhoneNumber, list[StatusUpdate]]] = {}
            for item in events:
                if isinstance(item, OtherEvent):
                    report.other += 1
                    continue
                number = _route(event, item.route_key, cache)
                if number is None:
                    report.unrouted.append(item.route_key)
                    continue
                if isinstance(item, StatusUpdate):
                    statuses.setdefault(number.pk, (number, []))[1].append(item)
                elif isinstance(item, InboundMessage):
                    if message_receive(phone_number=number, inbound=item) is None:
                        report.duplicates += 1
                    else:
                        report.inbound += 1
                elif isinstance(item, TemplateStatusUpdate):
                    template_status_apply(phone_number=number, update=item)
                    report.templates += 1
                elif isinstance(item, OptEvent):
                    contact_opt_event_apply(phone_number=number, event=item)
                    report.opt_events += 1
                else:
                    report.other += 1
            for number, updates in statuses.values():
                applied = message_statuses_apply(phone_number=number, updates=updates)
                report.statuses_applied += applied.applied
                report.statuses_ignored += applied.ignored
                report.statuses_unmatched += applied.unmatched
            now = timezone.now()
            touched = {n.pk for n in cache.values() if n} | ({event.phone_number_id} if event.phone_number_id else set())
            PhoneNumber.objects.for_tenant(event.tenant_id).filter(pk__in=touched).update(last_webhook_at=now)
            WebhookEvent.all_tenants.filter(pk=event.pk).update(processed_at=now, error="", attempts=F("attempts") + 1)
    except Exception as exc:
        WebhookEvent.all_tenants.filter(pk=event.pk).update(
            error=f"{type(exc).__name__}: {exc}"[:2000], attempts=F("attempts") + 1)
        raise
    if report.unrouted:
        logger.warning("webhook event %s: no number for route keys %s", event.pk, sorted(set(report.unrouted)))
    return report


def webhook_events_sweep() -> int:
    """Re-enqueue stored callbacks that were never processed (a lost task or a crash)."""
    from .tasks import webhook_event_process_task

    stale = timezone.now() - timedelta(seconds=settings.PARLEY_WEBHOOK_EVENT_STALE_SECONDS)
    ids = list(WebhookEvent.all_tenants.filter(processed_at__isnull=True, tenant__isnull=False, received_at__lt=stale,
                                               attempts__lt=MAX_PROCESS_ATTEMPTS)
               .order_by("received_at").values_list("id", flat=True)[:1000])
    for event_id in ids:
        webhook_event_process_task.delay(event_id=event_id)
    return len(ids)

