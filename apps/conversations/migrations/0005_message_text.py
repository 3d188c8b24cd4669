"""Searchable message text in a table of its own (MessageText), kept by triggers.

The trigram index used to sit on the message table, whose outbound rows are updated five times
each (claimed, accepted, sent, delivered, read); every update wrote a new entry of the text's
trigrams (the status columns are indexed, so none of them is a HOT update). A campaign of
100,000 messages spent a sixth of PostgreSQL's CPU there. The text is now copied once, by an
AFTER INSERT trigger, and again only when a message's text or conversation changes; the trigram
index (PostgreSQL, where pg_trgm can be created) is on the copy. Existing messages are copied.
"""

import django.db.models.deletion
import django.db.models.manager
from django.db import DatabaseError, migrations, models, transaction

from apps.conversations.text_triggers import SQLITE_TRIGGERS

COLUMNS = "message_id, tenant_id, conversation_id, text, created_at, updated_at"
POSTGRESQL = [
    """
    CREATE FUNCTION conversations_message_text_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO conversations_messagetext (message_id, tenant_id, conversation_id, text, created_at, updated_at)
        SELECT id, tenant_id, conversation_id, text_preview, created_at, updated_at FROM new_messages
        WHERE text_preview <> '';
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER conversations_message_text_insert AFTER INSERT ON conversations_message
    REFERENCING NEW TABLE AS new_messages FOR EACH STATEMENT EXECUTE FUNCTION conversations_message_text_insert()
    """,
    """
    CREATE FUNCTION conversations_message_text_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM conversations_messagetext WHERE message_id = NEW.id;
        IF NEW.text_preview <> '' THEN
            INSERT INTO conversations_messagetext (message_id, tenant_id, conversation_id, text, created_at, updated_at)
            VALUES (NEW.id, NEW.tenant_id, NEW.conversation_id, NEW.text_preview, NEW.created_at, NEW.updated_at);
        END IF;
        RETURN NULL;
    END $$
    """,
    # Row by row, but only for the rare update that changes the text: the WHEN clause is
    # evaluated without calling the function.
    """
    CREATE TRIGGER conversations_message_text_update AFTER UPDATE OF text_preview, conversation_id, tenant_id
    ON conversations_message FOR EACH ROW
    WHEN (OLD.text_preview IS DISTINCT FROM NEW.text_preview OR OLD.conversation_id <> NEW.conversation_id
          OR OLD.tenant_id <> NEW.tenant_id)
    EXECUTE FUNCTION conversations_message_text_update()
    """,
]
SQLITE = SQLITE_TRIGGERS  # kept where post_migrate can create them again (SQLite rebuilds tables)
OLD_INDEX = "message_text_trgm_idx"
INDEX = "message_text_copy_trgm_idx"


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise RuntimeError(f"MessageText triggers are written for PostgreSQL and SQLite, not {vendor}")
    for statement in POSTGRESQL if vendor == "postgresql" else SQLITE:
        schema_editor.execute(statement)
    schema_editor.execute(
        f"INSERT INTO conversations_messagetext ({COLUMNS}) "
        "SELECT id, tenant_id, conversation_id, text_preview, created_at, updated_at FROM conversations_message "
        "WHERE text_preview <> ''")
    if vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {OLD_INDEX}")
    try:
        with transaction.atomic():
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:  # no permission to create extensions: the savepoint rolled back
        print(f"\n  pg_trgm is not available ({exc}); the inbox message search will scan every message")
        return
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON conversations_messagetext "
                          "USING gin ((UPPER(text::text)) gin_trgm_ops)")
    schema_editor.execute("ANALYZE conversations_messagetext")


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS conversations_message_text_insert ON conversations_message")
        schema_editor.execute("DROP TRIGGER IF EXISTS conversations_message_text_update ON conversations_message")
        schema_editor.execute("DROP FUNCTION IF EXISTS conversations_message_text_insert()")
        schema_editor.execute("DROP FUNCTION IF EXISTS conversations_message_text_update()")
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
            trigrams = cursor.fetchone() is not None
        if trigrams:  # without pg_trgm, 0004 created no index either
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {OLD_INDEX} ON conversations_message "
                                  "USING gin ((UPPER(text_preview::text)) gin_trgm_ops)")
    elif vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS conversations_message_text_insert")
        schema_editor.execute("DROP TRIGGER IF EXISTS conversations_message_text_update")


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0004_message_text_trigram_index'),
        ('tenants', '0002_invitation'),
    ]

    operations = [
        migrations.CreateModel(
            name='MessageText',
            fields=[
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('message', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='search_text', serialize=False, to='conversations.message')),
                ('text', models.CharField(max_length=255)),
                ('conversation', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='conversations.conversation')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.tenant')),
            ],
            options={
                'abstract': False,
                'base_manager_name': 'all_tenants',
                'default_manager_name': 'all_tenants',
                'indexes': [models.Index(fields=['conversation'], name='message_text_conversation_idx')],
            },
            managers=[
                ('all_tenants', django.db.models.manager.Manager()),
            ],
        ),
        migrations.RunPython(create, drop, elidable=False),
    ]
