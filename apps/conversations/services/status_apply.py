"""Apply a batch of provider status updates in bulk (one webhook may carry hundreds, and the
webhook worker applies the statuses of many webhooks together).

Rows are matched on the provider's message id, then the WhatsApp id, then the Parley id
echoed in ``biz_opaque_callback_data`` -- which adopts a row whose POST answer was lost.
Statuses only move forward (statuses.can_transition); duplicates and late arrivals change
nothing.

Rows are read without locks and the new state is worked out in Python (when no endpoint of the
tenant receives message events, a row is read as just what working out its statuses looks at,
``_Row``, not as a ``Message``: building model instances was a quarter of the applying worker's
CPU, and decoding the columns it only writes a third of the rest). Only
then are the rows to write locked, in id order (one SELECT ... FOR NO KEY UPDATE), so that concurrent webhook
batches and the dispatcher wait for each other instead of deadlocking, and none of them waits
while another works in Python; a row another writer moved on since it was read is read again
under the lock and worked out afresh. Every changed row is then written by a few
``UPDATE ... FROM <rows>`` statements (one per set of changed columns; no CASE WHEN per row),
each guarded in SQL by the status that was read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from operator import attrgetter
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, Model, Q
from django.utils import timezone

from apps.conversations import statuses
from apps.conversations.models import Message
from apps.phone_numbers.models import PhoneNumber
from apps.providers.events import StatusUpdate

from .events import message_event_data, message_rows_with_contact

TIMESTAMP_FIELDS = {statuses.ACCEPTED: "accepted_at", statuses.SENT: "sent_at", statuses.DELIVERED: "delivered_at",
                    statuses.READ: "read_at", statuses.FAILED: "failed_at"}
EVENT_TYPES = {statuses.ACCEPTED: "message.accepted", statuses.SENT: "message.sent",
               statuses.DELIVERED: "message.delivered", statuses.READ: "message.read",
               statuses.FAILED: "message.failed"}
# When a later status arrives first, the earlier ones it implies get the same timestamp.
IMPLIED = {statuses.READ: (statuses.SENT, statuses.DELIVERED), statuses.DELIVERED: (statuses.SENT,)}


class _Unread:
    """A value ``_Row`` did not read: ``SET`` (the column holds a value; the SQL only tested
    that) or ``NOT_READ`` (a column applying statuses only ever writes). Neither can reach the
    database: every conversion of one for a write raises."""

    __slots__ = ("_truth", "_name")

    def __init__(self, name: str, truth: bool) -> None:
        self._name, self._truth = name, truth

    def __bool__(self) -> bool:
        return self._truth

    def __repr__(self) -> str:
        return self._name

    def __str__(self) -> str:
        raise TypeError(f"{self._name}: a message column that was not read cannot be written")

    __int__ = __float__ = __str__


SET = _Unread("SET", True)
NOT_READ = _Unread("NOT_READ", False)


class _Row:
    """A message row as applying statuses needs it, under the ``Message`` attribute names
    (``_work_out`` and ``_write`` take either).

    Only what ``_work_out`` looks at is read, and as little of it as it looks at: the status,
    the ids and the campaign recipient as they are; whether the pricing, the sent and delivered
    times and an error title are set as SQL booleans (``SET`` or the empty value), so that no
    timestamp or JSON document is decoded; the columns it only writes not at all
    (``NOT_READ``). ``_work_out`` assigns every column it marks changed, so only real values
    are written. Reading the 16 columns whole cost 12 us a row, a third of the applying
    worker's CPU; this costs under 3."""

    READ = ("id", "status", "provider_message_id", "wa_message_id", "campaign_recipient_id", "error_code")
    TESTED = {  # column -> the SQL test that it holds a value (pricing: neither {} nor null)
        "pricing": ~(Q(pricing={}) | Q(pricing=None)),
        "sent_at": Q(sent_at__isnull=False),
        "delivered_at": Q(delivered_at__isnull=False),
        "error_title": ~Q(error_title=""),
    }
    WRITTEN_ONLY = ("accepted_at", "read_at", "failed_at", "status_updated_at", "next_attempt_at", "error_detail")
    __slots__ = (*READ, *TESTED, *WRITTEN_ONLY, "updated_at")

    def __init__(self, values: Sequence[Any]) -> None:
        (self.id, self.status, self.provider_message_id, self.wa_message_id, self.campaign_recipient_id,
         self.error_code, pricing, sent_at, delivered_at, error_title) = values
        self.pricing = SET if pricing else None
        self.sent_at = SET if sent_at else None
        self.delivered_at = SET if delivered_at else None
        self.error_title = SET if error_title else ""
        self.accepted_at = self.read_at = self.failed_at = self.status_updated_at = NOT_READ
        self.next_attempt_at = self.error_detail = self.updated_at = NOT_READ

    @property
    def pk(self) -> int:
        return self.id

    @classmethod
    def read(cls, qs) -> list[_Row]:
        tests = {f"{name}_set": ExpressionWrapper(test, output_field=BooleanField())
                 for name, test in cls.TESTED.items()}
        return [cls(values) for values in qs.annotate(**tests).values_list(*cls.READ, *tests)]


