import pytest
from django.db import IntegrityError, transaction

from apps.phone_numbers.models import PhoneNumber
from tests.factories import (
    CampaignRecipientFactory,
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    MessageTemplateFactory,
    PhoneNumberFactory,
    TenantFactory,
    WebhookEventFactory,
)


def assert_integrity_error(factory, **kwargs):
    with pytest.raises(IntegrityError), transaction.atomic():
        factory(**kwargs)


def test_contact_wa_id_is_unique_per_tenant_only(db):
    a, b = TenantFactory(), TenantFactory()
    ContactFactory(tenant=a, wa_id="14155550001")
    ContactFactory(tenant=b, wa_id="14155550001")
    assert_integrity_error(ContactFactory, tenant=a, wa_id="14155550001")


def test_provider_message_id_is_unique_per_number(db):
    message = MessageFactory(provider_message_id="wamid.A")
    MessageFactory(provider_message_id=None)
    MessageFactory(provider_message_id=None, conversation=message.conversation)
    other_number = ConversationFactory(tenant=message.tenant)
    MessageFactory(conversation=other_number, provider_message_id="wamid.A")
    assert_integrity_error(MessageFactory, conversation=message.conversation, provider_message_id="wamid.A")


def test_idempotency_key_is_unique_per_tenant(db):
    message = MessageFactory(idempotency_key="k1")
    MessageFactory(idempotency_key="k1")  # another tenant
    assert_integrity_error(MessageFactory, conversation=message.conversation, idempotency_key="k1")


def test_one_conversation_per_number_and_contact(db):
    conversation = ConversationFactory()
    assert_integrity_error(ConversationFactory, tenant=conversation.tenant, phone_number=conversation.phone_number,
                           contact=conversation.contact)


def test_template_unique_per_waba_name_language(db):
    template = MessageTemplateFactory(name="welcome", language="en")
    MessageTemplateFactory(tenant=template.tenant, phone_number=template.phone_number, name="welcome", language="es")
    assert_integrity_error(MessageTemplateFactory, tenant=template.tenant, phone_number=template.phone_number,
                           name="welcome", language="en")


def test_campaign_recipient_unique_per_campaign_and_contact(db):
    recipient = CampaignRecipientFactory()
    assert_integrity_error(CampaignRecipientFactory, campaign=recipient.campaign, contact=recipient.contact)


def test_a_provider_phone_number_id_names_one_number_in_the_world(db):
    PhoneNumberFactory(phone_number_id="123")
    PhoneNumberFactory(phone_number_id="123", provider=PhoneNumber.Provider.GUPSHUP_PARTNER)
    # Empty ids (Gupshup classic numbers) do not collide.
    PhoneNumberFactory(phone_number_id="", provider=PhoneNumber.Provider.GUPSHUP)
    PhoneNumberFactory(phone_number_id="", provider=PhoneNumber.Provider.GUPSHUP)
    assert_integrity_error(PhoneNumberFactory, phone_number_id="123")


@pytest.mark.parametrize("mps", [0, 1001])
def test_messages_per_second_budget_is_bounded(db, mps):
    assert_integrity_error(PhoneNumberFactory, messages_per_second=mps)


def test_webhook_events_deduplicate_on_body_hash(db):
    event = WebhookEventFactory(body_sha256="a" * 64)
    WebhookEventFactory(body_sha256="a" * 64, provider="gupshup")
    assert_integrity_error(WebhookEventFactory, body_sha256="a" * 64, provider=event.provider)


def test_message_direction_is_checked(db):
    assert_integrity_error(MessageFactory, direction="sideways")
