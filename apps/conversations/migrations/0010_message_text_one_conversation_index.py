"""MessageText had two indexes on ``conversation_id``: the one its foreign key creates and the named
``message_text_conversation_idx`` beside it. Every message inserted (sent, received or queued by a
campaign) wrote an entry into both. The named one goes; the foreign key's serves the same lookups."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0009_conversation_tally'),
    ]

    operations = [
        migrations.RemoveIndex(model_name='messagetext', name='message_text_conversation_idx'),
    ]
