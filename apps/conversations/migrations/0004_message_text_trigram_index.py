"""A trigram index on the upper-cased message preview, so that the inbox search by message
text (``text_preview__icontains``, which Django writes as ``UPPER(...) LIKE UPPER(...)``) reads
the index instead of every message. PostgreSQL only, and only when the pg_trgm extension is
available to this database user; elsewhere the search scans, as before."""

from django.db import DatabaseError, migrations, transaction

INDEX = "message_text_trgm_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic():
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:  # no permission to create extensions: the savepoint rolled back
        print(f"\n  pg_trgm is not available ({exc}); the inbox message search will scan every message")
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON conversations_message "
        "USING gin ((UPPER(text_preview::text)) gin_trgm_ops)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0003_inbox_changes_index"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
