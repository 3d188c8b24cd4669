import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.conversations.models import Message, MessageAttempt
from apps.conversations.services import messages_dispatch, messages_sweep
from apps.conversations.services.dispatch import MAX_ATTEMPTS, _claim
from apps.providers.backends import locmem
from apps.providers.exceptions import ProviderPermanentError, ProviderTransientError, ProviderUnknownOutcome
from tests.factories import CampaignRecipientFactory, MessageFactory, PhoneNumberFactory, TenantFactory


def queued(conversation, n=1, **kwargs):
    return [MessageFactory(conversation=conversation, status="queued", next_attempt_at=timezone.now(), **kwargs)
            for _ in range(n)]


def dispatch(number):
    return messages_dispatch(tenant_id=number.tenant_id, phone_number_id=number.pk, time_budget=2)


def test_a_batch_is_sent_and_recorded(scoped, number, open_conversation, django_assert_max_num_queries):
    messages = queued(open_conversation, 30)
    with django_assert_max_num_queries(25):
        report = dispatch(number)
    assert (report.claimed, report.accepted, report.batches) == (30, 30, 1)
    assert len(locmem.outbox) == 30
    rows = Message.objects.filter(pk__in=[m.pk for m in messages])
    assert set(rows.values_list("status", flat=True)) == {"accepted"}
    assert rows.filter(provider_message_id__startswith="wamid.", accepted_at__isnull=False).count() == 30
    assert not rows.filter(next_attempt_at__isnull=False).exists()  # nothing more is owed
    assert MessageAttempt.objects.filter(outcome="accepted").count() == 30
    # A second run finds nothing to claim: nothing is sent twice.
    assert dispatch(number).claimed == 0 and len(locmem.outbox) == 30


def test_transient_errors_back_off_honouring_retry_after(scoped, number, open_conversation):
    message, = queued(open_conversation)
    locmem.script(ProviderTransientError("slow down", code=130429, retry_after=30, status_code=400,
                                         title="Rate limit hit"))
    dispatch(number)
    message.refresh_from_db()
    assert message.status == "queued" and message.error_code == 130429
    assert 29 <= (message.next_attempt_at - timezone.now()).total_seconds() <= 31
    assert MessageAttempt.objects.get(message=message).outcome == "transient_error"
    assert dispatch(number).claimed == 0  # not due yet
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    dispatch(number)
    message.refresh_from_db()
    assert message.status == "accepted" and message.error_code is None and message.attempt_count == 2


def test_pair_rate_limit_backs_off_four_to_the_power_of_attempts(scoped, number, open_conversation):
    message, = queued(open_conversation)
    locmem.script(ProviderTransientError("pair", code=131056, pair_rate_limited=True))
    dispatch(number)
    message.refresh_from_db()
    assert 0.5 <= (message.next_attempt_at - timezone.now()).total_seconds() <= 1.5  # 4**0


def test_permanent_errors_fail_with_words(scoped, number, open_conversation):
    recipient = CampaignRecipientFactory(tenant=number.tenant, status="queued")
    message, = queued(open_conversation, campaign_recipient=recipient)
    locmem.script(ProviderPermanentError("(#131026) Message undeliverable", code=131026, title="Message undeliverable",
                                         explanation="The number is not on WhatsApp."))
    dispatch(number)
    message.refresh_from_db()
    recipient.refresh_from_db()
    assert (message.status, message.error_code, message.error_title) == ("failed", 131026, "Message undeliverable")
    assert message.error_detail == "The number is not on WhatsApp." and message.failed_at
    assert message.next_attempt_at is None
    assert recipient.status == "failed"


def test_transient_errors_give_up_after_max_attempts(scoped, number, open_conversation):
    message, = queued(open_conversation, attempt_count=MAX_ATTEMPTS - 1)
    locmem.script(ProviderTransientError("down", code=131000, status_code=500))
    dispatch(number)
    message.refresh_from_db()
    assert message.status == "failed" and message.error_detail.startswith(f"Gave up after {MAX_ATTEMPTS} attempts")


def test_unknown_outcome_waits_for_a_webhook_then_the_reconciliation_window(scoped, number, open_conversation, settings):
    message, = queued(open_conversation)
    locmem.script(ProviderUnknownOutcome("read timeout"))
    dispatch(number)
    message.refresh_from_db()
    assert message.status == "sending"  # may have gone out: never resent blindly
    assert message.next_attempt_at is not None  # still owed an answer: the sweeper's index holds it
    assert MessageAttempt.objects.get(message=message).outcome == "unknown"
    messages_sweep()
    message.refresh_from_db()
    assert message.status == "sending"
    Message.objects.filter(pk=message.pk).update(sending_at=timezone.now() - timedelta(
        seconds=settings.PARLEY_RECONCILE_WINDOW_SECONDS + 1))
    report = messages_sweep()
    assert report.requeued_unknown == 1
    dispatch(number)
    message.refresh_from_db()
    assert message.status == "accepted" and len(locmem.outbox) == 2


