import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.contacts.models import Contact
from apps.core.bulk import insert_rows

pytestmark = pytest.mark.django_db


def test_rows_get_their_values_the_constants_and_the_model_defaults(tenant):
    now = timezone.now()
    insert_rows(Contact, [{"wa_id": "14155550001", "name": "Ada", "attributes": {"plan": "pro", "ünï": "✓"}},
                          {"wa_id": "14155550002", "name": "", "attributes": {}}],
                {"tenant_id": tenant.pk, "created_at": now, "updated_at": now})
    ada, other = Contact.all_tenants.filter(tenant=tenant).order_by("wa_id")
    assert (ada.name, ada.attributes, ada.created_at, ada.tenant_id) == ("Ada", {"plan": "pro", "ünï": "✓"}, now,
                                                                         tenant.pk)
    default = Contact(tenant=tenant)
    assert (other.name, other.opt_in_status, other.profile_name) == ("", default.opt_in_status, default.profile_name)


def test_a_conflict_raises_unless_conflicts_are_ignored(tenant):
    now = timezone.now()
    constants = {"tenant_id": tenant.pk, "created_at": now, "updated_at": now}
    insert_rows(Contact, [{"wa_id": "14155550001", "name": "Ada"}], constants)
    insert_rows(Contact, [{"wa_id": "14155550001", "name": "Again"}, {"wa_id": "14155550003", "name": "New"}],
                constants, ignore_conflicts=True)
    assert dict(Contact.all_tenants.values_list("wa_id", "name")) == {"14155550001": "Ada", "14155550003": "New"}
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(Contact, [{"wa_id": "14155550003", "name": "Twice"}], constants)


def test_values_that_need_escaping_and_typed_values_arrive_as_given(tenant):
    """On PostgreSQL the rows travel as one JSON document (json_to_recordset): quotes,
    backslashes, braces, newlines and emoji in texts and JSON, datetimes with their
    microseconds, JSON scalars and NULLs must all come back exactly."""
    from datetime import timedelta

    now = timezone.now()
    names = ['Say "hi" \\ there', "{braces}, [brackets] and 'quotes'", "line\nbreak\ttab 🎉", "NULL", ""]
    attributes = [{"quote": '"', "nested": {"list": [1, 2.5, None, True], "text": "a\\b"}}, "just a string", 42, [],
                  {}]
    insert_rows(Contact, [{"wa_id": f"1415555000{n}", "name": name, "attributes": attrs,
                           "created_at": now + timedelta(microseconds=n)}
                          for n, (name, attrs) in enumerate(zip(names, attributes, strict=True))],
                {"tenant_id": tenant.pk, "updated_at": now})
    rows = list(Contact.all_tenants.filter(tenant=tenant).order_by("wa_id").values_list("name", "attributes",
                                                                                           "created_at"))
    assert [r[0] for r in rows] == names
    assert [r[1] for r in rows] == attributes
    assert [r[2] for r in rows] == [now + timedelta(microseconds=n) for n in range(5)]