@dataclass
class StatusApplyReport:
    received: int = 0
    applied: int = 0
    ignored: int = 0
    unmatched: int = 0
    adopted: int = 0
    unmatched_ids: list[str] = field(default_factory=list)


@dataclass
class _Outcome:
    """What one message's updates did to it."""

    read_status: str  # what the row held when read: the write's guard
    read_ids: tuple[str | None, str | None]  # and its provider and WhatsApp ids
    fields: set[str]
    events: list[tuple[int, str, dict]]  # (position of the update in the batch, type, data)
    applied: int = 0
    ignored: int = 0
    adopted: int = 0


def _callback_id(value: str | None) -> int | None:
    if value and value.isdigit():
        return int(value)
    return None


def _order(update: StatusUpdate) -> tuple:
    return statuses.RANK.get(update.status, 99), update.timestamp


@transaction.atomic(savepoint=False)  # inside a caller's transaction, a failure fails the caller too
def message_statuses_apply(*, phone_number: PhoneNumber, updates: Iterable[StatusUpdate]) -> StatusApplyReport:
    from apps.webhooks.services import event_emit_many, event_endpoints, event_types_subscribed

    # Apply in ladder order so that read-then-delivered in one batch ends at read.
    updates = sorted((u for u in updates if u.status in TIMESTAMP_FIELDS), key=_order)
    report = StatusApplyReport(received=len(updates))
    if not updates:
        return report
    tenant_id = phone_number.tenant_id
    # An event's data (and the contact it names) is built only for types an endpoint receives.
    endpoints = event_endpoints(tenant=tenant_id)
    wanted = event_types_subscribed(endpoints=endpoints, types=EVENT_TYPES.values())
    found = _read(tenant_id, phone_number, updates, with_contact=bool(wanted))
    assigned = _assign(updates, found, report)
    rows = {m.pk: m for m in found}

    outcomes = {pk: _work_out(rows[pk], updates_of_row, wanted) for pk, updates_of_row in assigned.items()}
    # Only now are the rows to write locked, in id order: a row that another writer (the
    # dispatcher recording the POST's answer, another status batch) moved on since it was read
    # is read again under the lock and worked out afresh.
    moved = _lock(tenant_id, outcomes, sorted(pk for pk, outcome in outcomes.items() if outcome.fields))
    if moved:
        for message in _fetch(_by_ids(_rows(tenant_id, phone_number, with_contact=bool(wanted)), moved),
                              with_contact=bool(wanted)):
            rows[message.pk] = message
            outcomes[message.pk] = _work_out(message, assigned[message.pk], wanted)
    moved = _write(tenant_id=tenant_id, rows=rows, outcomes=outcomes)
    if moved:  # cannot happen: the rows are locked until this transaction ends
        raise RuntimeError(f"message rows {sorted(moved)} changed under a row lock")

    events: list[tuple[int, str, dict]] = []
    for outcome in outcomes.values():
        report.applied += outcome.applied
        report.ignored += outcome.ignored
        report.adopted += outcome.adopted
        events += outcome.events
    if events:
        events.sort(key=lambda item: item[0])
        event_emit_many(tenant=phone_number.tenant, events=[(type, data) for _, type, data in events],
                        endpoints=endpoints)
    return report


def _by_ids(qs, ids: list[int]):
    if connection.vendor == "postgresql":  # one array parameter, whatever the batch size
        table = connection.ops.quote_name(Message._meta.db_table)
        return qs.extra(where=[f"{table}.\"id\" = ANY(%s::bigint[])"], params=[ids])  # fixed SQL, bound values
    return qs.filter(pk__in=ids)


