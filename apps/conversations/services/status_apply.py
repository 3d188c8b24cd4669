"""Apply a batch of provider status updates in bulk (one webhook may carry hundreds).

Rows are matched on the provider's message id, then the WhatsApp id, then the Parley id
echoed in ``biz_opaque_callback_data`` -- which adopts a row whose POST answer was lost.
Statuses only move forward (statuses.can_transition); duplicates and late arrivals change
nothing. Locked rows (SELECT ... FOR UPDATE) and grouped writes keep it right under
concurrent webhook tasks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.campaigns.models import CampaignRecipient
from apps.conversations import statuses
from apps.conversations.models import Message
from apps.phone_numbers.models import PhoneNumber
from apps.providers.events import StatusUpdate

TIMESTAMP_FIELDS = {statuses.ACCEPTED: "accepted_at", statuses.SENT: "sent_at", statuses.DELIVERED: "delivered_at",
                    statuses.READ: "read_at", statuses.FAILED: "failed_at"}
EVENT_TYPES = {statuses.ACCEPTED: "message.accepted", statuses.SENT: "message.sent",
               statuses.DELIVERED: "message.delivered", statuses.READ: "message.read",
               statuses.FAILED: "message.failed"}
# When a later status arrives first, the earlier ones it implies get the same timestamp.
IMPLIED = {statuses.READ: (statuses.SENT, statuses.DELIVERED), statuses.DELIVERED: (statuses.SENT,)}


@dataclass
class StatusApplyReport:
    received: int = 0
    applied: int = 0
    ignored: int = 0
    unmatched: int = 0
    adopted: int = 0
    unmatched_ids: list[str] = field(default_factory=list)


def _callback_id(value: str | None) -> int | None:
    if value and value.isdigit():
        return int(value)
    return None


@transaction.atomic
def message_statuses_apply(*, phone_number: PhoneNumber, updates: Iterable[StatusUpdate]) -> StatusApplyReport:
    from apps.webhooks.services import event_emit_many

    from .events import message_event_data

    updates = [u for u in updates if u.status in TIMESTAMP_FIELDS]
    report = StatusApplyReport(received=len(updates))
    if not updates:
        return report
    tenant_id = phone_number.tenant_id
    provider_ids = {u.provider_message_id for u in updates if u.provider_message_id}
    wa_ids = {u.wa_message_id for u in updates if u.wa_message_id}
    callback_ids = {c for c in (_callback_id(u.callback_data) for u in updates) if c}
    condition = Q(provider_message_id__in=provider_ids | wa_ids) | Q(wa_message_id__in=wa_ids | provider_ids)
    if callback_ids:
        condition |= Q(pk__in=callback_ids, direction=Message.Direction.OUTBOUND)
    rows = list(Message.objects.for_tenant(tenant_id).filter(phone_number=phone_number).filter(condition)
                .select_related("contact").select_for_update(of=("self",)).order_by("id"))
    by_provider = {m.provider_message_id: m for m in rows if m.provider_message_id}
    by_wa = {m.wa_message_id: m for m in rows if m.wa_message_id}
    by_pk = {m.pk: m for m in rows}

    changed: dict[int, set[str]] = {}
    events: list[tuple[str, dict]] = []
    # Apply in ladder order so that read-then-delivered in one batch ends at read.
    for update in sorted(updates, key=lambda u: (statuses.RANK.get(u.status, 99), u.timestamp)):
        message = (by_provider.get(update.provider_message_id) or by_wa.get(update.wa_message_id or "")
                   or by_wa.get(update.provider_message_id) or by_pk.get(_callback_id(update.callback_data) or -1))
        if message is None:
            report.unmatched += 1
            report.unmatched_ids.append(update.provider_message_id)
            continue
        fields = changed.setdefault(message.pk, set())
        if not message.provider_message_id and update.provider_message_id:
            # Adoption: the POST's answer was lost, the webhook tells us what the provider did.
            message.provider_message_id = update.provider_message_id
            by_provider[update.provider_message_id] = message
            fields.add("provider_message_id")
            report.adopted += 1
        if update.wa_message_id and not message.wa_message_id:
            message.wa_message_id = update.wa_message_id
            fields.add("wa_message_id")
        if update.pricing and not message.pricing:
            message.pricing = {"pricing": update.pricing, "conversation": update.conversation}
            fields.add("pricing")
        if not statuses.can_transition(message.status, update.status):
            report.ignored += 1
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
        report.applied += 1
        events.append((EVENT_TYPES[update.status], message_event_data(message, wa_id=message.contact.wa_id)))

    _write(tenant_id=tenant_id, rows=by_pk, changed=changed)
    if events:
        event_emit_many(tenant=phone_number.tenant, events=events)
    return report


def _write(*, tenant_id: int, rows: dict[int, Message], changed: dict[int, set[str]]) -> None:
    # Group rows by the set of fields they changed: one bulk UPDATE per group, not per row.
    # bulk_update() does not touch auto_now fields, and the inbox's "changed since" poll reads
    # updated_at: set it on every changed row and write it with the rest.
    now = timezone.now()
    groups: dict[frozenset[str], list[Message]] = {}
    for pk, fields in changed.items():
        if fields:
            rows[pk].updated_at = now
            groups.setdefault(frozenset(fields | {"updated_at"}), []).append(rows[pk])
    scoped = Message.objects.for_tenant(tenant_id)
    for fields, messages in groups.items():
        scoped.bulk_update(messages, sorted(fields), batch_size=500)
    # Campaign recipients follow their message, under the same forward-only rule.
    recipients: dict[tuple[str, int | None], list[int]] = {}
    for pk, fields in changed.items():
        message = rows[pk]
        if "status" in fields and message.campaign_recipient_id:
            key = (message.status, message.error_code if message.status == statuses.FAILED else None)
            recipients.setdefault(key, []).append(message.campaign_recipient_id)
    for (status, error_code), recipient_ids in recipients.items():
        CampaignRecipient.objects.for_tenant(tenant_id).filter(
            id__in=recipient_ids, status__in=statuses.statuses_that_may_become(status),
        ).update(status=status, error_code=error_code)
