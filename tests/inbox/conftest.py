from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.core.scoping import tenant_scope
from apps.providers.backends import locmem
from tests.factories import (
    ContactFactory,
    ConversationFactory,
    MembershipFactory,
    MessageFactory,
    PhoneNumberFactory,
    UserFactory,
)


@pytest.fixture(autouse=True)
def clean_outbox():
    locmem.reset()
    yield
    locmem.reset()


@pytest.fixture
def number(tenant):
    return PhoneNumberFactory(tenant=tenant, phone_number_id="5550001", waba_id="waba-1", display_number="15550001111",
                              messages_per_second=1000)


@pytest.fixture
def contact(tenant):
    return ContactFactory(tenant=tenant, wa_id="14155550100", name="Maya Patel")


@pytest.fixture
def conversation(tenant, number, contact):
    conversation = ConversationFactory(tenant=tenant, phone_number=number, contact=contact,
                                       window_expires_at=timezone.now() + timedelta(hours=3),
                                       last_message_preview="Is my order on its way?", last_message_type="text",
                                       last_message_direction="inbound", unread_count=2)
    MessageFactory(conversation=conversation, direction="inbound", status="received", content={"body": "Hi there"},
                   text_preview="Hi there", provider_message_id="wamid.IN1", wa_message_id="wamid.IN1")
    MessageFactory(conversation=conversation, direction="inbound", status="received",
                   content={"body": "Is my order on its way?"}, text_preview="Is my order on its way?",
                   provider_message_id="wamid.IN2", wa_message_id="wamid.IN2")
    return conversation


@pytest.fixture
def agent(tenant):
    return MembershipFactory(tenant=tenant, user=UserFactory(email="agent@acme.test", first_name="Ana",
                                                             last_name="Agent"), role="agent").user


@pytest.fixture
def agent_client(agent) -> Client:
    client = Client()
    client.force_login(agent)
    return client


@pytest.fixture
def scoped(tenant):
    with tenant_scope(tenant):
        yield tenant


HTMX = {"HTTP_HX_REQUEST": "true"}


def htmx(target: str | None = None) -> dict[str, str]:
    headers = dict(HTMX)
    if target:
        headers["HTTP_HX_TARGET"] = target
    return headers