def _match(qs, updates: list[StatusUpdate]):
    """The rows the updates may be about: by provider id, WhatsApp id, or (outbound only) the
    Parley id echoed in biz_opaque_callback_data."""
    ids = sorted({u.provider_message_id for u in updates if u.provider_message_id}
                 | {u.wa_message_id for u in updates if u.wa_message_id})
    callback_ids = sorted({c for c in (_callback_id(u.callback_data) for u in updates) if c})
    if connection.vendor == "postgresql":
        # Arrays: three parameters whatever the batch size (an IN list costs a parameter per id to build).
        table = connection.ops.quote_name(Message._meta.db_table)
        return qs.extra(where=[  # fixed SQL; the values are bound as parameters
            f"({table}.\"provider_message_id\" = ANY(%s::text[]) OR {table}.\"wa_message_id\" = ANY(%s::text[]) "
            f"OR ({table}.\"id\" = ANY(%s::bigint[]) AND {table}.\"direction\" = %s))"],
            params=[ids, ids, callback_ids, Message.Direction.OUTBOUND])
    condition = Q(provider_message_id__in=ids) | Q(wa_message_id__in=ids)
    if callback_ids:
        condition |= Q(pk__in=callback_ids, direction=Message.Direction.OUTBOUND)
    return qs.filter(condition)


def _rows(tenant_id: int, phone_number: PhoneNumber, *, with_contact: bool):
    # With events to build, whole rows (a deferred column makes Django build every row field by
    # field, which costs more than reading the few columns the statuses do not need).
    qs = Message.objects.for_tenant(tenant_id).filter(phone_number=phone_number).order_by("id")
    return message_rows_with_contact(qs) if with_contact else qs  # the contact's number and name as columns


def _fetch(qs, *, with_contact: bool) -> list[Message] | list[_Row]:
    return list(qs) if with_contact else _Row.read(qs)


def _read(tenant_id: int, phone_number: PhoneNumber, updates: list[StatusUpdate], *, with_contact: bool
          ) -> list[Message] | list[_Row]:
    """The rows the updates are about, read without locks (``_lock`` takes them for the write).

    A Meta status of a message Parley sent carries the message's id (biz_opaque_callback_data),
    so the rows are read by primary key first. An update whose row that read did not find, or
    found with another provider id (Gupshup, a message sent elsewhere, a row to adopt), goes through
    the full match; the others already have the one row the full match would give them (the
    provider id is unique per number). Most batches of a campaign thus cost one index instead of
    three OR-ed together."""
    qs = _rows(tenant_id, phone_number, with_contact=with_contact)
    callback_ids = {_callback_id(u.callback_data) for u in updates} - {None}
    rows = _fetch(_by_ids(qs, sorted(callback_ids)).filter(direction=Message.Direction.OUTBOUND),
                  with_contact=with_contact) if callback_ids else []
    by_pk = {m.pk: m for m in rows}
    unverified = [u for u in updates
                  if not u.provider_message_id or (row := by_pk.get(_callback_id(u.callback_data) or 0)) is None
                  or row.provider_message_id != u.provider_message_id]
    if unverified:
        rows += [m for m in _fetch(_match(qs, unverified), with_contact=with_contact) if m.pk not in by_pk]
    return rows


def _lock(tenant_id: int, outcomes: dict[int, _Outcome], pks: list[int]) -> list[int]:
    """Lock ``pks`` in id order (NO KEY UPDATE: excludes other writers of these rows, not
    inserts that reference them), so that concurrent batches and the dispatcher wait for each
    other instead of deadlocking; returns those whose status or ids are no longer the ones read."""
    if not pks:
        return []
    seen = (_by_ids(Message.objects.for_tenant(tenant_id), pks).order_by("id")
            .select_for_update(no_key=True).values_list("id", "status", "provider_message_id", "wa_message_id"))
    return [pk for pk, status, *ids in seen if (status, tuple(ids)) != (outcomes[pk].read_status, outcomes[pk].read_ids)]


def _assign(updates: list[StatusUpdate], rows: list[Message] | list[_Row], report: StatusApplyReport
            ) -> dict[int, list[tuple[int, StatusUpdate]]]:
    """Which row each update is about, in ladder order; a row adopted by one update (its POST
    answer was lost) is found by the provider id for the updates after it."""
    by_provider = {m.provider_message_id: m for m in rows if m.provider_message_id}
    by_wa = {m.wa_message_id: m for m in rows if m.wa_message_id}
    by_pk = {m.pk: m for m in rows}
    assigned: dict[int, list[tuple[int, StatusUpdate]]] = {}
    for position, update in enumerate(updates):
        message = (by_provider.get(update.provider_message_id) or by_wa.get(update.wa_message_id or "")
                   or by_wa.get(update.provider_message_id) or by_pk.get(_callback_id(update.callback_data) or -1))
        if message is None:
            report.unmatched += 1
            report.unmatched_ids.append(update.provider_message_id)
            continue
        if not message.provider_message_id and update.provider_message_id:
            by_provider.setdefault(update.provider_message_id, message)
        assigned.setdefault(message.pk, []).append((position, update))
    return assigned


