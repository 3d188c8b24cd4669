"""Outbound messages rewritten in place. A status webhook (sent, delivered, read) and the
dispatcher's claim rewrite a message's row; while an index names a column they change, every
rewrite adds an entry to each of the table's eight indexes. No index names the status any more:

- the dispatcher's and the sweeper's indexes cover the rows whose ``next_attempt_at`` is set,
  which the pipeline keeps true of queued and sending rows only (rows left with one from before
  are cleared here first, and failed rows from before without a failed_at get their status
  time);
- the (tenant, direction, status) index is dropped: the API's status filter reads the tenant's
  newest messages instead, except for ``failed``, rare and looked for, which has an index of
  its own on the rows whose ``failed_at`` is set (written once, when the row fails).

PostgreSQL then rewrites such a row in its own page when the page has room (a HOT update: no
index entry, a smaller WAL record, nothing for VACUUM to remove from the indexes), so the table
keeps part of every page free for it (fillfactor). Rows written before keep their packed pages.
"""

from django.conf import settings
from django.db import migrations, models
from django.db.models.functions import Coalesce

FILLFACTOR = 60
TABLE = "conversations_message"


def leave_room(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} SET (fillfactor = {FILLFACTOR})")


def pack(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} RESET (fillfactor)")


def clear_finished(apps, schema_editor):
    Message = apps.get_model("conversations", "Message")
    Message._default_manager.filter(next_attempt_at__isnull=False).exclude(status__in=["queued", "sending"]).update(
        next_attempt_at=None)
    # Every path that fails a row sets failed_at; a row from before that did not gets its status time.
    Message._default_manager.filter(status="failed", failed_at__isnull=True).update(
        failed_at=Coalesce("status_updated_at", "updated_at"))


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0003_recipient_lighter_writes'),
        ('contacts', '0004_contact_search_trigram_indexes'),
        ('conversations', '0007_message_column_statistics'),
        ('phone_numbers', '0001_initial'),
        ('tenants', '0002_invitation'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(clear_finished, migrations.RunPython.noop),
        migrations.RemoveIndex(
            model_name='message',
            name='message_tenant_status_idx',
        ),
        migrations.RemoveIndex(
            model_name='message',
            name='message_sweep_idx',
        ),
        migrations.RemoveIndex(
            model_name='message',
            name='message_dispatch_idx',
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('next_attempt_at__isnull', False)), fields=['tenant', 'phone_number', 'next_attempt_at', 'id'], name='message_dispatch_idx'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('next_attempt_at__isnull', False)), fields=['next_attempt_at'], name='message_pending_idx'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('failed_at__isnull', False)), fields=['tenant', '-id'], name='message_failed_idx'),
        ),
        migrations.RunPython(leave_room, pack),
    ]
