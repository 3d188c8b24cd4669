"""The inbox's tab counts from a tally kept by triggers (ConversationTally, tally_triggers.py).

The counts per view and status grouped every listed conversation of the workspace on each
request: 25-60 ms at 100,000 conversations, all of it in the database. The tally holds signed
deltas per (number, assignee, status) that triggers insert as conversations come, go and change;
reading the counts sums a few dozen rows. The triggers are created first, then the existing
conversations are counted, in this migration's transaction.
"""

import django.db.models.deletion
import django.db.models.manager
from django.conf import settings
from django.db import migrations, models

from apps.conversations import tally_triggers


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise RuntimeError(f"ConversationTally triggers are written for PostgreSQL and SQLite, not {vendor}")
    for statement in tally_triggers.POSTGRESQL if vendor == "postgresql" else tally_triggers.SQLITE:
        schema_editor.execute(statement)
    schema_editor.execute(tally_triggers.FILL)


def drop(apps, schema_editor):
    for name in ("insert", "delete", "update"):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS conversations_tally_{name}"
                              + (" ON conversations_conversation" if schema_editor.connection.vendor == "postgresql"
                                 else ""))
    if schema_editor.connection.vendor == "postgresql":
        for name in ("insert", "delete", "update"):
            schema_editor.execute(f"DROP FUNCTION IF EXISTS conversations_tally_{name}()")


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0008_message_rewritten_in_place'),
        ('phone_numbers', '0001_initial'),
        ('tenants', '0002_invitation'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ConversationTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(max_length=16)),
                ('n', models.IntegerField()),
                ('assignee', models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('phone_number', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='phone_numbers.phonenumber')),
                ('tenant', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='tenants.tenant')),
            ],
            options={
                'abstract': False,
                'base_manager_name': 'all_tenants',
                'default_manager_name': 'all_tenants',
                'indexes': [models.Index(fields=['tenant', 'phone_number'], name='conv_tally_tenant_number_idx')],
            },
            managers=[
                ('all_tenants', django.db.models.manager.Manager()),
            ],
        ),
        migrations.RunPython(create, drop),
    ]
