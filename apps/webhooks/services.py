"""Tenant-facing webhooks: emit Parley events durably, deliver them signed, retry, replay.

An event becomes one ``WebhookDelivery`` row per subscribed endpoint, written in the caller's
transaction, so a delivery exists exactly when the change it reports commits. The broker only
rings the bell after commit; the sweeper re-rings for rows that waited too long, so losing a
task delays a delivery but never loses it.

A delivery is sent by claiming it (``select_for_update(skip_locked=True)`` on PostgreSQL, the
write lock on SQLite) and moving its ``next_attempt_at`` forward by a lease, in one short
transaction; the POST happens outside any transaction; the answer is recorded in another one.
A second copy of a task finds the row not due and posts nothing. A worker killed mid-POST
leaves the row leased; when the lease ends the sweeper hands it out again, and the receiver
dedupes on the event id.

Formats: an endpoint gets Parley's envelope signed with ``Parley-Signature``, or, when its
``format`` is ``meta``, Meta's webhook body built from the same stored event
(``apps.api.meta_format``) signed like Meta signs (``X-Hub-Signature-256`` with the endpoint's
secret as the app secret), so a bot written for the Cloud API reads it unchanged. Event types
Meta has no webhook for are never emitted to a Meta-format endpoint.

Retries: 10 s, 30 s, 1 min, 5 min, 15 min, 30 min, 1 h, 2 h, then every 4 h, until the next try
would fall more than 24 h after the delivery was created (or, for a replayed delivery, after
its replay's first attempt); then the delivery is FAILED ("gave up"). ``attempt_count`` counts
the attempts of the current cycle; every ``WebhookDeliveryAttempt`` of every cycle is kept.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.http import Http404
from django.utils import timezone

from apps.api import meta_format
from apps.core.exceptions import ApplicationError
from apps.core.scoping import require_tenant_id
from apps.phone_numbers.models import PhoneNumber
from apps.tenants.models import Tenant

from . import sender
from .models import EVENT_TYPES, WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint
from .selectors import access_endpoint, as_object_id

# A delivery a tenant asks for from the settings page to check an endpoint. Never emitted by
# the product, so it is not in EVENT_TYPES and cannot be subscribed to.
TEST_EVENT_TYPE = "webhook.test"
EVENT_ID_PREFIX = "evt_"
SECRET_PREFIX = "whsec_"

RETRY_DELAYS_SECONDS = (10, 30, 60, 5 * 60, 15 * 60, 30 * 60, 60 * 60, 2 * 60 * 60, 4 * 60 * 60)
RETRY_WINDOW = timedelta(hours=24)
# How long a claimed delivery stays out of other workers' reach. Longer than any task may run
# (CELERY_TASK_TIME_LIMIT kills it first), so a live worker never loses its claim.
CLAIM_LEASE = timedelta(minutes=5)
DISPATCH_BATCH_SIZE = 100
DISPATCH_CONCURRENCY = 16
DISPATCH_TIME_BUDGET_SECONDS = 60.0
SWEEP_STALE_AFTER = timedelta(seconds=30)

DUE_STATUSES = (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING)


# --- events -------------------------------------------------------------------------------

def new_event_id() -> str:
    return EVENT_ID_PREFIX + secrets.token_hex(16)


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_event_type(type: str) -> None:
    if type not in EVENT_TYPES:
        raise ValueError(f"Unknown webhook event type {type!r}; expected one of {', '.join(EVENT_TYPES)}")


def _json_data(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as plain JSON (datetimes, decimals and UUIDs become strings), checked once here
    rather than failing later in a worker."""
    if not isinstance(data, dict):
        raise ValueError(f"event data must be a dict, got {type(data).__name__}")
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _envelope(*, type: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"id": new_event_id(), "type": type, "created_at": _iso_utc(now), "data": _json_data(data)}


def event_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes POSTed (and signed) for a stored envelope. Sorted keys make them the same
    on every attempt and every database."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


