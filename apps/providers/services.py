"""Provider webhook intake: store the raw callback (before acknowledging it), then process it
in a task with pure parsers and the conversation services."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.conversations.services import contact_opt_event_apply, message_receive, message_statuses_apply
from apps.core.bells import ring_after_commit
from apps.core.scoping import tenant_scope
from apps.message_templates.services import template_status_apply
from apps.phone_numbers.models import PhoneNumber
from apps.phone_numbers.numbercache import number_cache, tenant_numbers

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


# --- routing a callback to its number (the request path) ---------------------------------
#
# Every POST needs the number(s) a callback speaks for and their app secret, which is stored
# encrypted (a Fernet decrypt per load). Both are kept in the per-process number cache
# (apps/phone_numbers/numbercache.py) instead of a query and a decrypt per request.


@dataclass(frozen=True, slots=True)
class NumberRoute:
    """What the request path needs of a number: where to store the callback, how to check it."""

    phone_number_id: int
    tenant_id: int
    app_secret: str


def _meta_routes_for_key(key: str) -> tuple[NumberRoute, ...]:
    numbers = PhoneNumber.all_tenants.filter(provider=PhoneNumber.Provider.META_CLOUD).exclude(
        status=PhoneNumber.Status.DISABLED)
    if key.startswith("waba:"):
        numbers = numbers.filter(waba_id=key.removeprefix("waba:"))
    else:
        numbers = numbers.filter(phone_number_id=key)
    return tuple(NumberRoute(phone_number_id=n.pk, tenant_id=n.tenant_id,
                             app_secret=(n.credentials or {}).get("app_secret", ""))
                 for n in numbers.only("id", "tenant", "credentials").order_by("id"))


def meta_routes_for(payload: dict) -> list[NumberRoute]:
    """The numbers a Meta payload speaks for (phone number ids, or the WABA for account-level
    fields), across tenants: the tenant is not known until the signature is checked."""
    found: dict[int, NumberRoute] = {}
    for key in meta_route_keys(payload):
        for route in number_cache.get(("meta", key), lambda key=key: _meta_routes_for_key(key)):
            found[route.phone_number_id] = route
    return [found[pk] for pk in sorted(found)]


def gupshup_route_for(provider: str, token: str) -> NumberRoute | None:
    """The number whose secret callback URL token this is (Gupshup signs nothing)."""
    def load() -> NumberRoute | None:
        number = (PhoneNumber.all_tenants.filter(provider=provider, webhook_token=token)
                  .exclude(status=PhoneNumber.Status.DISABLED).only("id", "tenant").first())
        return None if number is None else NumberRoute(phone_number_id=number.pk, tenant_id=number.tenant_id,
                                                       app_secret="")

    return number_cache.get(("token", provider, token), load)


def meta_signature_valid(*, body: bytes, header: str, routes: list[NumberRoute]) -> NumberRoute | None:
    """The number whose app secret signed ``body`` (X-Hub-Signature-256), or None."""
    if not header.startswith("sha256="):
        return None
    given = header.removeprefix("sha256=").strip()
    tried: set[str] = set()
    for route in routes:
        secret = route.app_secret
        if not secret or secret in tried:
            continue
        tried.add(secret)
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, given):
            return route
    return None


_INSERT_COLUMNS = ("created_at", "updated_at", "received_at", "tenant", "phone_number", "provider", "headers", "body",
                   "body_sha256", "attempts", "error")
_insert_statements: dict[str, str] = {}


def _insert_statement() -> str:
    """The callback's INSERT, built once per database vendor (not per request)."""
    vendor = connection.vendor
    if vendor not in _insert_statements:
        meta = WebhookEvent._meta
        quote = connection.ops.quote_name
        fields = [meta.get_field(name) for name in _INSERT_COLUMNS]
        placeholders = ", ".join("%s::jsonb" if f.name == "headers" and vendor == "postgresql" else "%s" for f in fields)
        # ON CONFLICT on the (provider, body_sha256) key: a retried body is stored once.
        _insert_statements[vendor] = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
            f"VALUES ({placeholders}) ON CONFLICT DO NOTHING RETURNING {quote(meta.pk.column)}")
    return _insert_statements[vendor]


