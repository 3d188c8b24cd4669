"""Sending: claim a batch of queued rows, post each one the moment it gets a token from the
number's bucket (concurrently, over pooled connections), record every answer in bulk. Plus the
sweeper that keeps the database, not the broker, the record of what still has to go out
(design.md, "Exactly once, honestly").

Row states on the way out:
  queued  --claim-->  sending  --answer-->  accepted | queued (transient, backoff) | failed
  sending (no token in time: never posted)  -->  queued again at once, the attempt not counted
  sending (no answer: the POST may have gone out) stays put until a status webhook adopts it
  through biz_opaque_callback_data, or the reconciliation window passes with no word: only
  then is it queued again.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.conversations import statuses
from apps.conversations.models import Message, MessageAttempt
from apps.core.bells import ring_after_commit
from apps.core.bulk import insert_rows
from apps.message_templates.models import MessageTemplate
from apps.phone_numbers.models import PhoneNumber
from apps.providers.backends import get_backend
from apps.providers.exceptions import (
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    ProviderUnknownOutcome,
)
from apps.providers.outbound import OutboundMessage, SendResult
from apps.providers.ratelimit import TokenGate, pair_backoff_seconds

from .events import message_event_data, message_rows_with_contact
from .media import media_provider_id
from .status_apply import bulk_update_rows

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 600.0


BELL_TTL_SECONDS = 2


def _bell_key(phone_number_id: int) -> str:
    return f"parley:dispatch-bell:{phone_number_id}"


def ring_dispatch(*, tenant_id: int, phone_number_id: int, countdown: float | None = None, bells: int = 1,
                  gathered: bool = False) -> None:
    """Queue dispatch task(s) for a number once the current transaction commits.

    A single immediate bell is skipped while another one is queued and not yet started (a
    cache key the task clears when it begins): that task will find this row too. So 500 API
    sends a second make a handful of tasks, not 500. The key expires on its own, and the
    sweeper re-rings anything left, so a lost bell delays and never loses. ``gathered`` (the
    send's request path) hands a single immediate bell to the process's ringing thread, which
    rings it once for every send of the moment (apps/core/bells.py)."""
    from apps.conversations.tasks import message_dispatch_task

    single = bells == 1 and not countdown

    def ring() -> None:
        if single and not cache.add(_bell_key(phone_number_id), 1, timeout=BELL_TTL_SECONDS):
            return
        for _ in range(bells):
            message_dispatch_task.apply_async(kwargs={"tenant_id": tenant_id, "phone_number_id": phone_number_id},
                                              countdown=countdown)

    if single and gathered:
        ring_after_commit(("dispatch", phone_number_id), ring)
    else:
        transaction.on_commit(ring)


def batch_size_for(number: PhoneNumber) -> int:
    # About a quarter of a second of budget per batch: big enough to amortize the round trips,
    # small enough that rows are not held in `sending` while waiting for tokens.
    return max(10, min(250, number.messages_per_second // 4))


def backoff_seconds(attempt: int) -> float:
    delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * (2 ** max(0, attempt - 1)))
    return delay * random.uniform(0.8, 1.2)


@dataclass
class DispatchReport:
    claimed: int = 0
    accepted: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    batches: int = 0
    message_ids: list[int] = field(default_factory=list)


def _claim(*, number: PhoneNumber, limit: int) -> list[int]:
    now = timezone.now()
    with transaction.atomic():
        qs = (Message.objects.for_tenant(number.tenant_id)
              .filter(phone_number=number, status=Message.Status.QUEUED, next_attempt_at__lte=now)
              .order_by("next_attempt_at", "id"))
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        ids = list(qs.values_list("id", flat=True)[:limit])
        if not ids:
            return []
        # The rows are ours: locked (PostgreSQL, SKIP LOCKED lets other workers take the next
        # ones) or behind SQLite's write lock, which the IMMEDIATE transaction took first.
        Message.objects.for_tenant(number.tenant_id).filter(id__in=ids, status=Message.Status.QUEUED).update(
            status=Message.Status.SENDING, sending_at=now, status_updated_at=now, attempt_count=F("attempt_count") + 1,
            updated_at=now,
        )
        return ids


def _unclaim(*, number: PhoneNumber, ids: list[int]) -> None:
    """Give back claimed rows that were never posted: nothing went out, so they are simply
    queued again, their attempt not counted."""
    now = timezone.now()
    Message.objects.for_tenant(number.tenant_id).filter(id__in=ids, status=Message.Status.SENDING).update(
        status=Message.Status.QUEUED, attempt_count=F("attempt_count") - 1, next_attempt_at=now, status_updated_at=now,
        updated_at=now)


def _outbound(message: Message, templates: dict[tuple[str, str], MessageTemplate]) -> OutboundMessage:
    template = None
    if message.type == Message.Type.TEMPLATE:
        language = message.content.get("language") or {}
        template = templates.get((message.content.get("name"), language.get("code")))
    return OutboundMessage(
        to=message.event_wa_id, type=message.type, content=message.content,
        reply_to=message.reply_to_provider_id or None, callback_data=str(message.pk),
        provider_template_id=(template.provider_template_id or None) if template else None,
        template_parameter_format=template.parameter_format if template else "positional",
    )


def messages_dispatch(*, tenant_id: int, phone_number_id: int, task_id: str = "",
                      time_budget: float | None = None) -> DispatchReport:
    """Send what is due for one number, batch after batch, for at most ``time_budget`` seconds;
    ring again when work is left, so no task runs a whole campaign."""
    report = DispatchReport()
    number = PhoneNumber.objects.for_tenant(tenant_id).filter(pk=phone_number_id).first()
    if number is None or number.status == PhoneNumber.Status.DISABLED:
        return report
    cache.delete(_bell_key(phone_number_id))  # from now on, new rows need a new bell
    budget = settings.PARLEY_DISPATCH_TIME_BUDGET if time_budget is None else time_budget
    deadline = time.monotonic() + budget
    backend = get_backend(number)
    size = batch_size_for(number)
    key = f"number:{number.pk}"
    gave_back = False
    while True:
        # Rows first, then each row is posted the moment its token is taken from the number's
        # bucket (shared by every worker): the provider sees exactly the bucket's pace, and a
        # batch takes as long as its tokens do, no longer. Rows the tokens did not reach in
        # time are given back to the queue, unsent.
        ids = _claim(number=number, limit=size)
        if not ids:
            break
        report.claimed += len(ids)
        gate = TokenGate(key=key, rate=number.messages_per_second,
                         timeout=max(2.0, 8 * len(ids) / number.messages_per_second))
        unposted = _send_and_record(number=number, backend=backend, ids=ids, task_id=task_id, report=report,
                                    gate=gate)
        report.batches += 1
        if unposted:
            _unclaim(number=number, ids=unposted)
            report.claimed -= len(unposted)
            gave_back = True
            break
        if time.monotonic() >= deadline:
            break
    more = Message.objects.for_tenant(tenant_id).filter(
        phone_number_id=phone_number_id, status=Message.Status.QUEUED, next_attempt_at__lte=timezone.now()).exists()
    if more and (report.claimed or gave_back):
        ring_dispatch(tenant_id=tenant_id, phone_number_id=phone_number_id)
    return report


def _send_and_record(*, number: PhoneNumber, backend, ids: list[int], task_id: str, report: DispatchReport,
                     gate=None) -> list[int]:
    """Post the claimed rows (as ``gate`` allows) and record the answers; returns the ids of
    rows left unposted, to be given back to the queue."""
    messages = list(message_rows_with_contact(Message.objects.for_tenant(number.tenant_id).filter(id__in=ids))
                    .select_related("media").order_by("id"))
    names = {m.content.get("name") for m in messages if m.type == Message.Type.TEMPLATE}
    templates = {}
    if names:
        templates = {(t.name, t.language): t for t in MessageTemplate.objects.for_tenant(number.tenant_id)
                     .filter(waba_id=number.waba_id, name__in=names)}
    outbound: list[OutboundMessage] = []
    sendable: list[Message] = []
    results: dict[int, SendResult | ProviderError] = {}
    uploaded: dict[int, str] = {}
    for message in messages:
        try:
            prepared = _outbound(message, templates)
        except ValueError as exc:  # a row that cannot be expressed is refused, never posted
            results[message.pk] = ProviderError(str(exc), title="Invalid message", explanation=str(exc))
            continue
        if _uses_stored_media(message):
            try:
                if message.media_id not in uploaded:
                    uploaded[message.media_id] = media_provider_id(media=message.media, phone_number=number,
                                                                   backend=backend)
            except ProviderError as exc:
                results[message.pk] = _upload_failure(message, exc)
                continue
            prepared = dataclasses.replace(prepared, content={**message.content, "id": uploaded[message.media_id]})
        outbound.append(prepared)
        sendable.append(message)
    unposted: list[int] = []
    for message, result in zip(sendable, backend.send_batch(outbound, gate=gate) if outbound else [], strict=True):
        if result is None:
            unposted.append(message.pk)
        else:
            results[message.pk] = result
    record_send_results(number=number, messages=[m for m in messages if m.pk in results], results=results,
                        task_id=task_id, report=report)
    return unposted


def _uses_stored_media(message: Message) -> bool:
    """Whether the message names a file Parley stores (content {"id": "<Media id>"}), which the
    provider knows only once uploaded."""
    return (message.media_id is not None and isinstance(message.content, dict)
            and str(message.content.get("id", "")) == str(message.media_id))


def _upload_failure(message: Message, exc: ProviderError) -> ProviderError:
    """The message's result when its file could not be uploaded: a transient refusal (429, 5xx)
    is retried like a send, and so is an upload whose answer was lost (the message itself has
    not gone out, so trying again is safe); anything else fails the message, saying why."""
    if isinstance(exc, ProviderTransientError):
        return exc
    if isinstance(exc, ProviderUnknownOutcome):
        return ProviderTransientError(str(exc), provider=exc.provider, title="Media upload unanswered",
                                      explanation=exc.explanation or str(exc), status_code=exc.status_code,
                                      response_excerpt=exc.response_excerpt)
    explanation = f"The file (media {message.media_id}) could not be uploaded to the provider: " \
                  f"{exc.explanation or exc}"
    return ProviderPermanentError(explanation, provider=exc.provider, code=exc.code, title="Media upload failed",
                                  explanation=explanation, status_code=exc.status_code,
                                  response_excerpt=exc.response_excerpt)


@transaction.atomic
def record_send_results(*, number: PhoneNumber, messages: list[Message], results: dict[int, SendResult | ProviderError],
                        task_id: str, report: DispatchReport) -> None:
    from apps.webhooks.services import event_emit_many

    now = timezone.now()
    tenant_id = number.tenant_id
    # Lock the batch's rows in id order before writing them, as a webhook batch that applies
    # statuses does, so the two never deadlock when a status webhook adopts one of these rows.
    list(Message.objects.for_tenant(tenant_id).filter(id__in=[m.pk for m in messages]).order_by("id")
         .select_for_update(no_key=True).values_list("id", flat=True))
    attempts: list[dict] = []  # MessageAttempt rows, by column
    accepted: list[Message] = []
    # Bulk writes do not touch auto_now fields; the inbox's "changed since" poll
    # reads updated_at, so every write below sets it.
    for message in messages:
        message.updated_at = now
    retry: list[Message] = []
    failed: list[Message] = []
    for message in messages:
        result = results[message.pk]
        report.message_ids.append(message.pk)
        if isinstance(result, SendResult):
            message.provider_message_id = result.provider_message_id or None
            if number.provider == PhoneNumber.Provider.META_CLOUD:
                message.wa_message_id = message.provider_message_id
            accepted.append(message)
            attempts.append({"message_id": message.pk, "task_id": task_id, "outcome": MessageAttempt.Outcome.ACCEPTED,
                             "status_code": result.status_code, "error_code": None,
                             "response_excerpt": str(result.raw)[:1000], "duration_ms": result.duration_ms})
            continue
        error: ProviderError = result
        attempt = {"message_id": message.pk, "task_id": task_id, "status_code": error.status_code,
                   "error_code": error.code, "response_excerpt": (error.response_excerpt or str(error))[:1000],
                   "duration_ms": 0}
        if isinstance(error, ProviderUnknownOutcome):
            attempt["outcome"] = MessageAttempt.Outcome.UNKNOWN
            report.unknown += 1
        elif isinstance(error, ProviderTransientError) and message.attempt_count < MAX_ATTEMPTS:
            attempt["outcome"] = MessageAttempt.Outcome.TRANSIENT_ERROR
            if error.pair_rate_limited:
                delay = pair_backoff_seconds(message.attempt_count - 1)
            else:
                delay = max(error.retry_after or 0.0, backoff_seconds(message.attempt_count))
            message.next_attempt_at = now + timedelta(seconds=delay)
            message.error_code, message.error_title = error.code, (error.title or "Temporary error")[:255]
            message.error_detail = error.explanation or str(error)
            retry.append(message)
        else:
            attempt["outcome"] = (MessageAttempt.Outcome.TRANSIENT_ERROR if isinstance(error, ProviderTransientError)
                               else MessageAttempt.Outcome.PERMANENT_ERROR)
            message.error_code = error.code
            message.error_title = (error.title or "Not sent")[:255]
            detail = error.explanation or str(error)
            if isinstance(error, ProviderTransientError):
                detail = f"Gave up after {message.attempt_count} attempts. {detail}"
            message.error_detail = detail
            failed.append(message)
        attempts.append(attempt)
    # One INSERT of one JSON document (apps/core/bulk.py): bulk_create had the driver quote
    # 2,000 values into the SQL text, the provider's answers among them.
    insert_rows(MessageAttempt, attempts, {"tenant_id": tenant_id, "created_at": now, "updated_at": now})
    events: list[tuple[str, dict]] = []
    # Each outcome is one statement, guarded by the statuses it may replace (statuses.py): a row a
    # status webhook moved on meanwhile is left as the webhook made it.
    if accepted:
        for message in accepted:
            message.status, message.accepted_at, message.status_updated_at = Message.Status.ACCEPTED, now, now
            message.next_attempt_at, message.error_code, message.error_title, message.error_detail = None, None, "", ""
        written = bulk_update_rows(
            Message, accepted, ["provider_message_id", "wa_message_id", "status", "accepted_at", "status_updated_at",
                                "next_attempt_at", "error_code", "error_title", "error_detail", "updated_at"],
            tenant_id=tenant_id, where_in={"status": statuses.statuses_that_may_become(statuses.ACCEPTED)})
        # A webhook got there first (it adopted the row through biz_opaque_callback_data): keep its
        # status, record the ids the answer gave.
        bulk_update_rows(Message, [m for m in accepted if m.pk not in written],
                         ["provider_message_id", "wa_message_id", "updated_at"], tenant_id=tenant_id)
        _mirror_recipients(tenant_id, accepted, statuses.ACCEPTED)
        report.accepted += len(accepted)
        events += [("message.accepted", _event(m, statuses.ACCEPTED)) for m in accepted if m.pk in written]
    if retry:
        for message in retry:
            message.status, message.status_updated_at = Message.Status.QUEUED, now
        bulk_update_rows(Message, retry, ["next_attempt_at", "error_code", "error_title", "error_detail", "status",
                                          "status_updated_at", "updated_at"],
                         tenant_id=tenant_id, where_in={"status": (Message.Status.SENDING,)})
        report.retried += len(retry)
        soonest = min(m.next_attempt_at for m in retry)
        ring_dispatch(tenant_id=tenant_id, phone_number_id=number.pk,
                      countdown=max(0.0, (soonest - now).total_seconds()))
    if failed:
        for message in failed:
            message.status, message.failed_at, message.status_updated_at = Message.Status.FAILED, now, now
            message.next_attempt_at = None
        written = bulk_update_rows(
            Message, failed, ["error_code", "error_title", "error_detail", "status", "failed_at", "status_updated_at",
                              "next_attempt_at", "updated_at"],
            tenant_id=tenant_id, where_in={"status": statuses.statuses_that_may_become(statuses.FAILED)})
        _mirror_recipients(tenant_id, failed, statuses.FAILED)
        report.failed += len(failed)
        events += [("message.failed", _event(m, statuses.FAILED)) for m in failed if m.pk in written]
    if events:
        event_emit_many(tenant=number.tenant, events=events)


def _event(message: Message, status: str) -> dict:
    message.status = status
    return message_event_data(message, wa_id=message.event_wa_id, contact_name=message.event_contact_name)


def _mirror_recipients(tenant_id: int, messages: list[Message], status: str) -> None:
    from apps.campaigns.dispatch import recipients_follow

    recipients_follow(tenant_id=tenant_id, updates=[(m.campaign_recipient_id, status, m.error_code)
                                                    for m in messages if m.campaign_recipient_id])


def _without_unapplied_callbacks(orphans: list[tuple]) -> list[tuple]:
    """A provider callback that is stored but not yet applied may be the very status webhook
    that adopts one of these rows: where a tenant has such callbacks, apply them first (ring the
    webhook processing) and decide on the next sweep."""
    from apps.providers.models import WebhookEvent
    from apps.providers.services import MAX_PROCESS_ATTEMPTS, ring_webhook_processing

    if not orphans:
        return orphans
    waiting = set(WebhookEvent.all_tenants.filter(
        tenant_id__in={row[1] for row in orphans}, processed_at__isnull=True, attempts__lt=MAX_PROCESS_ATTEMPTS,
    ).order_by().values_list("tenant_id", flat=True).distinct())
    if waiting:
        ring_webhook_processing()
    return [row for row in orphans if row[1] not in waiting]


@dataclass
class SweepReport:
    rung: int = 0
    requeued_unknown: int = 0
    failed_unknown: int = 0


def messages_sweep() -> SweepReport:
    """Beat task body: ring for due queued rows nobody picked up (a lost broker message), and
    settle `sending` rows that got no answer and no webhook within the reconciliation window."""
    report = SweepReport()
    now = timezone.now()
    stale = now - timedelta(seconds=settings.PARLEY_QUEUED_STALE_SECONDS)
    due = (Message.objects.unscoped().filter(status=Message.Status.QUEUED, next_attempt_at__lte=stale)
           .values_list("tenant_id", "phone_number_id").distinct())
    for tenant_id, phone_number_id in due:
        ring_dispatch(tenant_id=tenant_id, phone_number_id=phone_number_id)
        report.rung += 1
    cutoff = now - timedelta(seconds=settings.PARLEY_RECONCILE_WINDOW_SECONDS)
    with transaction.atomic():
        # A sending row keeps its next_attempt_at until it is answered: the partial index on it
        # holds only the rows still owed something, which this scan walks.
        orphans = list(Message.objects.unscoped().filter(status=Message.Status.SENDING, sending_at__lt=cutoff,
                                                         next_attempt_at__isnull=False)
                       .values_list("id", "tenant_id", "phone_number_id", "attempt_count"))
        orphans = _without_unapplied_callbacks(orphans)
        give_up = [row[0] for row in orphans if row[3] >= MAX_ATTEMPTS]
        resend = [row for row in orphans if row[3] < MAX_ATTEMPTS]
        if give_up:
            report.failed_unknown = Message.objects.unscoped().filter(id__in=give_up, status=Message.Status.SENDING).update(
                status=Message.Status.FAILED, failed_at=now, status_updated_at=now, updated_at=now, next_attempt_at=None,
                error_title="No answer from the provider",
                error_detail=f"No answer and no status webhook after {MAX_ATTEMPTS} attempts.")
        if resend:
            # No status webhook adopted these within the window, so the POST never reached the
            # provider: now, and only now, they may go out again.
            report.requeued_unknown = Message.objects.unscoped().filter(
                id__in=[row[0] for row in resend], status=Message.Status.SENDING,
            ).update(status=Message.Status.QUEUED, next_attempt_at=now, status_updated_at=now, updated_at=now)
            logger.warning("Re-queued %d message(s) left in 'sending' past the reconciliation window",
                           report.requeued_unknown)
            for tenant_id, phone_number_id in {(row[1], row[2]) for row in resend}:
                ring_dispatch(tenant_id=tenant_id, phone_number_id=phone_number_id)
    return report