def _active_endpoints(tenant: Tenant | int) -> list[WebhookEndpoint]:
    # No secret: it is decrypted on load and only the sender needs it.
    return list(WebhookEndpoint.objects.for_tenant(tenant).filter(is_active=True)
                .only("id", "tenant_id", "events", "format"))


def event_endpoints(*, tenant: Tenant | int) -> list[WebhookEndpoint]:
    """The tenant's active endpoints (one query), for a batch path that asks
    ``event_types_subscribed`` first and then hands them to ``event_emit_many``."""
    return _active_endpoints(tenant)


def event_types_subscribed(*, endpoints: list[WebhookEndpoint], types: Iterable[str]) -> set[str]:
    """Which of ``types`` one of ``endpoints`` would receive: batch paths build an event's data
    only when someone will get it."""
    return {type for type in types if any(_subscribed(endpoint, type) for endpoint in endpoints)}


def _subscribed(endpoint: WebhookEndpoint, type: str) -> bool:
    if endpoint.format == WebhookEndpoint.Format.META and type not in meta_format.META_EVENT_TYPES:
        return False
    return not endpoint.events or type in endpoint.events


def _ring_send(*, tenant_id: int, delivery_ids: list[int]) -> None:
    """Queue one send task per delivery once the current transaction commits. If the broker is
    down the error is logged and the rows wait for the sweeper."""
    from .tasks import webhook_delivery_send_task

    def ring() -> None:
        for delivery_id in delivery_ids:
            webhook_delivery_send_task.delay(tenant_id=tenant_id, delivery_id=delivery_id)

    transaction.on_commit(ring, robust=True)


def _ring_dispatch(*, tenant_id: int) -> None:
    from .tasks import webhook_deliveries_dispatch_task

    def ring() -> None:
        webhook_deliveries_dispatch_task.delay(tenant_id=tenant_id)

    transaction.on_commit(ring, robust=True)


def event_emit(*, tenant: Tenant, type: str, data: dict[str, Any]) -> list[WebhookDelivery]:
    """Record event ``type`` for every active endpoint of ``tenant`` subscribed to it, in the
    caller's transaction, and queue their sends after it commits.

    One query when the tenant has no matching endpoint. The only write is a single multi-row
    INSERT, atomic on its own, so no savepoint is opened around it.
    """
    _check_event_type(type)
    targets = [endpoint for endpoint in _active_endpoints(tenant) if _subscribed(endpoint, type)]
    if not targets:
        return []
    now = timezone.now()
    envelope = _envelope(type=type, data=data, now=now)
    deliveries = WebhookDelivery.objects.for_tenant(tenant).bulk_create([
        WebhookDelivery(tenant_id=tenant.pk, endpoint_id=endpoint.pk, event_id=envelope["id"], event_type=type,
                        payload=envelope, status=WebhookDelivery.Status.PENDING, next_attempt_at=now)
        for endpoint in targets
    ])
    _ring_send(tenant_id=tenant.pk, delivery_ids=[delivery.pk for delivery in deliveries])
    return deliveries