def _work_out(message: Message | _Row, updates: list[tuple[int, StatusUpdate]], wanted: set[str]) -> _Outcome:
    """Apply one row's updates (in ladder order) to it in memory; the events of ``wanted``
    types are built."""
    outcome = _Outcome(read_status=message.status, read_ids=(message.provider_message_id, message.wa_message_id),
                       fields=set(), events=[])
    fields = outcome.fields
    for position, update in updates:
        if not message.provider_message_id and update.provider_message_id:
            # Adoption: the POST's answer was lost, the webhook tells us what the provider did.
            message.provider_message_id = update.provider_message_id
            fields.add("provider_message_id")
            outcome.adopted += 1
        if update.wa_message_id and not message.wa_message_id:
            message.wa_message_id = update.wa_message_id
            fields.add("wa_message_id")
        if update.pricing and not message.pricing:
            message.pricing = {"pricing": update.pricing, "conversation": update.conversation}
            fields.add("pricing")
        if not statuses.can_transition(message.status, update.status):
            outcome.ignored += 1
            continue
        for implied in IMPLIED.get(update.status, ()):
            attr = TIMESTAMP_FIELDS[implied]
            if getattr(message, attr) is None:
                setattr(message, attr, update.timestamp)
                fields.add(attr)
        message.status = update.status
        setattr(message, TIMESTAMP_FIELDS[update.status], update.timestamp)
        message.status_updated_at = update.timestamp
        message.next_attempt_at = None
        fields |= {"status", TIMESTAMP_FIELDS[update.status], "status_updated_at", "next_attempt_at"}
        if update.status == statuses.FAILED:
            error = update.errors[0] if update.errors else None
            message.error_code = error.code if error else None
            message.error_title = (error.title or error.message if error else "Failed")[:255]
            message.error_detail = error.details or error.message if error else ""
            fields |= {"error_code", "error_title", "error_detail"}
        elif message.error_code is not None or message.error_title:
            message.error_code, message.error_title, message.error_detail = None, "", ""
            fields |= {"error_code", "error_title", "error_detail"}
        outcome.applied += 1
        if EVENT_TYPES[update.status] in wanted:
            outcome.events.append((position, EVENT_TYPES[update.status],
                                   message_event_data(message, wa_id=message.event_wa_id,
                                                      contact_name=message.event_contact_name)))
    return outcome


def _write(*, tenant_id: int, rows: dict[int, Message | _Row], outcomes: dict[int, _Outcome]) -> set[int]:
    """Write every changed row, guarded by the status read; returns the rows that were not
    written because their status is no longer the one read."""
    # The inbox's "changed since" poll reads updated_at: set it on every changed row.
    now = timezone.now()
    groups: dict[frozenset[str], list[Message | _Row]] = {}
    for pk, outcome in outcomes.items():
        if outcome.fields:
            rows[pk].updated_at = now
            groups.setdefault(frozenset(outcome.fields | {"updated_at"}), []).append(rows[pk])
    moved: set[int] = set()
    for fields, messages in groups.items():
        written = bulk_update_rows(Message, messages, sorted(fields), tenant_id=tenant_id,
                                   expect={"status": lambda m: outcomes[m.pk].read_status})
        moved |= {m.pk for m in messages} - written
    for pk in moved:
        outcomes.pop(pk)
    # Campaign recipients follow their message, under the same forward-only rule (one call per
    # batch; a spam-rate error pauses the campaign).
    from apps.campaigns.dispatch import recipients_follow

    recipients_follow(tenant_id=tenant_id, updates=[
        (rows[pk].campaign_recipient_id, rows[pk].status, rows[pk].error_code)
        for pk, outcome in outcomes.items() if "status" in outcome.fields and rows[pk].campaign_recipient_id])
    return moved


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()  # full precision (DjangoJSONEncoder drops microseconds)
    if isinstance(value, Decimal | UUID):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} through bulk_update_rows")