def test_the_sweeper_fails_a_row_unanswered_after_the_last_attempt(scoped, number, open_conversation, settings):
    message, = queued(open_conversation, attempt_count=MAX_ATTEMPTS - 1)
    locmem.script(ProviderUnknownOutcome("read timeout"))
    dispatch(number)
    Message.objects.filter(pk=message.pk).update(sending_at=timezone.now() - timedelta(
        seconds=settings.PARLEY_RECONCILE_WINDOW_SECONDS + 1))
    assert messages_sweep().failed_unknown == 1
    message.refresh_from_db()
    assert (message.status, message.error_title) == ("failed", "No answer from the provider")
    assert message.next_attempt_at is None and len(locmem.outbox) == 1


def test_sweeper_rings_for_queued_rows_the_broker_lost(scoped, number, open_conversation, settings,
                                                         django_capture_on_commit_callbacks):
    message, = queued(open_conversation)
    Message.objects.filter(pk=message.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=settings.PARLEY_QUEUED_STALE_SECONDS + 1))
    with django_capture_on_commit_callbacks(execute=True):
        report = messages_sweep()
    assert report.rung == 1
    message.refresh_from_db()
    assert message.status == "accepted"


def test_disabled_numbers_send_nothing(scoped, number, open_conversation):
    queued(open_conversation)
    number.status = "disabled"
    number.save()
    assert dispatch(number).claimed == 0 and locmem.outbox == []


def test_dispatch_claims_only_its_own_number_and_tenant(scoped, number, open_conversation):
    queued(open_conversation, 2)
    other = MessageFactory(status="queued", next_attempt_at=timezone.now())  # another tenant
    same_tenant_other_number = MessageFactory(
        conversation__tenant=number.tenant, conversation__phone_number=PhoneNumberFactory(tenant=number.tenant),
        status="queued", next_attempt_at=timezone.now())
    assert dispatch(number).claimed == 2
    assert Message.objects.unscoped().get(pk=other.pk).status == "queued"
    assert Message.objects.unscoped().get(pk=same_tenant_other_number.pk).status == "queued"


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_claims_never_take_the_same_row():
    tenant = TenantFactory()
    number = PhoneNumberFactory(tenant=tenant)
    conversation = MessageFactory(conversation__tenant=tenant, conversation__phone_number=number,
                                  status="read").conversation
    queued(conversation, 60)
    results: list[list[int]] = []
    barrier = threading.Barrier(2)

    def claim():
        barrier.wait()
        try:
            results.append(_claim(number=number, limit=40))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first, second = results
    assert not set(first) & set(second)
    assert len(first) + len(second) == 60
    assert Message.objects.unscoped().filter(status="sending").count() == 60



def test_rows_the_tokens_did_not_reach_in_time_go_back_to_the_queue_unsent(scoped, number, open_conversation,
                                                                          monkeypatch):
    from apps.conversations.services import dispatch as dispatch_module

    class StingyGate:  # three tokens, then the timeout passes with no more
        def __init__(self, **kwargs):
            self.left = 3

        async def __call__(self, want):
            granted, self.left = min(want, self.left), self.left - min(want, self.left)
            return granted

    monkeypatch.setattr(dispatch_module, "TokenGate", StingyGate)
    ids = [m.pk for m in queued(open_conversation, 8)]
    rung = []
    monkeypatch.setattr(dispatch_module, "ring_dispatch", lambda **kwargs: rung.append(kwargs))
    report = dispatch(number)
    assert rung == [{"tenant_id": number.tenant_id, "phone_number_id": number.pk}]  # the rest goes next time
    assert (report.claimed, report.accepted) == (3, 3) and len(locmem.outbox) == 3
    rows = Message.objects.filter(pk__in=ids).order_by("id")
    assert [r.status for r in rows] == ["accepted"] * 3 + ["queued"] * 5
    assert [r.attempt_count for r in rows] == [1] * 3 + [0] * 5  # never posted: no attempt counted
    assert all(r.next_attempt_at is not None for r in rows[3:])
    assert MessageAttempt.objects.filter(message_id__in=ids[3:]).count() == 0