def event_emit_many(*, tenant: Tenant, events: list[tuple[str, dict[str, Any]]],
                    endpoints: list[WebhookEndpoint] | None = None) -> int:
    """The bulk form of ``event_emit`` (a batch of status updates): one query for the endpoints,
    a few multi-row INSERTs, and one dispatch task for the tenant after commit. Returns the
    number of deliveries written. ``endpoints``: those ``event_endpoints`` gave the caller in
    this transaction, not read again."""
    for type, _ in events:
        _check_event_type(type)
    if not events:
        return 0
    if endpoints is None:
        endpoints = _active_endpoints(tenant)
    if not endpoints:
        return 0
    now = timezone.now()
    created_at = _iso_utc(now)
    # The envelopes as JSON text (the same documents _envelope() would store), one dumps() for the
    # whole batch on PostgreSQL.
    postgres = connection.vendor == "postgresql"
    rows: list[tuple[int, str, str, Any]] = []
    subscribed: dict[str, list[int]] = {}
    for event_type, data in events:
        targets = subscribed.get(event_type)
        if targets is None:
            targets = subscribed[event_type] = [e.pk for e in endpoints if _subscribed(e, event_type)]
        if not targets:
            continue
        if not isinstance(data, dict):
            raise ValueError(f"event data must be a dict, got {data.__class__.__name__}")
        event_id = new_event_id()
        payload: Any = {"id": event_id, "type": event_type, "created_at": created_at, "data": data}
        if not postgres:
            payload = json.dumps(payload, cls=DjangoJSONEncoder)
        rows.extend((endpoint_id, event_id, event_type, payload) for endpoint_id in targets)
    if not rows:
        return 0
    with transaction.atomic():
        _insert_deliveries(tenant_id=tenant.pk, rows=rows, now=now)
    _ring_dispatch(tenant_id=tenant.pk)
    return len(rows)


def _insert_deliveries(*, tenant_id: int, rows: list[tuple[int, str, str, Any]], now: datetime) -> None:
    """Pending deliveries in one INSERT ... SELECT (PostgreSQL: the rows as one JSON document;
    SQLite: multi-row VALUES of four values a row, the rest being the same for every row): far
    cheaper to build than ``bulk_create`` for the thousands of events a batch of status webhooks
    makes."""
    meta = WebhookDelivery._meta
    quote = connection.ops.quote_name
    stamp = meta.get_field("next_attempt_at").get_db_prep_save(now, connection)
    columns = ", ".join(quote(meta.get_field(name).column) for name in (
        "created_at", "updated_at", "tenant", "endpoint", "event_id", "event_type", "payload", "status",
        "attempt_count", "next_attempt_at"))
    insert = f"INSERT INTO {quote(meta.db_table)} ({columns}) "
    select = "SELECT %s, %s, %s, v.endpoint_id, v.event_id, v.event_type, v.payload, %s, 0, %s FROM v"
    constants = [stamp, stamp, tenant_id, WebhookDelivery.Status.PENDING.value, stamp]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            document = json.dumps([{"endpoint_id": e, "event_id": i, "event_type": t, "payload": p}
                                   for e, i, t, p in rows], cls=DjangoJSONEncoder)
            cursor.execute(
                "WITH v AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS r "
                "(endpoint_id bigint, event_id text, event_type text, payload jsonb)) " + insert + select,
                [document, *constants])
            return
        chunk = max(1, ((connection.features.max_query_params or 999) - len(constants)) // 4)
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            values = ", ".join(["(%s, %s, %s, %s)"] * len(part))
            cursor.execute(f"WITH v (endpoint_id, event_id, event_type, payload) AS (VALUES {values}) " + insert + select,
                           [value for row in part for value in row] + constants)


# --- delivering ---------------------------------------------------------------------------

def retry_delay_seconds(attempts: int) -> int:
    """The wait after the ``attempts``-th failed attempt of a cycle (1-based)."""
    index = min(max(attempts, 1), len(RETRY_DELAYS_SECONDS)) - 1
    return RETRY_DELAYS_SECONDS[index]


def _due(now: datetime) -> Q:
    return Q(status__in=DUE_STATUSES) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))


def _claim(*, tenant_id: int, ids: list[int] | None = None, limit: int | None = None) -> list[WebhookDelivery]:
    """Take due deliveries out of everyone else's reach for ``CLAIM_LEASE``."""
    now = timezone.now()
    with transaction.atomic():
        qs = (WebhookDelivery.objects.for_tenant(tenant_id).select_for_update(skip_locked=True)
              .filter(_due(now)).order_by(F("next_attempt_at").asc(nulls_first=True), "id"))
        if ids is not None:
            qs = qs.filter(pk__in=ids)
        if limit is not None:
            qs = qs[:limit]
        claimed = list(qs)
        if claimed:
            WebhookDelivery.objects.for_tenant(tenant_id).filter(pk__in=[d.pk for d in claimed]).update(
                next_attempt_at=now + CLAIM_LEASE, updated_at=now,
            )
    return claimed