def webhook_event_record(*, provider: str, body: bytes, headers: Mapping[str, str], route: NumberRoute) -> int | None:
    """Store the callback exactly as it came, in one INSERT (durable before the caller answers
    200). Returns the new row's id, or None when the same body was already stored (providers
    retry). Rings processing once the row is committed.

    The values go to the driver as they are (the times through the backend's own adapter, the
    headers as JSON text), not through each field's ``get_db_prep_save``, and the statement is
    built once: together a quarter of the view's Python time (a test reads a stored row back
    through the ORM, field by field)."""
    kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params = (now, now, now, route.tenant_id, route.phone_number_id, provider, json.dumps(kept), body,
              hashlib.sha256(body).hexdigest(), 0, "")
    # One statement, so no transaction of its own is needed (inside a caller's transaction it is part of it).
    with connection.cursor() as cursor:
        cursor.execute(_insert_statement(), params)
        row = cursor.fetchone()
    if row is None:
        return None
    ring_webhook_processing()
    return row[0]


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


class _BatchNumbers:
    """The numbers a batch of one tenant's callbacks is routed to, from the per-process number
    cache (no query per batch); each number handed out is this batch's own copy."""

    def __init__(self, tenant_id: int) -> None:
        self._numbers = tenant_numbers(tenant_id)
        self._copies: dict[int, PhoneNumber] = {}
        self._routes: dict[str, PhoneNumber | None] = {}

    def _copy(self, number: PhoneNumber | None) -> PhoneNumber | None:
        if number is None:
            return None
        if number.pk not in self._copies:
            self._copies[number.pk] = copy.copy(number)
        return self._copies[number.pk]

    def route(self, event: WebhookEvent, route_key: str) -> PhoneNumber | None:
        numbers = self._numbers
        if event.provider != WebhookEvent.Provider.META_CLOUD:  # the URL token named the number
            return self._copy(next((n for n in numbers if n.pk == event.phone_number_id), None))
        if route_key not in self._routes:
            meta = [n for n in numbers if n.provider == PhoneNumber.Provider.META_CLOUD]
            self._routes[route_key] = self._copy(next((n for n in meta if n.phone_number_id == route_key), None)
                                                 or next((n for n in meta if n.waba_id == route_key), None))
        return self._routes[route_key]


def _apply_events(events: list[WebhookEvent], report: ProcessReport) -> None:
    """Apply stored callbacks of ONE tenant, in the caller's transaction and tenant scope.
    Statuses from every callback are gathered per number and applied in one bulk pass."""
    tenant_id = events[0].tenant_id
    numbers = _BatchNumbers(tenant_id)
    statuses: dict[int, tuple[PhoneNumber, list[StatusUpdate]]] = {}
    touched: set[int] = set()
    for event in events:
        if event.phone_number_id:
            touched.add(event.phone_number_id)
        for item in PARSERS[event.provider](json.loads(bytes(event.body))):
            if isinstance(item, OtherEvent):
                report.other += 1
                continue
            number = numbers.route(event, item.route_key)
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
    # Kept to the second: a number's row is not rewritten for every batch.
    (PhoneNumber.objects.for_tenant(tenant_id).filter(pk__in=touched)
     .filter(Q(last_webhook_at__isnull=True) | Q(last_webhook_at__lt=now - timedelta(seconds=1)))
     .update(last_webhook_at=now))
    WebhookEvent.all_tenants.filter(pk__in=[e.pk for e in events]).update(
        processed_at=now, error="", attempts=F("attempts") + 1)


def webhook_event_process(*, event_id: int) -> ProcessReport | None:
    """Parse and apply one stored callback, all of it or none of it (so a retry is safe)."""
    event = WebhookEvent.all_tenants.filter(pk=event_id).first()
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


