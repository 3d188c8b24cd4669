"""The signed-in user and their membership are remembered between requests, and every change
that could take access away applies on the very next request."""

from __future__ import annotations

import pytest
from django.db import connection
from django.http import Http404
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.tenants.identity import CachedModelBackend
from apps.tenants.models import Membership
from apps.tenants.selectors import access_tenant
from tests.factories import MembershipFactory, TenantFactory, UserFactory


@pytest.fixture
def remembering(settings):
    """As with Redis: the identity cache only runs with REDIS_URL (any shared cache works)."""
    settings.REDIS_URL = settings.REDIS_URL or "redis://identity-cache-test"


def queries(call):
    with CaptureQueriesContext(connection) as captured:
        result = call()
    return result, len(captured.captured_queries)


def test_the_membership_is_read_once_then_remembered(remembering, tenant, owner):
    (found, membership), first = queries(lambda: access_tenant(user=owner, tenant_slug="acme"))
    assert found == tenant and membership.user_id == owner.pk and first == 1
    (again, membership), second = queries(lambda: access_tenant(user=owner, tenant_slug="acme"))
    assert again == tenant and membership.role == Membership.Role.OWNER and second == 0


def test_the_user_is_read_once_then_remembered(remembering, owner):
    backend = CachedModelBackend()
    user, first = queries(lambda: backend.get_user(owner.pk))
    assert user == owner and first == 1
    user, second = queries(lambda: backend.get_user(owner.pk))
    assert user == owner and second == 0


def test_without_redis_nothing_is_remembered(settings, tenant, owner):
    settings.REDIS_URL = ""
    for _ in range(2):
        _, count = queries(lambda: access_tenant(user=owner, tenant_slug="acme"))
        assert count == 1


def test_another_workspace_is_a_404_every_time(remembering, tenant, other_tenant, owner):
    for _ in range(2):
        with pytest.raises(Http404):
            access_tenant(user=owner, tenant_slug="globex")
    MembershipFactory(tenant=other_tenant, user=owner, role=Membership.Role.AGENT)
    assert access_tenant(user=owner, tenant_slug="globex")[1].role == Membership.Role.AGENT


def test_a_removed_member_loses_access_on_the_next_request(remembering, tenant, owner):
    access_tenant(user=owner, tenant_slug="acme")
    Membership.objects.for_tenant(tenant).get(user=owner).delete()
    with pytest.raises(Http404):
        access_tenant(user=owner, tenant_slug="acme")


def test_a_changed_role_applies_on_the_next_request(remembering, tenant, owner):
    access_tenant(user=owner, tenant_slug="acme")
    membership = Membership.objects.for_tenant(tenant).get(user=owner)
    membership.role = Membership.Role.AGENT
    membership.save()
    assert access_tenant(user=owner, tenant_slug="acme")[1].role == Membership.Role.AGENT


def test_a_disabled_or_renamed_workspace_applies_on_the_next_request(remembering, tenant, owner):
    access_tenant(user=owner, tenant_slug="acme")
    tenant.slug = "acme-inc"
    tenant.save()
    with pytest.raises(Http404):
        access_tenant(user=owner, tenant_slug="acme")
    assert access_tenant(user=owner, tenant_slug="acme-inc")[0].slug == "acme-inc"
    tenant.is_active = False
    tenant.save()
    with pytest.raises(Http404):
        access_tenant(user=owner, tenant_slug="acme-inc")


def test_a_deactivated_user_is_signed_out_on_the_next_request(remembering, tenant, owner):
    backend = CachedModelBackend()
    assert backend.get_user(owner.pk) == owner
    owner.is_active = False
    owner.save()
    assert backend.get_user(owner.pk) is None


def test_a_changed_password_ends_other_sessions_on_the_next_request(remembering, tenant, owner):
    client = Client()
    client.force_login(owner)
    assert client.get("/t/acme/inbox/").status_code == 200
    assert client.get("/t/acme/inbox/").status_code == 200  # now from the cache
    owner.set_password("a-new-and-long-password")
    owner.save()
    response = client.get("/t/acme/inbox/")
    assert response.status_code == 302 and "/login" in response["Location"]


def test_a_page_reads_neither_user_nor_membership_once_remembered(remembering, tenant, owner):
    client = Client()
    client.force_login(owner)
    client.get("/t/acme/inbox/")
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/t/acme/inbox/").status_code == 200
    statements = [q["sql"] for q in captured.captured_queries]
    assert not [sql for sql in statements if 'FROM "auth_user" WHERE "auth_user"."id" =' in sql]
    assert not [sql for sql in statements if '"tenants_tenant"."slug" =' in sql]


def test_users_do_not_share_entries(remembering, tenant):
    first = MembershipFactory(tenant=tenant, user=UserFactory(email="a@acme.test"), role=Membership.Role.AGENT)
    second = MembershipFactory(tenant=tenant, user=UserFactory(email="b@acme.test"), role=Membership.Role.ADMIN)
    assert access_tenant(user=first.user, tenant_slug="acme")[1].role == Membership.Role.AGENT
    assert access_tenant(user=second.user, tenant_slug="acme")[1].role == Membership.Role.ADMIN
    assert CachedModelBackend().get_user(second.user.pk) == second.user
    lone = TenantFactory(slug="lone")
    with pytest.raises(Http404):
        access_tenant(user=first.user, tenant_slug=lone.slug)