def _post_all(*, tenant_id: int, deliveries: list[WebhookDelivery],
              concurrency: int) -> list[tuple[WebhookDelivery, sender.PostResult]]:
    """POST each claimed delivery (concurrently when there are several); no database access
    happens in the worker threads."""
    endpoints = {
        endpoint.pk: endpoint
        for endpoint in WebhookEndpoint.objects.for_tenant(tenant_id)
        .filter(pk__in={d.endpoint_id for d in deliveries})
        .only("id", "tenant_id", "url", "secret", "is_active", "format")
    }
    numbers = _business_numbers(tenant_id=tenant_id, deliveries=[
        delivery for delivery in deliveries
        if getattr(endpoints.get(delivery.endpoint_id), "format", None) == WebhookEndpoint.Format.META
    ])
    results: list[sender.PostResult | None] = [None] * len(deliveries)
    jobs: list[tuple[int, Callable[..., sender.PostResult], dict[str, Any]]] = []
    for index, delivery in enumerate(deliveries):
        endpoint = endpoints.get(delivery.endpoint_id)
        if endpoint is None:
            results[index] = sender.PostResult(error="not sent: the endpoint no longer exists")
        elif not endpoint.is_active:
            results[index] = sender.PostResult(error="not sent: the endpoint is disabled")
        elif endpoint.format == WebhookEndpoint.Format.META:
            envelope = meta_format.meta_envelope(delivery.payload, numbers.get(_event_number_id(delivery.payload)))
            if envelope is None:
                # Stored before the endpoint switched to Meta's format, or its number is gone.
                results[index] = sender.PostResult(
                    error=f"not sent: a {delivery.event_type} event has no Meta webhook form")
            else:
                jobs.append((index, sender.post_meta_event, {
                    "url": endpoint.url, "secret": endpoint.secret, "event_id": delivery.event_id,
                    "event_type": delivery.event_type, "body": event_body(envelope)}))
        else:
            jobs.append((index, sender.post_event, {
                "url": endpoint.url, "secret": endpoint.secret, "event_id": delivery.event_id,
                "event_type": delivery.event_type, "body": event_body(delivery.payload)}))

    def run(job: tuple[int, Callable[..., sender.PostResult], dict[str, Any]]) -> sender.PostResult:
        return job[1](**job[2])

    if len(jobs) <= 1 or concurrency <= 1:
        answers = [run(job) for job in jobs]
    else:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(jobs)), thread_name_prefix="webhooks") as pool:
            answers = list(pool.map(run, jobs))
    for (index, _, _), answer in zip(jobs, answers, strict=True):
        results[index] = answer
    return [(delivery, result) for delivery, result in zip(deliveries, results, strict=True) if result is not None]


def _event_number_id(payload: dict[str, Any]) -> int | None:
    value = (payload.get("data") or {}).get("phone_number_id")
    return value if isinstance(value, int) else None


def _business_numbers(*, tenant_id: int,
                      deliveries: list[WebhookDelivery]) -> dict[int, meta_format.BusinessNumber]:
    """The numbers Meta-format deliveries concern, as Meta's ``metadata`` names them: one query
    for the batch, none when no delivery is in Meta's format."""
    ids = {number_id for number_id in (_event_number_id(d.payload) for d in deliveries) if number_id is not None}
    if not ids:
        return {}
    rows = (PhoneNumber.objects.for_tenant(tenant_id).filter(pk__in=ids)
            .only("id", "tenant_id", "phone_number_id", "display_number", "waba_id"))
    return {
        number.pk: meta_format.BusinessNumber(phone_number_id=number.phone_number_id or str(number.pk),
                                              display_phone_number=number.display_number,
                                              waba_id=number.waba_id)
        for number in rows
    }


