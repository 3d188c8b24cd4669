from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.scoping import tenant_scope
from apps.providers.backends import locmem
from tests.factories import ContactFactory, ConversationFactory, MessageTemplateFactory, PhoneNumberFactory


@pytest.fixture(autouse=True)
def clean_outbox():
    locmem.reset()
    yield
    locmem.reset()


@pytest.fixture
def number(tenant):
    return PhoneNumberFactory(tenant=tenant, phone_number_id="5550001", waba_id="waba-1", messages_per_second=1000)


@pytest.fixture
def scoped(tenant):
    with tenant_scope(tenant):
        yield tenant


@pytest.fixture
def open_conversation(tenant, number):
    contact = ContactFactory(tenant=tenant, wa_id="14155550100")
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
        "media": MessageTemplateFactory(
            tenant=tenant, phone_number=number, waba_id="waba-1", name="promo", language="en",
            components=[{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "{{1}}, 20% off"},
                        {"type": "BUTTONS", "buttons": [{"type": "URL", "url": "https://x.test/{{1}}"}]}]),
    }
