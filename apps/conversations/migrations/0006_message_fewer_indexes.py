"""Fewer indexes on the message table: the tenant's own index is dropped (the composite ones lead
with it), media, reply_to and sent_by get partial indexes (where set) instead of whole ones, and
the thread and WhatsApp-id indexes lead with the conversation and the number, serving those
foreign keys too, whose own indexes are dropped. The five rewrites of an outbound message's row
each write six index entries fewer.

SQLite rebuilds the table to alter these columns, which drops its triggers: the last step
creates MessageText's again (they are also ensured after every migrate, see text_triggers.py)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from apps.conversations.text_triggers import SQLITE_TRIGGERS


def triggers_again(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_TRIGGERS:
            schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0002_engine'),
        ('contacts', '0004_contact_search_trigram_indexes'),
        ('conversations', '0005_message_text'),
        ('phone_numbers', '0001_initial'),
        ('tenants', '0002_invitation'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='message',
            name='media',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='messages', to='conversations.media'),
        ),
        migrations.AlterField(
            model_name='message',
            name='reply_to',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='conversations.message'),
        ),
        migrations.AlterField(
            model_name='message',
            name='sent_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='message',
            name='tenant',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.tenant'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('media__isnull', False)), fields=['media'], name='message_media_idx'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('reply_to__isnull', False)), fields=['reply_to'], name='message_reply_to_idx'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('sent_by__isnull', False)), fields=['sent_by'], name='message_sent_by_idx'),
        ),

        migrations.RemoveIndex(
            model_name='message',
            name='message_thread_idx',
        ),
        migrations.RemoveIndex(
            model_name='message',
            name='message_wamid_idx',
        ),
        migrations.AlterField(
            model_name='message',
            name='conversation',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='messages', to='conversations.conversation'),
        ),
        migrations.AlterField(
            model_name='message',
            name='phone_number',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='phone_numbers.phonenumber'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(fields=['conversation', '-id'], name='message_thread_idx'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(fields=['phone_number', 'wa_message_id'], name='message_wamid_idx'),
        ),
        migrations.RunPython(triggers_again, migrations.RunPython.noop, elidable=False),
    ]