def _cycle_starts(*, tenant_id: int, candidates: list[tuple[WebhookDelivery, int]],
                  now: datetime) -> dict[int, datetime]:
    """When the current attempt cycle of each candidate began. ``attempt_count`` (passed as the
    count before this attempt) covers the current cycle only; older attempt rows mean the
    delivery was replayed, and its cycle began with the first attempt after the replay."""
    history: dict[int, list[datetime]] = defaultdict(list)
    rows = (WebhookDeliveryAttempt.objects.for_tenant(tenant_id)
            .filter(delivery_id__in=[delivery.pk for delivery, _ in candidates])
            .order_by("delivery_id", "-id").values_list("delivery_id", "created_at"))
    for delivery_id, created_at in rows:
        history[delivery_id].append(created_at)
    starts: dict[int, datetime] = {}
    for delivery, prior in candidates:
        times = history.get(delivery.pk, [])
        if len(times) <= prior:
            starts[delivery.pk] = delivery.created_at
        else:
            starts[delivery.pk] = times[prior - 1] if prior else now
    return starts


def _record(*, tenant_id: int, outcomes: list[tuple[WebhookDelivery, sender.PostResult]],
            task_id: str) -> list[WebhookDelivery]:
    """Write one attempt per outcome and move each delivery on, in bulk."""
    now = timezone.now()
    with transaction.atomic():
        current = {
            delivery.pk: delivery
            for delivery in WebhookDelivery.objects.for_tenant(tenant_id).select_for_update()
            .filter(pk__in=[delivery.pk for delivery, _ in outcomes])
        }
        plans: list[tuple[WebhookDelivery, sender.PostResult, int]] = []
        near_deadline: list[tuple[WebhookDelivery, int]] = []
        for claimed, result in outcomes:
            delivery = current.get(claimed.pk)
            if delivery is None:  # deleted with its endpoint while the POST was in flight
                continue
            prior = delivery.attempt_count
            plans.append((delivery, result, prior))
            if not result.ok and delivery.status in DUE_STATUSES:
                next_at = now + timedelta(seconds=retry_delay_seconds(prior + 1))
                if next_at > delivery.created_at + RETRY_WINDOW:
                    near_deadline.append((delivery, prior))
        starts = _cycle_starts(tenant_id=tenant_id, candidates=near_deadline, now=now) if near_deadline else {}

        attempts = []
        for delivery, result, prior in plans:
            attempts.append(WebhookDeliveryAttempt(
                tenant_id=tenant_id, delivery_id=delivery.pk, task_id=(task_id or "")[:64],
                status_code=result.status_code, response_excerpt=result.response_excerpt,
                error=result.error, duration_ms=result.duration_ms,
            ))
            delivery.attempt_count = prior + 1
            delivery.last_status_code = result.status_code
            delivery.updated_at = now
            if result.ok:
                delivery.status = WebhookDelivery.Status.SUCCEEDED
                delivery.delivered_at = now
                delivery.next_attempt_at = None
            elif delivery.status in DUE_STATUSES:
                next_at = now + timedelta(seconds=retry_delay_seconds(delivery.attempt_count))
                if next_at > starts.get(delivery.pk, delivery.created_at) + RETRY_WINDOW:
                    delivery.status = WebhookDelivery.Status.FAILED
                    delivery.next_attempt_at = None
                else:
                    delivery.status = WebhookDelivery.Status.RETRYING
                    delivery.next_attempt_at = next_at
            # Otherwise another copy already settled it (delivered or gave up): the attempt is
            # kept and the outcome stands.
        if attempts:
            WebhookDeliveryAttempt.objects.for_tenant(tenant_id).bulk_create(attempts)
            WebhookDelivery.objects.for_tenant(tenant_id).bulk_update(
                [delivery for delivery, _, _ in plans],
                fields=["status", "attempt_count", "next_attempt_at", "last_status_code", "delivered_at", "updated_at"],
            )
    return [current[claimed.pk] for claimed, _ in outcomes if claimed.pk in current]


