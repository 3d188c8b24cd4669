"""ANALYZE no longer samples the message columns no query filters on: the body and its preview,
the pricing document and the error texts. Campaigns analyze the message table as they grow it
(apps/core/statistics.py); on a table whose rows are rewritten five times each, sampling those
wide columns was two thirds of every ANALYZE."""

from django.db import migrations

from apps.core.statistics import skip_column_statistics

COLUMNS = ("conversations_message", ("content", "text_preview", "pricing", "error_title", "error_detail"))


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0006_message_fewer_indexes"),
    ]

    operations = [
        migrations.RunPython(skip_column_statistics(*COLUMNS), skip_column_statistics(*COLUMNS, target=-1)),
    ]
