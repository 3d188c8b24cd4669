"""The SQLite triggers that keep MessageText (models.py) in step with the messages.

Migration ``conversations.0005`` creates them (and PostgreSQL's own). SQLite, unlike
PostgreSQL, rebuilds a table to alter one of its columns -- and a rebuilt table has lost its
triggers -- so 0006 creates them again, and so does every ``migrate`` where they are missing
(``post_migrate``, apps.py), with ConversationTally's.
"""

from __future__ import annotations

from typing import Any

SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER IF NOT EXISTS conversations_message_text_insert AFTER INSERT ON conversations_message
    WHEN NEW.text_preview <> ''
    BEGIN
        INSERT INTO conversations_messagetext (message_id, tenant_id, conversation_id, text, created_at, updated_at)
        VALUES (NEW.id, NEW.tenant_id, NEW.conversation_id, NEW.text_preview, NEW.created_at, NEW.updated_at);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS conversations_message_text_update
    AFTER UPDATE OF text_preview, conversation_id, tenant_id ON conversations_message
    WHEN OLD.text_preview IS NOT NEW.text_preview OR OLD.conversation_id <> NEW.conversation_id
         OR OLD.tenant_id <> NEW.tenant_id
    BEGIN
        DELETE FROM conversations_messagetext WHERE message_id = NEW.id;
        INSERT INTO conversations_messagetext (message_id, tenant_id, conversation_id, text, created_at, updated_at)
        SELECT NEW.id, NEW.tenant_id, NEW.conversation_id, NEW.text_preview, NEW.created_at, NEW.updated_at
        WHERE NEW.text_preview <> '';
    END
    """,
]


def ensure_sqlite_triggers(*, using: str = "default", **kwargs: Any) -> None:
    """Create the triggers where a table rebuild dropped them: these (MessageText's) and
    ConversationTally's (tally_triggers.py). SQLite only; once their tables exist."""
    from django.db import connections

    from .tally_triggers import SQLITE as TALLY_TRIGGERS

    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    tables = set(connection.introspection.table_names())
    wanted = [({"conversations_message", "conversations_messagetext"}, SQLITE_TRIGGERS),
              ({"conversations_conversation", "conversations_conversationtally"}, TALLY_TRIGGERS)]
    with connection.cursor() as cursor:
        for needs, statements in wanted:
            if needs <= tables:
                for statement in statements:
                    cursor.execute(statement)