def webhook_delivery_attempt(*, delivery_id: int, task_id: str = "") -> WebhookDelivery:
    """Post one delivery if it is due and nobody else holds it; record the attempt.

    Runs for the tenant in scope (tasks enter it with ``with_tenant_scope``). Not wrapped in one
    transaction on purpose: the claim and the record are each atomic, the POST (up to 10 s)
    holds no lock. The returned delivery's ``attempted`` says whether this call posted;
    ``WebhookDelivery.DoesNotExist`` when the row is gone (its endpoint was deleted).
    """
    tenant_id = require_tenant_id()
    claimed = _claim(tenant_id=tenant_id, ids=[delivery_id])
    recorded: list[WebhookDelivery] = []
    if claimed:
        outcomes = _post_all(tenant_id=tenant_id, deliveries=claimed, concurrency=1)
        recorded = _record(tenant_id=tenant_id, outcomes=outcomes, task_id=task_id)
    if recorded:
        delivery = recorded[0]
        delivery.attempted = True
    else:
        delivery = WebhookDelivery.objects.for_tenant(tenant_id).get(pk=delivery_id)
        delivery.attempted = False
    return delivery


@dataclass
class DispatchReport:
    attempted: int = 0
    succeeded: int = 0
    retrying: int = 0
    failed: int = 0
    batches: int = 0
    # Stopped on the time budget with a full last batch: more may be due now.
    more_due: bool = False
    # When this run left retries behind: the earliest time a delivery of the tenant is due.
    next_due_at: datetime | None = None


def webhook_deliveries_dispatch(*, tenant_id: int, task_id: str = "", batch_size: int | None = None,
                                concurrency: int | None = None,
                                time_budget: float | None = None) -> DispatchReport:
    """Send what is due for one tenant: claim a batch, POST it concurrently, record the answers
    in bulk, and again, for at most ``time_budget`` seconds (then ``more_due`` says to ring again)."""
    batch_size = DISPATCH_BATCH_SIZE if batch_size is None else batch_size
    concurrency = DISPATCH_CONCURRENCY if concurrency is None else concurrency
    time_budget = DISPATCH_TIME_BUDGET_SECONDS if time_budget is None else time_budget
    report = DispatchReport()
    deadline = time.monotonic() + time_budget
    while True:
        claimed = _claim(tenant_id=tenant_id, limit=batch_size)
        if not claimed:
            break
        outcomes = _post_all(tenant_id=tenant_id, deliveries=claimed, concurrency=concurrency)
        for delivery in _record(tenant_id=tenant_id, outcomes=outcomes, task_id=task_id):
            report.attempted += 1
            if delivery.status == WebhookDelivery.Status.SUCCEEDED:
                report.succeeded += 1
            elif delivery.status == WebhookDelivery.Status.RETRYING:
                report.retrying += 1
            elif delivery.status == WebhookDelivery.Status.FAILED:
                report.failed += 1
        report.batches += 1
        if len(claimed) < batch_size:
            break
        if time.monotonic() >= deadline:
            report.more_due = True
            break
    if report.retrying:
        report.next_due_at = (WebhookDelivery.objects.for_tenant(tenant_id)
                              .filter(status__in=DUE_STATUSES, next_attempt_at__isnull=False)
                              .order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first())
    return report


