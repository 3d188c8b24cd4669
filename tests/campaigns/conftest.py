from __future__ import annotations

import itertools

import pytest
from django.core.cache import cache

from apps.core.scoping import tenant_scope
from apps.providers.backends import locmem
from tests.factories import (
    ContactFactory,
    ContactTagFactory,
    MessageTemplateFactory,
    PhoneNumberFactory,
    TagFactory,
)


@pytest.fixture(autouse=True)
def clean_outbox():
    # Feed, plan and dispatch bells live in the cache; ids repeat between tests.
    cache.clear()
    locmem.reset()
    yield
    locmem.reset()
    cache.clear()


@pytest.fixture
def number(tenant):
    return PhoneNumberFactory(tenant=tenant, phone_number_id="5550001", waba_id="waba-1", messages_per_second=1000)


@pytest.fixture
def scoped(tenant):
    with tenant_scope(tenant):
        yield tenant


@pytest.fixture
def template(tenant, number):
    return MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id="waba-1", name="spring_sale",
                                  language="en", components=[{"type": "BODY", "text": "Hi {{1}}, {{2}} is on sale."}])


@pytest.fixture
def named_template(tenant, number):
    return MessageTemplateFactory(
        tenant=tenant, phone_number=number, waba_id="waba-1", name="reminder", language="en_US",
        parameter_format="named", components=[
            {"type": "HEADER", "format": "TEXT", "text": "For {{city}}"},
            {"type": "BODY", "text": "Hi {{first_name}}, see you at {{time}}."},
            {"type": "BUTTONS", "buttons": [{"type": "URL", "url": "https://x.test/{{1}}"}]}])


MAPPING = {"1": {"source": "name", "fallback": "there"}, "2": {"source": "literal", "value": "Everything"}}


@pytest.fixture
def vip(tenant):
    return TagFactory(tenant=tenant, name="vip")


_numbers = itertools.count(1000)


def tagged(tenant, tag, n, **kwargs):
    contacts = []
    for _ in range(n):
        contact = ContactFactory(tenant=tenant, wa_id=f"1415555{next(_numbers):04d}", **kwargs)
        ContactTagFactory(tenant=tenant, contact=contact, tag=tag)
        contacts.append(contact)
    return contacts
