"""The searchable copy of each message's text, kept by database triggers (migration
conversations.0005): written once when the message is inserted, by any path, and again only
when the text itself changes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.conversations.models import Message, MessageText
from apps.conversations.text_triggers import ensure_sqlite_triggers
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db(transaction=False)


def texts(conversation) -> dict[int, str]:
    return dict(MessageText.all_tenants.filter(conversation=conversation).values_list("message_id", "text"))


def test_an_inserted_message_has_its_text_copied_and_an_empty_one_has_none(tenant, open_conversation):
    said = MessageFactory(conversation=open_conversation, text_preview="Where is my parcel?")
    media = MessageFactory(conversation=open_conversation, type="image", text_preview="")
    copy = MessageText.all_tenants.get(message=said)
    assert copy.text == "Where is my parcel?" and copy.tenant_id == tenant.pk
    assert copy.conversation_id == open_conversation.pk
    assert texts(open_conversation) == {said.pk: "Where is my parcel?"} and media.pk not in texts(open_conversation)


def test_bulk_inserts_are_copied_too(open_conversation):
    made = Message.all_tenants.bulk_create([
        MessageFactory.build(conversation=open_conversation, text_preview=f"Order {n} shipped") for n in range(30)])
    assert texts(open_conversation) == {m.pk: f"Order {n} shipped" for n, m in enumerate(made)}


def test_status_updates_leave_the_copy_alone_and_a_new_text_replaces_it(open_conversation):
    message = MessageFactory(conversation=open_conversation, direction="outbound", status="queued",
                             text_preview="Your code is 1234")
    written = MessageText.all_tenants.get(message=message).updated_at
    for status in ("sending", "accepted", "sent", "delivered", "read"):
        Message.all_tenants.filter(pk=message.pk).update(status=status)
    message.refresh_from_db()
    message.save()  # a save() writes every column, the unchanged text among them
    assert MessageText.all_tenants.get(message=message).updated_at == written
    Message.all_tenants.filter(pk=message.pk).update(text_preview="Your code is 5678")
    assert texts(open_conversation) == {message.pk: "Your code is 5678"}
    Message.all_tenants.filter(pk=message.pk).update(text_preview="")
    assert texts(open_conversation) == {}


def test_moving_a_message_moves_its_copy(tenant, number, open_conversation):
    message = MessageFactory(conversation=open_conversation, text_preview="Hello")
    other = ConversationFactory(tenant=tenant, phone_number=number)
    Message.all_tenants.filter(pk=message.pk).update(conversation=other)
    assert texts(open_conversation) == {} and texts(other) == {message.pk: "Hello"}


def test_deleting_a_message_deletes_its_copy(open_conversation):
    message = MessageFactory(conversation=open_conversation, text_preview="Hello")
    message.delete()
    assert not MessageText.all_tenants.exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_copies_existing_messages_and_can_be_reversed(open_conversation, migrated_back):
    kept = MessageFactory(conversation=open_conversation, text_preview="Before the copy existed")
    executor = MigrationExecutor(connection)
    executor.migrate([("conversations", "0004_message_text_trigram_index")])
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("conversations", "0006_message_fewer_indexes")])  # 0006 rebuilds it on SQLite
    assert texts(open_conversation) == {kept.pk: "Before the copy existed"}
    later = MessageFactory(conversation=open_conversation, text_preview="After")
    assert texts(open_conversation) == {kept.pk: "Before the copy existed", later.pk: "After"}


def test_triggers_a_table_rebuild_dropped_are_created_again_after_migrate(open_conversation):
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite rebuilds a table to alter it (and drops its triggers)")
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER conversations_message_text_insert")
    lost = MessageFactory(conversation=open_conversation, text_preview="Not copied")
    assert texts(open_conversation) == {}
    ensure_sqlite_triggers()  # what post_migrate runs
    kept = MessageFactory(conversation=open_conversation, text_preview="Copied again")
    assert texts(open_conversation) == {kept.pk: "Copied again"} and lost.pk not in texts(open_conversation)
