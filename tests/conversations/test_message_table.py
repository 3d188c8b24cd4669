"""The message table is shaped so that moving a message along its statuses rewrites its row in
place: no index names a column a claim or a status webhook changes (migration 0008)."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from apps.conversations.models import Message
from apps.conversations.services import message_statuses_apply
from apps.providers.events import StatusUpdate
from tests.factories import MessageFactory

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's HOT updates")

TABLE = Message._meta.db_table
# What the dispatcher's claim and the sent / delivered / read webhooks write (provider ids and
# next_attempt_at are written once, on acceptance, failed_at once, by the rewrite that fails the
# row: those are indexed).
REWRITTEN = {"status", "sending_at", "attempt_count", "accepted_at", "sent_at", "delivered_at", "read_at",
             "status_updated_at", "updated_at", "pricing", "error_code", "error_title", "error_detail"}


@pytest.mark.django_db
def test_no_index_names_a_column_the_status_rewrites_change():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    named = {name: set(c["columns"]) & REWRITTEN for name, c in constraints.items() if c["index"] or c["unique"]}
    assert not {name: columns for name, columns in named.items() if columns}


@postgresql_only
@pytest.mark.django_db
def test_no_index_condition_names_them_either_and_pages_keep_room():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexrelid::regclass::text, pg_get_expr(indpred, indrelid) FROM pg_index "
                       "WHERE indrelid = %s::regclass AND indpred IS NOT NULL", [TABLE])
        conditions = dict(cursor.fetchall())
        cursor.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [TABLE])
        options = cursor.fetchone()[0]
    assert "message_dispatch_idx" in conditions
    assert not {name: text for name, text in conditions.items() if any(column in text for column in REWRITTEN)}
    assert "fillfactor=60" in options


def _hot_updates() -> int:
    with connection.cursor() as cursor:  # this transaction's own count, not the collector's
        cursor.execute("SELECT pg_stat_get_xact_tuples_hot_updated(%s::regclass)", [TABLE])
        return cursor.fetchone()[0]


@postgresql_only
def test_status_webhooks_rewrite_the_row_in_place(number, open_conversation):
    message = MessageFactory(conversation=open_conversation, status="accepted", provider_message_id="wamid.HOT",
                             wa_message_id="wamid.HOT")
    before = _hot_updates()
    for second, status in enumerate(("sent", "delivered", "read"), start=1):
        message_statuses_apply(phone_number=number, updates=[StatusUpdate(
            provider="meta_cloud", route_key="5550001", provider_message_id="wamid.HOT", wa_message_id="wamid.HOT",
            status=status, timestamp=datetime(2026, 11, 1, 12, 0, second, tzinfo=UTC), errors=(),
            recipient_wa_id="14155550100", conversation={}, pricing={}, callback_data=None, raw={})])
    message.refresh_from_db()
    assert message.status == "read"
    assert _hot_updates() - before == 3
