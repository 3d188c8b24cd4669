"""Provider webhook intake: store the raw callback (before acknowledging it), then process it
in a task with pure parsers and the conversation services."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
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
    kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
    try:
        with transaction.atomic():
            event = WebhookEvent.all_tenants.create(
                tenant_id=phone_number.tenant_id, phone_number=phone_number, provider=provider, headers=kept,
                body=body, body_sha256=hashlib.sha256(body).hexdigest(),
            )
            ring_webhook_processing()
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


def _apply_events(events: list[WebhookEvent], report: ProcessReport) -> None:
    """Apply stored callbacks of ONE tenant, in the caller's transaction and tenant scope.
    Statuses from every callback are gathered per number and applied in one bulk pass."""
    cache: dict[str, PhoneNumber | None] = {}
    statuses: dict[int, tuple[PhoneNumber, list[StatusUpdate]]] = {}
    touched: set[int] = set()
    for event in events:
        if event.phone_number_id:
            touched.add(event.phone_number_id)
        for item in PARSERS[event.provider](json.loads(bytes(event.body))):
            if isinstance(item, OtherEvent):
                report.other += 1
                continue
            number = _route(event, item.route_key, cache)
            if number is None:
                report.unrouted.append(item.route_key)
                continue
            touched.add(number.pk)
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
    tenant_id = events[0].tenant_id
    PhoneNumber.objects.for_tenant(tenant_id).filter(pk__in=touched).update(last_webhook_at=now)
    WebhookEvent.all_tenants.filter(pk__in=[e.pk for e in events]).update(
        processed_at=now, error="", attempts=F("attempts") + 1)


def webhook_event_process(*, event_id: int) -> ProcessReport | None:
    """Parse and apply one stored callback, all of it or none of it (so a retry is safe)."""
    event = WebhookEvent.all_tenants.select_related("phone_number").filter(pk=event_id).first()
    if event is None or event.processed_at is not None or event.tenant_id is None:
        return None
    report = ProcessReport()
    try:
        with tenant_scope(event.tenant_id), transaction.atomic():
            _apply_events([event], report)
    except Exception as exc:
        WebhookEvent.all_tenants.filter(pk=event.pk).update(
            error=f"{type(exc).__name__}: {exc}"[:2000], attempts=F("attempts") + 1)
        raise
    if report.unrouted:
        logger.warning("webhook event %s: no number for route keys %s", event.pk, sorted(set(report.unrouted)))
    return report


WEBHOOK_BELL_KEY = "parley:webhook-bell"
WEBHOOK_BELL_TTL_SECONDS = 1
PENDING_BATCH = 100


def ring_webhook_processing() -> None:
    """Queue the processing task once the stored callback is committed -- unless one is already
    queued and not yet started: that one will find this callback too. So a burst of POSTs
    publishes a few tasks instead of one per POST; the sweeper covers a lost bell."""
    from .tasks import webhook_events_process_pending_task

    def ring() -> None:
        if cache.add(WEBHOOK_BELL_KEY, 1, timeout=WEBHOOK_BELL_TTL_SECONDS):
            webhook_events_process_pending_task.delay()

    transaction.on_commit(ring)


def _pending(tenant_id: int | None = None):
    qs = WebhookEvent.all_tenants.filter(processed_at__isnull=True, tenant__isnull=False,
                                         attempts__lt=MAX_PROCESS_ATTEMPTS)
    return qs if tenant_id is None else qs.filter(tenant_id=tenant_id)


def _process_tenant_batch(tenant_id: int, report: ProcessReport) -> int:
    ids: list[int] = []
    try:
        with tenant_scope(tenant_id), transaction.atomic():
            qs = _pending(tenant_id).select_related("phone_number").order_by("id")
            if connection.features.has_select_for_update_skip_locked:
                qs = qs.select_for_update(skip_locked=True, of=("self",))
            events = list(qs[:PENDING_BATCH])
            ids = [e.pk for e in events]
            if events:
                _apply_events(events, report)
    except Exception:
        # One bad callback must not hold back the others: apply them one by one, each
        # recording its own error and retrying through the sweeper.
        logger.exception("batch of %d webhook event(s) failed; applying them one by one", len(ids))
        for event_id in ids:
            try:
                webhook_event_process(event_id=event_id)
            except Exception:
                logger.exception("webhook event %s failed (error kept on the row)", event_id)
    return len(ids)


def webhook_events_process_pending(*, time_budget: float = 5.0) -> ProcessReport:
    """Apply every stored, unprocessed callback, a tenant's batch at a time, for at most
    ``time_budget`` seconds; ring again if work is left."""
    cache.delete(WEBHOOK_BELL_KEY)  # callbacks stored from now on need a new bell
    report = ProcessReport()
    deadline = time.monotonic() + time_budget
    while time.monotonic() < deadline:
        tenant_ids = list(_pending().order_by().values_list("tenant_id", flat=True).distinct()[:50])
        if not tenant_ids:
            break
        if not sum(_process_tenant_batch(tenant_id, report) for tenant_id in tenant_ids):
            break  # everything left is locked by another worker
    else:
        ring_webhook_processing()
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