def webhook_deliveries_sweep(*, stale_after: timedelta = SWEEP_STALE_AFTER) -> dict[int, int]:
    """Ring a dispatch for every tenant with deliveries due for longer than ``stale_after``
    (their task was lost, or their worker died holding the claim). The one cross-tenant read
    in this app; the dispatch itself runs per tenant. Returns ``{tenant_id: stale rows}``."""
    from .tasks import webhook_deliveries_dispatch_task

    cutoff = timezone.now() - stale_after
    rows = (WebhookDelivery.objects.unscoped()
            .filter(status__in=DUE_STATUSES)
            .filter(Q(next_attempt_at__lte=cutoff) | Q(next_attempt_at__isnull=True, created_at__lte=cutoff))
            .values("tenant_id").annotate(stale=Count("id")).order_by("tenant_id"))
    stale = {row["tenant_id"]: row["stale"] for row in rows}
    for tenant_id in stale:
        webhook_deliveries_dispatch_task.delay(tenant_id=tenant_id)
    return stale


@transaction.atomic
def webhook_delivery_replay(*, tenant: Tenant, delivery_id: Any) -> WebhookDelivery:
    """Start a new attempt cycle for the same event id and payload, due now."""
    delivery = _delivery_for_update(tenant=tenant, delivery_id=delivery_id)
    now = timezone.now()
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.next_attempt_at = now
    delivery.attempt_count = 0
    delivery.last_status_code = None
    delivery.delivered_at = None
    delivery.save(update_fields=["status", "next_attempt_at", "attempt_count", "last_status_code",
                                 "delivered_at", "updated_at"])
    _ring_send(tenant_id=tenant.pk, delivery_ids=[delivery.pk])
    return delivery


def _delivery_for_update(*, tenant: Tenant, delivery_id: Any) -> WebhookDelivery:
    pk = as_object_id(delivery_id, what="webhook delivery")
    delivery = WebhookDelivery.objects.for_tenant(tenant).select_for_update().filter(pk=pk).first()
    if delivery is None:
        raise Http404("No webhook delivery matches the given query.")
    return delivery


# --- endpoints ----------------------------------------------------------------------------