# Processing is rung like a doorbell, not once per callback. Up to WEBHOOK_PROCESSORS tasks apply
# stored callbacks at once, each holding a "slot" key in the shared cache while it works. A
# stored callback rings slot 0 only when nobody holds it (one cache operation on the request
# path, no broker publish while a task is at work); a task that finds a backlog rings the next
# slot. A task gives its slot back only when it finds nothing more to do, and then looks once
# more: a callback stored just before found the slot held and rang nobody, so this last look
# is what picks it up. A working task renews its key after every batch, and the key expires
# a few seconds after a task dies or its message is lost, so the next callback rings again;
# the sweeper re-enqueues any callback left waiting. A lost bell delays, never loses.
WEBHOOK_BELL_KEY = "parley:webhook-bell"
WEBHOOK_BELL_TTL_SECONDS = 3
WEBHOOK_PROCESSORS = 3
PENDING_BATCH = 100


def _bell_key(slot: int) -> str:
    return f"{WEBHOOK_BELL_KEY}:{slot}"


def _ring(slot: int) -> None:
    from .tasks import webhook_events_process_pending_task

    if cache.add(_bell_key(slot), 1, timeout=WEBHOOK_BELL_TTL_SECONDS):
        webhook_events_process_pending_task.delay(slot=slot)


def ring_webhook_processing() -> None:
    """Make sure a task will apply the callback just stored, once it is committed: rung by the
    process's ringing thread, once for every callback of the moment (apps/core/bells.py)."""
    ring_after_commit("webhook-processing", lambda: _ring(0))


def _pending(tenant_id: int | None = None):
    qs = WebhookEvent.all_tenants.filter(processed_at__isnull=True, tenant__isnull=False,
                                         attempts__lt=MAX_PROCESS_ATTEMPTS)
    return qs if tenant_id is None else qs.filter(tenant_id=tenant_id)


def _claim_batch(tenant_id: int) -> list[WebhookEvent]:
    """A tenant's oldest stored callbacks to apply, up to PENDING_BATCH, locked for this
    transaction; those another task holds are skipped, not waited for."""
    qs = _pending(tenant_id).order_by("id")
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True)
    return list(qs[:PENDING_BATCH])


