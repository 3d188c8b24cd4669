from datetime import UTC, datetime, timedelta

import pytest

from apps.conversations.models import Message
from apps.conversations.services import message_statuses_apply
from apps.conversations.services.status_apply import SET, _Row, bulk_update_rows
from apps.providers.events import ErrorInfo, StatusUpdate
from apps.webhooks.models import WebhookDelivery
from tests.factories import CampaignRecipientFactory, MessageFactory, WebhookEndpointFactory

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def update(provider_id, status, seconds=0, **kwargs):
    defaults = {"provider": "meta_cloud", "route_key": "5550001", "wa_message_id": provider_id, "errors": (),
                "recipient_wa_id": "14155550100", "conversation": {}, "pricing": {}, "callback_data": None, "raw": {}}
    defaults.update(kwargs)
    return StatusUpdate(provider_message_id=provider_id, status=status, timestamp=T0 + timedelta(seconds=seconds),
                        **defaults)


@pytest.fixture
def sent_message(scoped, open_conversation):
    return MessageFactory(conversation=open_conversation, status="accepted", provider_message_id="wamid.A",
                          wa_message_id="wamid.A")


def apply(number, *updates):
    return message_statuses_apply(phone_number=number, updates=list(updates))


def test_the_ladder(number, sent_message):
    report = apply(number, update("wamid.A", "sent", 1), update("wamid.A", "delivered", 2), update("wamid.A", "read", 3))
    sent_message.refresh_from_db()
    assert report.applied == 3 and sent_message.status == "read"
    assert (sent_message.sent_at, sent_message.delivered_at, sent_message.read_at) == (
        T0 + timedelta(seconds=1), T0 + timedelta(seconds=2), T0 + timedelta(seconds=3))


def test_read_before_delivered_stays_read_and_fills_the_skipped_steps(number, sent_message):
    apply(number, update("wamid.A", "read", 3))
    report = apply(number, update("wamid.A", "delivered", 2), update("wamid.A", "sent", 1))
    sent_message.refresh_from_db()
    assert sent_message.status == "read" and report.ignored == 2
    assert sent_message.delivered_at == T0 + timedelta(seconds=3) and sent_message.sent_at == T0 + timedelta(seconds=3)


def test_duplicates_change_nothing(number, sent_message):
    apply(number, update("wamid.A", "delivered", 2))
    report = apply(number, update("wamid.A", "delivered", 9), update("wamid.A", "delivered", 9))
    sent_message.refresh_from_db()
    assert report.applied == 0 and report.ignored == 2
    assert sent_message.delivered_at == T0 + timedelta(seconds=2)


def test_failed_after_delivered_is_ignored_but_failed_before_is_kept_with_its_error(number, sent_message, open_conversation):
    apply(number, update("wamid.A", "delivered", 2))
    apply(number, update("wamid.A", "failed", 3, errors=(ErrorInfo(131026, "Undeliverable", "m", "d"),)))
    sent_message.refresh_from_db()
    assert sent_message.status == "delivered" and sent_message.error_code is None
    other = MessageFactory(conversation=open_conversation, status="accepted", provider_message_id="wamid.B")
    apply(number, update("wamid.B", "failed", 3, errors=(ErrorInfo(131049, "Ecosystem", "not delivered", "healthy"),)))
    other.refresh_from_db()
    assert (other.status, other.error_code, other.error_title, other.error_detail) == (
        "failed", 131049, "Ecosystem", "healthy")


def test_a_lost_post_answer_is_adopted_through_callback_data(number, open_conversation):
    orphan = MessageFactory(conversation=open_conversation, status="sending", provider_message_id=None)
    report = apply(number, update("wamid.NEW", "sent", 1, callback_data=str(orphan.pk)))
    orphan.refresh_from_db()
    assert report.adopted == 1
    assert (orphan.status, orphan.provider_message_id, orphan.wa_message_id) == ("sent", "wamid.NEW", "wamid.NEW")
    assert orphan.next_attempt_at is None  # answered: the sweeper's index lets go of it


def test_callback_data_cannot_reach_another_numbers_or_tenants_rows(number):
    stranger = MessageFactory(status="sending", provider_message_id=None)  # another tenant
    report = apply(number, update("wamid.X", "sent", callback_data=str(stranger.pk)))
    assert report.unmatched == 1
    assert Message.objects.unscoped().get(pk=stranger.pk).status == "sending"


def test_gupshup_dlrs_match_on_the_gupshup_id(number, open_conversation):
    message = MessageFactory(conversation=open_conversation, status="accepted", provider_message_id="gs-uuid-1",
                             wa_message_id=None)
    apply(number, update("gs-uuid-1", "delivered", 2, provider="gupshup", wa_message_id="wamid.REAL"))
    message.refresh_from_db()
    assert message.status == "delivered" and message.wa_message_id == "wamid.REAL"


