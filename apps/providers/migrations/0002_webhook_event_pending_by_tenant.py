from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('phone_numbers', '0001_initial'),
        ('providers', '0001_initial'),
        ('tenants', '0002_invitation'),
    ]

    # The processor reads a tenant's pending callbacks in id order with LIMIT, and the
    # distinct tenants with them by a loose scan: both plain index scans on (tenant, id).
    operations = [
        migrations.RemoveIndex(
            model_name='webhookevent',
            name='webhook_event_pending_idx',
        ),
        migrations.AddIndex(
            model_name='webhookevent',
            index=models.Index(condition=models.Q(('processed_at__isnull', True)), fields=['tenant', 'id'], name='webhook_event_pending_idx'),
        ),
    ]