def _tenants_with_pending(limit: int = 50) -> list[int]:
    """The tenants with stored callbacks to apply -- ``_pending()``'s conditions, in SQL -- at
    most ``limit``, by id, found by a loose scan of the pending index: one ordered ``LIMIT 1``
    lookup per tenant, each a plain index scan, where ``SELECT DISTINCT`` read every pending
    entry with a bitmap scan (which also visited the heap page of every callback applied since
    the last VACUUM)."""
    table = connection.ops.quote_name(WebhookEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE t (tenant_id) AS ("
            f" SELECT (SELECT e.tenant_id FROM {table} e WHERE e.processed_at IS NULL AND e.attempts < %s"
            f" AND e.tenant_id IS NOT NULL ORDER BY e.tenant_id, e.id LIMIT 1)"
            f" UNION ALL"
            f" SELECT (SELECT e.tenant_id FROM {table} e WHERE e.processed_at IS NULL AND e.attempts < %s"
            f" AND e.tenant_id > t.tenant_id ORDER BY e.tenant_id, e.id LIMIT 1) FROM t WHERE t.tenant_id IS NOT NULL"
            f") SELECT tenant_id FROM t WHERE tenant_id IS NOT NULL LIMIT %s",
            [MAX_PROCESS_ATTEMPTS, MAX_PROCESS_ATTEMPTS, limit])
        return [row[0] for row in cursor.fetchall()]


def _commit_without_waiting_for_the_disk() -> None:
    """Applying stored callbacks may commit without waiting for its WAL to reach the disk
    (PostgreSQL's asynchronous commit, this transaction only): the callbacks themselves were
    committed durably before they were acknowledged, and processed_at is set in the same
    transaction as the changes, so a crash that loses an applied batch leaves its callbacks
    unprocessed, and they are applied again (statuses are monotonic, messages deduplicated); an
    event it emitted to a tenant's endpoint may then be delivered again, which at-least-once
    delivery allows. Whatever later commits synchronously after reading the batch's rows (the
    dispatcher claiming a queued reply, a delivery being recorded) flushes the batch's WAL with
    its own. The batch no longer waits on a disk flush, nor adds one to the acknowledging
    INSERTs' queue."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _process_tenant_batch(tenant_id: int, report: ProcessReport) -> int:
    ids: list[int] = []
    try:
        outermost = not connection.in_atomic_block  # never for a caller's transaction
        with tenant_scope(tenant_id), transaction.atomic():
            if outermost:
                _commit_without_waiting_for_the_disk()
            events = _claim_batch(tenant_id)
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


def _process_round(report: ProcessReport) -> tuple[int, bool]:
    """One batch for each tenant with stored callbacks: (callbacks applied, whether a batch was
    full, i.e. more are probably waiting)."""
    tenant_ids = _tenants_with_pending()
    applied, full = 0, False
    for tenant_id in tenant_ids:
        count = _process_tenant_batch(tenant_id, report)
        applied += count
        full = full or count >= PENDING_BATCH
    return applied, full


def webhook_events_process_pending(*, time_budget: float = 5.0, slot: int = 0) -> ProcessReport:
    """Apply stored, unprocessed callbacks, a tenant's batch at a time, for at most
    ``time_budget`` seconds, holding processing slot ``slot`` (see WEBHOOK_BELL_KEY)."""
    report = ProcessReport()
    try:
        _process_pending(report, deadline=time.monotonic() + time_budget, slot=slot)
    except BaseException:
        cache.delete(_bell_key(slot))  # the next stored callback rings a fresh task
        raise
    return report


def _process_pending(report: ProcessReport, *, deadline: float, slot: int) -> None:
    from .tasks import webhook_events_process_pending_task

    while True:
        applied, full = _process_round(report)
        if full and slot + 1 < WEBHOOK_PROCESSORS:
            _ring(slot + 1)  # a backlog: get help (a no-op while that slot is busy)
        if not applied:
            # Nothing left that is not already being applied by another task: give the slot back,
            # then look once more for a callback stored while it was held.
            cache.delete(_bell_key(slot))
            applied, _ = _process_round(report)
            if not applied or not cache.add(_bell_key(slot), 1, timeout=WEBHOOK_BELL_TTL_SECONDS):
                break  # done, or a new task holds the slot now and carries on
            continue
        cache.set(_bell_key(slot), 1, timeout=WEBHOOK_BELL_TTL_SECONDS)  # still at work
        if time.monotonic() >= deadline:
            # Hand over to a fresh task, keeping the slot (so no task runs for ever).
            webhook_events_process_pending_task.delay(slot=slot)
            break
        if not full and settings.PARLEY_WEBHOOK_GATHER_SECONDS > 0:
            # Caught up: let the next callbacks gather, holding the slot (their bells start no
            # task), and apply them as one batch rather than a batch, a task and a round of
            # queries each as they come. Never so long that the slot's key expires meanwhile.
            time.sleep(min(settings.PARLEY_WEBHOOK_GATHER_SECONDS, WEBHOOK_BELL_TTL_SECONDS / 2))


def webhook_events_sweep() -> int:
    """Ring again for callbacks whose bell was lost (a worker killed while it held a slot
    leaves the slot's key for WEBHOOK_BELL_TTL_SECONDS, and callbacks stored meanwhile ring
    nobody), and re-enqueue one by one those still unprocessed after the stale window (a batch
    that keeps failing). Returns how many were re-enqueued."""
    from .tasks import webhook_event_process_task

    now = timezone.now()
    unrung = now - timedelta(seconds=WEBHOOK_BELL_TTL_SECONDS)
    if _pending().filter(received_at__lt=unrung).exists():
        _ring(0)  # a no-op while a live task holds slot 0: it is at work and will get to them
    stale = now - timedelta(seconds=settings.PARLEY_WEBHOOK_EVENT_STALE_SECONDS)
    ids = list(WebhookEvent.all_tenants.filter(processed_at__isnull=True, tenant__isnull=False, received_at__lt=stale,
                                               attempts__lt=MAX_PROCESS_ATTEMPTS)
               .order_by("received_at").values_list("id", flat=True)[:1000])
    for event_id in ids:
        webhook_event_process_task.delay(event_id=event_id)
    return len(ids)