def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    max_length = WebhookEndpoint._meta.get_field("url").max_length
    if not url:
        raise ApplicationError("A webhook endpoint needs a URL.", code="invalid_url")
    if len(url) > max_length:
        raise ApplicationError(f"The URL is longer than {max_length} characters.", code="invalid_url")
    if any(char.isspace() for char in url):
        raise ApplicationError("The URL must not contain spaces.", code="invalid_url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError as exc:
        raise ApplicationError(f"{url!r} is not a valid URL ({exc}).", code="invalid_url") from exc
    if parts.scheme not in sender.ALLOWED_SCHEMES:
        raise ApplicationError("The URL must start with http:// or https://.", code="invalid_url")
    if not parts.hostname:
        raise ApplicationError("The URL has no host.", code="invalid_url")
    if not sender.private_urls_allowed():
        # Early, friendly refusal of the obvious cases; the sender checks every resolved
        # address again at each attempt, since DNS can change.
        host = parts.hostname
        if host == "localhost" or host.endswith(".localhost"):
            raise ApplicationError("Webhooks cannot be sent to localhost.", code="invalid_url")
        try:
            reason = sender.blocked_reason(host)
        except ValueError:
            reason = None  # a name, not an IP literal
        if reason:
            raise ApplicationError(f"Webhooks cannot be sent to {host}, a {reason} address.", code="invalid_url")
    return url


def _clean_events(events: Iterable[str] | None) -> list[str]:
    if events is None:
        return []
    if isinstance(events, str | bytes | dict):
        raise ApplicationError("events must be a list of event type names.", code="invalid_events")
    names = list(events)
    if not all(isinstance(event, str) for event in names):
        raise ApplicationError("events must be a list of event type names.", code="invalid_events")
    cleaned = list(dict.fromkeys(event.strip() for event in names if event.strip()))
    unknown = [event for event in cleaned if event not in EVENT_TYPES]
    if unknown:
        raise ApplicationError(
            f"Unknown event type(s): {', '.join(unknown)}.", code="invalid_events",
            details={"unknown": unknown, "allowed": list(EVENT_TYPES)},
        )
    return cleaned


def _clean_format(format: str) -> str:
    if format not in WebhookEndpoint.Format.values:
        raise ApplicationError(
            f"Unknown format {format!r}; expected one of {', '.join(WebhookEndpoint.Format.values)}.",
            code="invalid_format",
        )
    return format


def _clean_description(description: str) -> str:
    description = (description or "").strip()
    max_length = WebhookEndpoint._meta.get_field("description").max_length
    if len(description) > max_length:
        raise ApplicationError(f"The description is longer than {max_length} characters.", code="invalid_description")
    return description


@transaction.atomic
def webhook_endpoint_create(*, tenant: Tenant, url: str, events: Iterable[str] | None = None,
                            format: str = WebhookEndpoint.Format.PARLEY,
                            description: str = "") -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret. ``events`` empty or None: every event type.
    The secret is shown to the tenant now; it stays readable (encrypted at rest) for signing."""
    secret = _new_secret()
    endpoint = WebhookEndpoint.objects.for_tenant(tenant).create(
        tenant=tenant, url=_clean_url(url), events=_clean_events(events), format=_clean_format(format),
        description=_clean_description(description), secret=secret, is_active=True,
    )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_update(*, tenant: Tenant, endpoint_id: Any, url: str | None = None,
                            events: Iterable[str] | None = None, is_active: bool | None = None,
                            format: str | None = None, description: str | None = None) -> WebhookEndpoint:
    """Change the given fields (None: unchanged; ``events=[]``: every event type)."""
    endpoint = access_endpoint(tenant=tenant, endpoint_id=endpoint_id)
    changed: list[str] = []
    if url is not None:
        endpoint.url = _clean_url(url)
        changed.append("url")
    if events is not None:
        endpoint.events = _clean_events(events)
        changed.append("events")
    if is_active is not None:
        endpoint.is_active = bool(is_active)
        changed.append("is_active")
    if format is not None:
        endpoint.format = _clean_format(format)
        changed.append("format")
    if description is not None:
        endpoint.description = _clean_description(description)
        changed.append("description")
    if changed:
        endpoint.save(update_fields=[*changed, "updated_at"])
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, tenant: Tenant, endpoint_id: Any) -> tuple[WebhookEndpoint, str]:
    """A new secret; attempts from now on are signed with it."""
    endpoint = access_endpoint(tenant=tenant, endpoint_id=endpoint_id)
    secret = _new_secret()
    endpoint.secret = secret
    endpoint.save(update_fields=["secret", "updated_at"])
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_delete(*, tenant: Tenant, endpoint_id: Any) -> None:
    """Delete the endpoint with its deliveries and their attempts."""
    endpoint = access_endpoint(tenant=tenant, endpoint_id=endpoint_id)
    endpoint.delete()


@transaction.atomic
def webhook_test_event_send(*, tenant: Tenant, endpoint_id: Any) -> WebhookDelivery:
    """Send a ``webhook.test`` event to one endpoint, whatever it subscribes to."""
    endpoint = access_endpoint(tenant=tenant, endpoint_id=endpoint_id)
    if not endpoint.is_active:
        raise ApplicationError("The endpoint is disabled; enable it to send a test event.",
                               code="endpoint_disabled", http_status=409)
    now = timezone.now()
    envelope = _envelope(
        type=TEST_EVENT_TYPE,
        data={"message": "This is a test event from Parley.", "endpoint_id": endpoint.pk, "url": endpoint.url},
        now=now,
    )
    delivery = WebhookDelivery.objects.for_tenant(tenant).create(
        tenant=tenant, endpoint=endpoint, event_id=envelope["id"], event_type=TEST_EVENT_TYPE, payload=envelope,
        status=WebhookDelivery.Status.PENDING, next_attempt_at=now,
    )
    _ring_send(tenant_id=tenant.pk, delivery_ids=[delivery.pk])
    return delivery
