"""The contact table's indexes: the tenant has none of its own (every index leads with it)."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.contacts.models import Contact

pytestmark = pytest.mark.django_db


def _index_columns() -> list[list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Contact._meta.db_table)
    return [c["columns"] for c in constraints.values() if c["index"] or c["unique"]]


def test_every_index_of_the_contact_table_leads_with_the_tenant_and_none_is_the_tenant_alone():
    columns = _index_columns()
    assert ["tenant_id"] not in columns
    assert ["tenant_id", "wa_id"] in columns  # the key a send and a webhook find a contact by
    tenant_led = [c for c in columns if c and c[0] == "tenant_id"]
    assert len(tenant_led) >= 3  # the wa_id key, the name and the opt-in indexes
