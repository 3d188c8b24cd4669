from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import MembershipFactory, UserFactory


def client_for(tenant, role: str) -> Client:
    user = UserFactory(email=f"{role}@{tenant.slug}.test")
    MembershipFactory(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def marketer_client(tenant) -> Client:
    return client_for(tenant, "marketer")


@pytest.fixture
def agent_client(tenant) -> Client:
    return client_for(tenant, "agent")


@pytest.fixture
def base(tenant) -> str:
    return f"/t/{tenant.slug}/contacts/"
