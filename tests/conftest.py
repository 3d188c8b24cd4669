from __future__ import annotations

import pytest
from django.test import Client

from apps.api.keycache import key_memo
from apps.core.scoping import tenant_scope
from apps.phone_numbers.numbercache import number_cache

from .factories import MembershipFactory, TenantFactory, UserFactory


@pytest.fixture(autouse=True)
def _fresh_number_cache():
    """Each test starts with this process's number cache and remembered API keys empty: a
    test's rolled-back rows may give the next test's workspace the same id (SQLite reuses
    them), which no running Parley ever sees."""
    number_cache.clear()
    key_memo.clear()


@pytest.fixture
def tenant(db):
    return TenantFactory(slug="acme", name="Acme")


@pytest.fixture
def other_tenant(db):
    return TenantFactory(slug="globex", name="Globex")


@pytest.fixture
def owner(tenant):
    return MembershipFactory(tenant=tenant, user=UserFactory(email="owner@acme.test")).user


@pytest.fixture
def member_client(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def in_tenant(tenant):
    with tenant_scope(tenant):
        yield tenant


@pytest.fixture
def migrated_back():
    """For a test that migrates an app backwards: every app is migrated forward again
    afterwards, pass or fail, so the tests after it find the whole schema."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def keep_test_connection():
    """For tests that call the WSGI application itself: it would close the test's database
    connection at the end of each request (request_finished -> close_old_connections), which
    Django's own test client disconnects too."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
