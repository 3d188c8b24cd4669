"""The per-process number cache a send picks its number from (apps/phone_numbers/numbercache.py)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.conversations.services import resolve_phone_number
from apps.core.exceptions import PolicyError
from apps.phone_numbers.models import PhoneNumber
from apps.phone_numbers.numbercache import tenant_numbers
from tests.factories import PhoneNumberFactory

pytestmark = pytest.mark.django_db


def test_a_send_picks_its_number_without_a_query_once_cached(tenant):
    number = PhoneNumberFactory(tenant=tenant)
    assert resolve_phone_number(tenant=tenant, phone_number=None).pk == number.pk
    with CaptureQueriesContext(connection) as captured:
        assert resolve_phone_number(tenant=tenant, phone_number=None).pk == number.pk
        assert resolve_phone_number(tenant=tenant, phone_number=str(number.pk)).pk == number.pk
    assert captured.captured_queries == []


def test_a_saved_number_applies_to_the_next_send(tenant):
    number = PhoneNumberFactory(tenant=tenant)
    resolve_phone_number(tenant=tenant, phone_number=None)
    number.status = PhoneNumber.Status.DISABLED
    number.save()
    with pytest.raises(PolicyError) as refused:
        resolve_phone_number(tenant=tenant, phone_number=None)
    assert refused.value.code == "phone_number_not_found"
    with pytest.raises(PolicyError):
        resolve_phone_number(tenant=tenant, phone_number=number.pk)


def test_a_new_or_deleted_number_applies_to_the_next_send(tenant):
    first = PhoneNumberFactory(tenant=tenant)
    assert resolve_phone_number(tenant=tenant, phone_number=None).pk == first.pk
    second = PhoneNumberFactory(tenant=tenant)
    with pytest.raises(PolicyError, match="several"):
        resolve_phone_number(tenant=tenant, phone_number=None)
    assert resolve_phone_number(tenant=tenant, phone_number=second.pk).pk == second.pk
    first.delete()
    assert resolve_phone_number(tenant=tenant, phone_number=None).pk == second.pk


def test_the_cached_numbers_are_never_handed_out(tenant):
    number = PhoneNumberFactory(tenant=tenant, display_name="Support")
    picked = resolve_phone_number(tenant=tenant, phone_number=None)
    picked.display_name = "changed by a caller"
    assert resolve_phone_number(tenant=tenant, phone_number=None).display_name == "Support"
    assert [n.display_name for n in tenant_numbers(tenant.pk)] == ["Support"]
    assert picked.pk == number.pk


def test_cached_numbers_hold_no_credentials_but_load_them_when_asked(tenant):
    number = PhoneNumberFactory(tenant=tenant)
    (cached,) = tenant_numbers(tenant.pk)
    assert "credentials" in cached.get_deferred_fields()
    picked = resolve_phone_number(tenant=tenant, phone_number=None)
    assert picked.credentials == PhoneNumber.all_tenants.get(pk=number.pk).credentials


def test_another_workspaces_number_is_not_found(tenant, other_tenant):
    theirs = PhoneNumberFactory(tenant=other_tenant)
    PhoneNumberFactory(tenant=tenant)
    with pytest.raises(PolicyError) as refused:
        resolve_phone_number(tenant=tenant, phone_number=theirs.pk)
    assert refused.value.code == "phone_number_not_found"