def test_campaign_recipients_follow_their_message(number, open_conversation):
    recipient = CampaignRecipientFactory(tenant=number.tenant, status="accepted")
    MessageFactory(conversation=open_conversation, status="accepted", provider_message_id="wamid.C",
                   campaign_recipient=recipient)
    apply(number, update("wamid.C", "read", 3))
    recipient.refresh_from_db()
    assert recipient.status == "read"
    apply(number, update("wamid.C", "failed", 4))
    recipient.refresh_from_db()
    assert recipient.status == "read"


def test_unknown_ids_are_counted_not_raised(number, sent_message):
    report = apply(number, update("wamid.NOPE", "read"))
    assert report.unmatched == 1 and report.unmatched_ids == ["wamid.NOPE"]


def test_a_batch_of_500_is_applied_in_bulk_with_events(scoped, number, open_conversation,
                                                       django_assert_max_num_queries):
    WebhookEndpointFactory(tenant=number.tenant)
    messages = [MessageFactory(conversation=open_conversation, status="accepted", provider_message_id=f"wamid.{i}")
                for i in range(250)]
    updates = [update(f"wamid.{i}", "sent", 1) for i in range(250)] + [update(f"wamid.{i}", "delivered", 2)
                                                                       for i in range(250)]
    with django_assert_max_num_queries(20):
        report = apply(number, *updates)
    assert report.applied == 500
    assert Message.objects.filter(pk__in=[m.pk for m in messages], status="delivered").count() == 250
    assert WebhookDelivery.objects.filter(event_type="message.delivered").count() == 250
    assert WebhookDelivery.objects.filter(event_type="message.sent").count() == 250


@pytest.mark.parametrize(("profile_name", "name", "shown"), [("Jess", "Jessica Doe", "Jess"),
                                                             ("", "Jessica Doe", "Jessica Doe"), ("", "", "")])
def test_status_events_name_the_contact_as_a_received_message_does(scoped, number, open_conversation, profile_name,
                                                                    name, shown):
    WebhookEndpointFactory(tenant=number.tenant)
    contact = open_conversation.contact
    contact.profile_name, contact.name = profile_name, name
    contact.save(update_fields=["profile_name", "name"])
    message = MessageFactory(conversation=open_conversation, status="accepted", provider_message_id="wamid.N")
    apply(number, update("wamid.N", "delivered", 2))
    payload = WebhookDelivery.objects.get(event_type="message.delivered").payload
    assert payload["data"]["contact"] == {"id": contact.pk, "wa_id": contact.wa_id, "name": shown}
    assert payload["data"]["id"] == message.pk


def test_statuses_carrying_parley_ids_are_read_by_id_and_build_no_event_nobody_receives(
        scoped, number, open_conversation):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    messages = [MessageFactory(conversation=open_conversation, status="accepted", provider_message_id=f"wamid.{i}")
                for i in range(3)]
    with CaptureQueriesContext(connection) as captured:
        report = apply(number, *[update(f"wamid.{i}", "delivered", 2, callback_data=str(m.pk))
                                 for i, m in enumerate(messages)])
    assert report.applied == 3
    reads = [q["sql"] for q in captured.captured_queries
             if q["sql"].startswith("SELECT") and 'FROM "conversations_message"' in q["sql"]]
    assert len(reads) == 2  # the read, then the lock of the rows to write
    read = reads[0]
    assert "provider_message_id\" = ANY" not in read and "provider_message_id\" IN" not in read
    assert "contacts_contact" not in read  # no endpoint: no event, so no contact to name in it
    assert not WebhookDelivery.objects.exists()


def test_a_parley_id_naming_a_row_with_another_provider_id_falls_back_to_the_full_match(
        scoped, number, open_conversation):
    right = MessageFactory(conversation=open_conversation, status="accepted", provider_message_id="wamid.R")
    wrong = MessageFactory(conversation=open_conversation, status="accepted", provider_message_id="wamid.W")
    report = apply(number, update("wamid.R", "delivered", 2, callback_data=str(wrong.pk)))
    right.refresh_from_db()
    wrong.refresh_from_db()
    assert report.applied == 1 and (right.status, wrong.status) == ("delivered", "accepted")


@pytest.mark.parametrize("events", [False, True], ids=["rows-as-columns", "rows-as-messages"])
def test_a_row_moved_on_between_the_read_and_the_lock_is_worked_out_afresh(scoped, number, open_conversation,
                                                                           monkeypatch, events):
    from apps.conversations.services import status_apply

    if events:
        WebhookEndpointFactory(tenant=number.tenant)
    # The POST's answer is recorded (sending -> accepted, with the provider's id) after the batch
    # read the row but before it locked it: the batch must build on what was recorded.
    message = MessageFactory(conversation=open_conversation, status="sending", provider_message_id=None)
    real_lock = status_apply._lock

    def lock_after_the_dispatcher(tenant_id, outcomes, pks):
        Message.objects.filter(pk=message.pk).update(status="accepted", provider_message_id="wamid.L",
                                                     wa_message_id="wamid.L", next_attempt_at=None)
        return real_lock(tenant_id, outcomes, pks)

    monkeypatch.setattr(status_apply, "_lock", lock_after_the_dispatcher)
    report = apply(number, update("wamid.L", "delivered", 2, callback_data=str(message.pk)))
    message.refresh_from_db()
    assert report.applied == 1
    assert (message.status, message.provider_message_id, message.sent_at) == ("delivered", "wamid.L",
                                                                              T0 + timedelta(seconds=2))