def _json_converter(field: Any, memo: dict[Any, str]) -> Callable[[Any], Any] | None:
    """How a column's values go into the JSON document: dates and times as ISO text, each
    distinct value formatted once (a batch's statuses share few timestamps, and every row the
    same ``updated_at``); None for values ``json.dumps`` writes itself (through ``_json_value``
    when they are of another type), which is much cheaper than its ``default`` hook per value."""
    if field.get_internal_type() not in ("DateTimeField", "DateField", "TimeField"):
        return None

    def iso(value: Any) -> Any:
        if value is None:
            return None
        text = memo.get(value)
        if text is None:
            text = memo[value] = _json_value(value)
        return text

    return iso


def bulk_update_rows(model: type[Model], objs: Sequence[Model], field_names: Sequence[str], *, tenant_id: int,
                     expect: dict[str, Any] | None = None,
                     where_in: dict[str, Sequence[Any]] | None = None) -> set[int]:
    """Write the values of ``field_names`` from each object in one statement instead of Django's
    ``bulk_update`` (a CASE WHEN per row and column, costly to build):
    ``UPDATE <table> SET f = v.f, ... FROM <rows> v WHERE pk = v.pk AND tenant_id = <tenant>
    [AND column = v.expected ...] RETURNING pk``. The rows travel as one JSON document on
    PostgreSQL (``jsonb_to_recordset``: one parameter, whatever the batch size), as VALUES on
    SQLite. ``expect`` maps a column to a function giving, per object, the value the row must
    still hold to be written (compare-and-set); ``where_in`` maps a column to the values it must
    hold (e.g. the statuses a new status may replace). Returns the pks written."""
    if not objs:
        return set()
    expect = expect or {}
    meta = model._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    pk = f"{table}.{quote(meta.pk.column)}"
    fields = [meta.get_field(name) for name in field_names]
    expect_fields = [(meta.get_field(name), get) for name, get in expect.items()]
    names = ["pk", *(f"x{i}" for i in range(len(expect_fields))), *(f"v{i}" for i in range(len(fields)))]
    assignments = ", ".join(f"{quote(f.column)} = v.v{i}" for i, f in enumerate(fields))
    checks = "".join(f" AND {table}.{quote(f.column)} = v.x{i}" for i, (f, _) in enumerate(expect_fields))
    extra: list[Any] = []
    for name, allowed in (where_in or {}).items():
        column = meta.get_field(name)
        checks += f" AND {table}.{quote(column.column)} IN ({', '.join(['%s'] * len(allowed))})"
        extra += [column.get_db_prep_save(value, connection) for value in allowed]
    written: set[int] = set()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            types = [meta.pk.db_type(connection), *(f.db_type(connection) for f, _ in expect_fields),
                     *(f.db_type(connection) for f in fields)]
            columns = ", ".join(f"{name} {db_type}" for name, db_type in zip(names, types, strict=True))
            memo: dict[Any, str] = {}
            getters = [(f"x{i}", get, _json_converter(f, memo)) for i, (f, get) in enumerate(expect_fields)]
            getters += [(f"v{i}", attrgetter(f.attname), _json_converter(f, memo)) for i, f in enumerate(fields)]
            document = []
            for obj in objs:
                item = {"pk": obj.pk}
                for key, get, convert in getters:
                    item[key] = get(obj) if convert is None else convert(get(obj))
                document.append(item)
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM jsonb_to_recordset(%s::jsonb) AS v ({columns}) "
                f"WHERE {pk} = v.pk AND {table}.\"tenant_id\" = %s{checks} RETURNING {pk}",
                [json.dumps(document, default=_json_value), tenant_id, *extra])
            return {written_pk for written_pk, in cursor.fetchall()}
        width = len(names)
        chunk = max(1, ((connection.features.max_query_params or 999) - 1 - len(extra)) // width)
        for start in range(0, len(objs), chunk):
            part = objs[start:start + chunk]
            params: list[Any] = []
            for obj in part:
                params.append(obj.pk)
                params += [f.get_db_prep_save(get(obj), connection) for f, get in expect_fields]
                params += [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields]
            row = "(" + ", ".join(["%s"] * width) + ")"
            cursor.execute(
                f"WITH v ({', '.join(names)}) AS (VALUES {', '.join([row] * len(part))}) "
                f"UPDATE {table} SET {assignments} FROM v WHERE {pk} = v.pk AND {table}.\"tenant_id\" = %s{checks} "
                f"RETURNING {pk}", [*params, tenant_id, *extra])
            written.update(r[0] for r in cursor.fetchall())
    return written
