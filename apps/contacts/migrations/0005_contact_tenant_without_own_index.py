"""The contact"s tenant gets no index of its own: every index of the table leads with the
tenant, and a lone tenant index tempted PostgreSQL, on a table it had no statistics for yet, to
find a contact by scanning the tenant"s contacts instead of through the (tenant, wa_id) key. One
index fewer to write on every contact insert and import, too."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("contacts", "0004_contact_search_trigram_indexes"),
        ("tenants", "0002_invitation"),
    ]

    operations = [
        migrations.AlterField(
            model_name="contact",
            name="tenant",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.tenant"),
        ),
    ]
