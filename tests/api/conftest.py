"""Fixtures for the REST API tests: a key and a DRF client for tenant ``acme``, and one for
another tenant, to prove that tenant's ids answer 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from apps.providers.backends import locmem
from apps.tenants.models import ApiKey
from apps.tenants.services import api_key_create
from tests.factories import ContactFactory, ConversationFactory, MessageTemplateFactory, PhoneNumberFactory


@pytest.fixture(autouse=True)
def clean_state():
    # The per-key throttle and the dispatch bell live in the cache; primary keys repeat
    # between tests, so counts must not leak from one test into the next.
    cache.clear()
    locmem.reset()
    yield
    locmem.reset()
    cache.clear()


def _client_for(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def api_key(tenant) -> ApiKey:
    """The ``acme`` tenant's key row; its plaintext is ``api_key.plaintext``."""
    row, plaintext = api_key_create(tenant=tenant, name="tests")
    row.plaintext = plaintext
    return row


@pytest.fixture
def api_client(api_key) -> APIClient:
    return _client_for(api_key.plaintext)


@pytest.fixture
def other_api_key(other_tenant) -> ApiKey:
    row, plaintext = api_key_create(tenant=other_tenant, name="tests")
    row.plaintext = plaintext
    return row


@pytest.fixture
def other_api_client(other_api_key) -> APIClient:
    return _client_for(other_api_key.plaintext)


# -- messaging fixtures: a number, an open conversation, stored templates ---------------------

@pytest.fixture
def number(tenant):
    return PhoneNumberFactory(tenant=tenant, phone_number_id="5550001", waba_id="waba-1", messages_per_second=1000)


@pytest.fixture
def open_conversation(tenant, number):
    """A conversation whose 24-hour window is open, with customer +1 415 555 0100."""
    contact = ContactFactory(tenant=tenant, wa_id="14155550100", name="Ada Lovelace")
    return ConversationFactory(tenant=tenant, phone_number=number, contact=contact,
                               window_expires_at=timezone.now() + timedelta(hours=3))


@pytest.fixture
def templates(tenant, number):
    return {
        "positional": MessageTemplateFactory(
            tenant=tenant, phone_number=number, waba_id="waba-1", name="order_update", language="en",
            components=[{"type": "BODY", "text": "Hi {{1}}, order {{2}} shipped."}]),
        "named": MessageTemplateFactory(
            tenant=tenant, phone_number=number, waba_id="waba-1", name="reminder", language="en_US",
            parameter_format="named",
            components=[{"type": "BODY", "text": "Hi {{first_name}}, see you at {{time}}."}]),
        "pending": MessageTemplateFactory(
            tenant=tenant, phone_number=number, waba_id="waba-1", name="draft", language="en", status="PENDING",
            components=[{"type": "BODY", "text": "Soon"}]),
    }