def test_a_batch_reads_the_endpoints_once(scoped, number, open_conversation):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    WebhookEndpointFactory(tenant=number.tenant)
    MessageFactory(conversation=open_conversation, status="accepted", provider_message_id="wamid.E")
    with CaptureQueriesContext(connection) as captured:
        apply(number, update("wamid.E", "delivered", 2))
    assert sum('FROM "webhooks_webhookendpoint"' in q["sql"] for q in captured.captured_queries) == 1
    assert WebhookDelivery.objects.filter(event_type="message.delivered").count() == 1


def _columns(message):
    message.refresh_from_db()
    return {f.attname: getattr(message, f.attname) for f in Message._meta.concrete_fields
            if f.attname not in ("id", "created_at", "updated_at", "provider_message_id", "wa_message_id")}


def test_rows_read_as_columns_end_as_rows_read_as_messages(scoped, number, open_conversation):
    """Without an endpoint a row is read as the few columns statuses touch, with one as a whole
    Message (its events need it): the same updates must leave the same row either way."""
    from tests.factories import ConversationFactory

    def run(prefix, conversation, phone_number):
        recipient = CampaignRecipientFactory(tenant=conversation.tenant, status="accepted")
        plain = MessageFactory(conversation=conversation, status="accepted", provider_message_id=f"{prefix}.P",
                               campaign_recipient=recipient)
        adopted = MessageFactory(conversation=conversation, status="sending", provider_message_id=None)
        failing = MessageFactory(conversation=conversation, status="accepted", provider_message_id=f"{prefix}.F",
                                 error_code=131000, error_title="earlier", error_detail="try")
        # Pricing and a sent time already set: kept, while the read fills in the delivered time.
        priced = MessageFactory(conversation=conversation, status="sent", provider_message_id=f"{prefix}.S",
                                pricing={"pricing": {"category": "utility"}}, sent_at=T0)
        message_statuses_apply(phone_number=phone_number, updates=[
            update(f"{prefix}.S", "read", 5, pricing={"category": "marketing"}),
            update(f"{prefix}.P", "read", 3), update(f"{prefix}.P", "sent", 1, pricing={"billable": True},
                                                     conversation={"id": "c1"}),
            update(f"{prefix}.A", "delivered", 2, callback_data=str(adopted.pk)),
            update(f"{prefix}.F", "sent", 1),
            update(f"{prefix}.F", "failed", 4, errors=(ErrorInfo(code=131026, title="Undeliverable", message="m",
                                                                 details="d"),)),
        ])
        return [_columns(m) for m in (plain, adopted, failing, priced)], recipient

    plain_rows, plain_recipient = run("wamid.col", open_conversation, number)
    WebhookEndpointFactory(tenant=number.tenant)
    other = ConversationFactory(tenant=number.tenant, phone_number=number)
    event_rows, event_recipient = run("wamid.msg", other, number)
    for row in plain_rows + event_rows:
        row.pop("conversation_id"), row.pop("contact_id"), row.pop("campaign_recipient_id")
    assert plain_rows == event_rows
    assert plain_rows[0]["status"] == "read" and plain_rows[0]["pricing"]
    assert plain_rows[1]["status"] == "delivered" and plain_rows[2]["error_code"] == 131026
    assert plain_rows[3]["pricing"] == {"pricing": {"category": "utility"}} and plain_rows[3]["sent_at"] == T0
    assert plain_rows[3]["delivered_at"] == plain_rows[3]["read_at"] == T0 + timedelta(seconds=5)
    plain_recipient.refresh_from_db()
    event_recipient.refresh_from_db()
    assert plain_recipient.status == event_recipient.status
    assert WebhookDelivery.objects.filter(event_type="message.read").count() == 2  # the second run's two reads


@pytest.mark.parametrize("column", ["read_at", "error_detail", "pricing", "sent_at"])
def test_a_column_a_row_did_not_read_cannot_be_written(scoped, sent_message, column):
    """A row read as columns holds stand-ins for what it did not read (or only tested); writing
    one must fail loudly, never store the stand-in."""
    sent_message.pricing = {"pricing": {"category": "utility"}}
    sent_message.sent_at = T0
    sent_message.save()
    (row,) = _Row.read(Message.objects.filter(pk=sent_message.pk))
    assert (row.pricing, row.sent_at, row.delivered_at, row.error_title) == (SET, SET, None, "")
    with pytest.raises(TypeError):
        bulk_update_rows(Message, [row], [column], tenant_id=sent_message.tenant_id)
    sent_message.refresh_from_db()
    assert sent_message.read_at is None and sent_message.pricing == {"pricing": {"category": "utility"}}
