from datetime import timedelta

from django.utils import timezone

from apps.tenants.models import ApiKey
from apps.tenants.selectors import api_key_get_by_plaintext
from apps.tenants.services import api_key_create, api_key_revoke, api_key_touch, hash_api_key
from tests.factories import TenantFactory


def test_plaintext_is_returned_once_and_only_a_hash_is_stored(db):
    tenant = TenantFactory()
    api_key, plaintext = api_key_create(tenant=tenant, name="CRM")
    assert plaintext.startswith(f"prl_{api_key.prefix}.")
    stored = ApiKey.all_tenants.get(pk=api_key.pk)
    assert stored.hashed_key == hash_api_key(plaintext)
    assert plaintext.split(".", 1)[1] not in stored.hashed_key
    assert all(plaintext not in str(getattr(stored, f.attname)) for f in ApiKey._meta.concrete_fields)


def test_lookup_by_plaintext(db):
    tenant = TenantFactory()
    api_key, plaintext = api_key_create(tenant=tenant, name="CRM")
    found = api_key_get_by_plaintext(plaintext=plaintext)
    assert found == api_key and found.tenant == tenant


def test_wrong_or_malformed_keys_find_nothing(db):
    api_key, plaintext = api_key_create(tenant=TenantFactory(), name="CRM")
    tampered = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    for candidate in (tampered, "", "prl_", "prl_nodot", f"prl_{api_key.prefix}.", "Bearer " + plaintext,
                      plaintext.replace("prl_", "xyz_")):
        assert api_key_get_by_plaintext(plaintext=candidate) is None


def test_revoked_keys_and_inactive_tenants_are_refused(db):
    tenant = TenantFactory()
    api_key, plaintext = api_key_create(tenant=tenant, name="CRM")
    api_key_revoke(tenant=tenant, api_key_id=api_key.pk)
    assert api_key_get_by_plaintext(plaintext=plaintext) is None

    other, other_plain = api_key_create(tenant=TenantFactory(is_active=False), name="x")
    assert api_key_get_by_plaintext(plaintext=other_plain) is None


def test_touch_updates_last_used_at_at_most_once_a_minute(db, django_assert_num_queries):
    api_key, _ = api_key_create(tenant=TenantFactory(), name="CRM")
    with django_assert_num_queries(1):
        api_key_touch(api_key=api_key)
    first = ApiKey.all_tenants.get(pk=api_key.pk).last_used_at
    assert first is not None
    with django_assert_num_queries(0):
        api_key_touch(api_key=api_key)
    api_key.last_used_at = timezone.now() - timedelta(minutes=5)
    with django_assert_num_queries(1):
        api_key_touch(api_key=api_key)
