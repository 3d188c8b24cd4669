"""apps/core/rows.py: single rows written and read through fixed statements must be exactly what
the ORM would write and read."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from apps.contacts.models import Contact
from apps.conversations.models import Conversation, Message
from apps.core.rows import models_from_row, row_insert, row_insert_with_update, row_update, select_columns
from tests.factories import ContactFactory, ConversationFactory, PhoneNumberFactory

pytestmark = pytest.mark.django_db


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_an_inserted_row_reads_back_as_the_orm_writes_it(tenant):
    conversation = ConversationFactory(tenant=tenant)
    now = timezone.now()
    values = dict(tenant=tenant, conversation=conversation, phone_number=conversation.phone_number,
                  contact=conversation.contact, direction="outbound", type="text",
                  content={"body": "Ünïcode, \"quotes\" and a list", "items": [1, 2.5, None, True]},
                  text_preview="preview", status="queued", status_updated_at=now, occurred_at=now,
                  idempotency_key="key-1", next_attempt_at=now + timedelta(seconds=3))
    ours = row_insert(Message(**values))
    theirs = Message.all_tenants.create(**{**values, "idempotency_key": "key-2"})

    assert ours.pk and not ours._state.adding and ours._state.db == "default"
    stored, reference = Message.all_tenants.get(pk=ours.pk), Message.all_tenants.get(pk=theirs.pk)
    differs = {"id", "idempotency_key", "created_at", "updated_at"}
    assert {k: v for k, v in _fields(stored).items() if k not in differs} == \
           {k: v for k, v in _fields(reference).items() if k not in differs}
    assert stored.content == values["content"] and stored.next_attempt_at == values["next_attempt_at"]
    # auto_now_add / auto_now were filled in on the instance and in the row, as save() does.
    assert ours.created_at and stored.created_at == ours.created_at and stored.updated_at == ours.updated_at
    assert _fields(stored) == _fields(ours)


def test_an_insert_that_breaks_a_constraint_raises_djangos_integrity_error(tenant):
    conversation = ConversationFactory(tenant=tenant)
    now = timezone.now()

    def message() -> Message:
        return Message(tenant=tenant, conversation=conversation, phone_number=conversation.phone_number,
                       contact=conversation.contact, direction="outbound", type="text", content={"body": "x"},
                       status="queued", status_updated_at=now, occurred_at=now, idempotency_key="same")

    row_insert(message())
    with pytest.raises(IntegrityError), transaction.atomic():
        row_insert(message())
    assert Message.all_tenants.filter(idempotency_key="same").count() == 1


def test_an_update_changes_the_row_of_its_tenant_only(tenant, other_tenant):
    conversation = ConversationFactory(tenant=tenant, last_message_preview="before")
    later = timezone.now() + timedelta(minutes=5)
    values = {"last_message_preview": "after", "last_message_at": later, "updated_at": later}

    assert row_update(Conversation, pk=conversation.pk, tenant_id=other_tenant.pk, values=values) == 0
    conversation.refresh_from_db()
    assert conversation.last_message_preview == "before"

    assert row_update(Conversation, pk=conversation.pk, tenant_id=tenant.pk, values=values) == 1
    conversation.refresh_from_db()
    assert (conversation.last_message_preview, conversation.last_message_at) == ("after", later)


def test_models_read_from_a_joined_row_equal_the_orms(tenant):
    contact = ContactFactory(tenant=tenant, name="Zoë", attributes={"plan": "gold", "seats": 3, "tags": ["a"]})
    conversation = ConversationFactory(tenant=tenant, contact=contact, window_expires_at=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {select_columns(Conversation, 'c')}, {select_columns(Contact, 'x')} "
                       "FROM conversations_conversation c JOIN contacts_contact x ON x.id = c.contact_id "
                       "WHERE c.id = %s", [conversation.pk])
        row = cursor.fetchone()
    read_conversation, read_contact = models_from_row(row, ((Conversation, "c"), (Contact, "x")))

    assert _fields(read_conversation) == _fields(Conversation.all_tenants.get(pk=conversation.pk))
    assert _fields(read_contact) == _fields(Contact.all_tenants.get(pk=contact.pk))
    assert read_contact.attributes == {"plan": "gold", "seats": 3, "tags": ["a"]}
    assert read_conversation.window_expires_at.tzinfo is not None
    assert not read_conversation._state.adding and model_to_dict(read_contact)["name"] == "Zoë"


def test_the_statements_are_built_per_model_and_columns(tenant):
    number = PhoneNumberFactory(tenant=tenant)
    first, second = ConversationFactory(tenant=tenant, phone_number=number), ConversationFactory(tenant=tenant)
    row_update(Conversation, pk=first.pk, tenant_id=tenant.pk, values={"status": "pending"})
    row_update(Conversation, pk=second.pk, tenant_id=tenant.pk, values={"unread_count": 4})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.unread_count) == ("pending", 0)
    assert (second.status, second.unread_count) == ("open", 4)


def test_an_insert_with_an_update_writes_both(tenant):
    conversation = ConversationFactory(tenant=tenant, last_message_preview="before")
    now = timezone.now()
    message = row_insert_with_update(
        Message(tenant=tenant, conversation=conversation, phone_number=conversation.phone_number,
                contact=conversation.contact, direction="outbound", type="text", content={"body": "hi"},
                text_preview="hi", status="queued", status_updated_at=now, occurred_at=now),
        Conversation, pk=conversation.pk, tenant_id=tenant.pk, values={"last_message_preview": "hi", "updated_at": now})
    assert Message.all_tenants.get(pk=message.pk).content == {"body": "hi"}
    conversation.refresh_from_db()
    assert conversation.last_message_preview == "hi"


def test_an_insert_with_an_update_writes_neither_when_the_insert_fails(tenant):
    conversation = ConversationFactory(tenant=tenant, last_message_preview="before")
    now = timezone.now()

    def send() -> Message:
        return row_insert_with_update(
            Message(tenant=tenant, conversation=conversation, phone_number=conversation.phone_number,
                    contact=conversation.contact, direction="outbound", type="text", content={"body": "hi"},
                    status="queued", status_updated_at=now, occurred_at=now, idempotency_key="once"),
            Conversation, pk=conversation.pk, tenant_id=tenant.pk, values={"last_message_preview": "second"})

    send()
    Conversation.all_tenants.filter(pk=conversation.pk).update(last_message_preview="first")
    with pytest.raises(IntegrityError), transaction.atomic():
        send()
    conversation.refresh_from_db()
    assert conversation.last_message_preview == "first"
    assert Message.all_tenants.filter(idempotency_key="once").count() == 1


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_on_postgresql_the_fixed_statements_and_only_they_are_prepared(tenant):
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    conversation = ConversationFactory(tenant=tenant)
    before = set(_prepared())  # the connection outlives a test: what earlier tests prepared stays
    for _ in range(3):  # more than once: the ORM's own queries must not be prepared however often they run
        Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk).first()
    with CaptureQueriesContext(connection) as captured:
        row_update(Conversation, pk=conversation.pk, tenant_id=tenant.pk, values={"unread_count": 7})
        row_update(Conversation, pk=conversation.pk, tenant_id=tenant.pk, values={"unread_count": 8})
    statement = 'UPDATE "conversations_conversation" SET "unread_count" = $1 WHERE "id" = $2 AND "tenant_id" = $3'
    after = set(_prepared())
    assert statement in after and after - before <= {statement}
    conversation.refresh_from_db()
    assert conversation.unread_count == 8
    # Logged with their values, as Django logs every other query.
    assert [q["sql"] for q in captured.captured_queries] == [
        f'UPDATE "conversations_conversation" SET "unread_count" = {n} WHERE "id" = {conversation.pk} '
        f'AND "tenant_id" = {tenant.pk}' for n in (7, 8)]
