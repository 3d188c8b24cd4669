"""The triggers that keep ConversationTally (models.py) in step with the conversations.

A conversation counts once it has a message (``last_message_at`` is set: the inbox lists only
those), under its (workspace, number, assignee, status). Each trigger inserts signed deltas;
nothing here updates or locks a tally row.

- PostgreSQL: an insert or delete is counted once per statement, grouped from its transition
  table (a campaign's batch of 250 new conversations is one row); an update, row by row, only
  when its WHEN clause (evaluated without calling the function) sees a counted column change:
  a last-message update, the common case, fires nothing.
- SQLite: row by row, with the same conditions. SQLite rebuilds a table to alter it and the
  rebuilt table has lost its triggers: ``ensure_sqlite_triggers`` (text_triggers.py) creates
  them again after every ``migrate``.

Migration ``conversations.0009`` creates them and counts the existing conversations.
"""

from __future__ import annotations

TABLE = "conversations_conversationtally"
COLUMNS = "tenant_id, phone_number_id, assignee_id, status, n"
GROUP = "tenant_id, phone_number_id, assignee_id, status"
# A change that moves a conversation from one count to another (or into or out of the counts).
_CHANGED = ("OLD.status {ne} NEW.status OR OLD.assignee_id {ne} NEW.assignee_id "
            "OR OLD.phone_number_id {ne} NEW.phone_number_id OR OLD.tenant_id {ne} NEW.tenant_id "
            "OR (OLD.last_message_at IS NULL) <> (NEW.last_message_at IS NULL)")
_UPDATE_OF = "status, assignee_id, phone_number_id, tenant_id, last_message_at"

POSTGRESQL = [
    f"""
    CREATE OR REPLACE FUNCTION conversations_tally_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO {TABLE} ({COLUMNS})
        SELECT {GROUP}, count(*) FROM new_conversations WHERE last_message_at IS NOT NULL GROUP BY {GROUP};
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE OR REPLACE FUNCTION conversations_tally_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO {TABLE} ({COLUMNS})
        SELECT {GROUP}, -count(*) FROM old_conversations WHERE last_message_at IS NOT NULL GROUP BY {GROUP};
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE OR REPLACE FUNCTION conversations_tally_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.last_message_at IS NOT NULL THEN
            INSERT INTO {TABLE} ({COLUMNS})
            VALUES (OLD.tenant_id, OLD.phone_number_id, OLD.assignee_id, OLD.status, -1);
        END IF;
        IF NEW.last_message_at IS NOT NULL THEN
            INSERT INTO {TABLE} ({COLUMNS})
            VALUES (NEW.tenant_id, NEW.phone_number_id, NEW.assignee_id, NEW.status, 1);
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER conversations_tally_insert AFTER INSERT ON conversations_conversation
    REFERENCING NEW TABLE AS new_conversations FOR EACH STATEMENT EXECUTE FUNCTION conversations_tally_insert()
    """,
    """
    CREATE TRIGGER conversations_tally_delete AFTER DELETE ON conversations_conversation
    REFERENCING OLD TABLE AS old_conversations FOR EACH STATEMENT EXECUTE FUNCTION conversations_tally_delete()
    """,
    f"""
    CREATE TRIGGER conversations_tally_update AFTER UPDATE OF {_UPDATE_OF} ON conversations_conversation
    FOR EACH ROW WHEN ({_CHANGED.format(ne="IS DISTINCT FROM")}) EXECUTE FUNCTION conversations_tally_update()
    """,
]

SQLITE = [
    f"""
    CREATE TRIGGER IF NOT EXISTS conversations_tally_insert AFTER INSERT ON conversations_conversation
    WHEN NEW.last_message_at IS NOT NULL
    BEGIN
        INSERT INTO {TABLE} ({COLUMNS})
        VALUES (NEW.tenant_id, NEW.phone_number_id, NEW.assignee_id, NEW.status, 1);
    END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS conversations_tally_delete AFTER DELETE ON conversations_conversation
    WHEN OLD.last_message_at IS NOT NULL
    BEGIN
        INSERT INTO {TABLE} ({COLUMNS})
        VALUES (OLD.tenant_id, OLD.phone_number_id, OLD.assignee_id, OLD.status, -1);
    END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS conversations_tally_update AFTER UPDATE OF {_UPDATE_OF} ON conversations_conversation
    WHEN {_CHANGED.format(ne="IS NOT")}
    BEGIN
        INSERT INTO {TABLE} ({COLUMNS})
        SELECT OLD.tenant_id, OLD.phone_number_id, OLD.assignee_id, OLD.status, -1 WHERE OLD.last_message_at IS NOT NULL;
        INSERT INTO {TABLE} ({COLUMNS})
        SELECT NEW.tenant_id, NEW.phone_number_id, NEW.assignee_id, NEW.status, 1 WHERE NEW.last_message_at IS NOT NULL;
    END
    """,
]

# The counts of the conversations already there (run once the triggers exist, in the same
# transaction).
FILL = (f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {GROUP}, count(*) FROM conversations_conversation "
        f"WHERE last_message_at IS NOT NULL GROUP BY {GROUP}")
