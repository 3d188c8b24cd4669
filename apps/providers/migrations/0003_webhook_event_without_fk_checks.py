"""Webhook events stored without foreign-key checks in the database: the deferred checks of the
tenant and number references locked both rows (FOR KEY SHARE) at the commit of every
acknowledged callback, so concurrent acknowledgements of a number queued on the same two rows.
Django's on_delete still cascades (tenant) and nulls (number). The tenant's own index goes too:
the tenant is the leading column of the pending and received-time indexes."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('phone_numbers', '0001_initial'),
        ('providers', '0002_webhook_event_pending_by_tenant'),
        ('tenants', '0002_invitation'),
    ]

    operations = [
        migrations.AlterField(
            model_name='webhookevent',
            name='phone_number',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='phone_numbers.phonenumber'),
        ),
        migrations.AlterField(
            model_name='webhookevent',
            name='tenant',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.tenant'),
        ),
    ]
