"""Trigram indexes for the inbox search by name or number: ``name__icontains`` and
``profile_name__icontains`` (written by Django as ``UPPER(...) LIKE UPPER(...)``) and
``wa_id__contains`` read them instead of every contact of the workspace. PostgreSQL only, and
only when the pg_trgm extension is available to this database user; elsewhere the search
scans, as before."""

from django.db import DatabaseError, migrations, transaction

INDEXES = {
    "contact_name_trgm_idx": "(UPPER(name::text)) gin_trgm_ops",
    "contact_profile_name_trgm_idx": "(UPPER(profile_name::text)) gin_trgm_ops",
    "contact_wa_id_trgm_idx": "wa_id gin_trgm_ops",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic():
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:  # no permission to create extensions: the savepoint rolled back
        print(f"\n  pg_trgm is not available ({exc}); the inbox search by name will scan every contact")
        return
    for name, expression in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON contacts_contact USING gin ({expression})")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ("contacts", "0003_attributes_imports"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
