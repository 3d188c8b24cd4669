"""One factory per model. Children share their parent's tenant (LazyAttribute), so a
factory never builds a row that points across tenants."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.campaigns.models import Campaign, CampaignRecipient
from apps.contacts.models import AttributeDefinition, Contact, ContactImport, ContactTag, Segment, Tag
from apps.conversations.models import (
    CannedResponse,
    Conversation,
    ConversationLabel,
    Label,
    Media,
    Message,
    MessageAttempt,
)
from apps.message_templates.models import MessageTemplate
from apps.phone_numbers.models import PhoneNumber
from apps.providers.models import WebhookEvent
from apps.tenants.models import ApiKey, Invitation, Membership, Tenant
from apps.webhooks.models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    username = factory.LazyAttribute(lambda o: o.email)
    password = factory.django.Password("password")


class TenantFactory(DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.OWNER


class ApiKeyFactory(DjangoModelFactory):
    class Meta:
        model = ApiKey

    tenant = factory.SubFactory(TenantFactory)
    name = "test key"
    prefix = factory.LazyFunction(lambda: secrets.token_hex(6))
    hashed_key = factory.LazyFunction(lambda: secrets.token_hex(32))


class InvitationFactory(DjangoModelFactory):
    """A pending invitation; its link token is ``factory-token-<n>`` (only the hash is stored)."""

    class Meta:
        model = Invitation

    class Params:
        token = factory.Sequence(lambda n: f"factory-token-{n}")

    tenant = factory.SubFactory(TenantFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = Membership.Role.AGENT
    token_hash = factory.LazyAttribute(lambda o: hashlib.sha256(o.token.encode()).hexdigest())
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))


class PhoneNumberFactory(DjangoModelFactory):
    class Meta:
        model = PhoneNumber

    tenant = factory.SubFactory(TenantFactory)
    provider = PhoneNumber.Provider.META_CLOUD
    display_number = factory.Sequence(lambda n: f"1555000{n:04d}")
    phone_number_id = factory.Sequence(lambda n: f"10000000{n:06d}")
    waba_id = factory.Sequence(lambda n: f"waba-{n}")
    credentials = factory.LazyFunction(lambda: {"access_token": "token", "app_secret": "secret"})
    verify_token = factory.Sequence(lambda n: f"verify-{n}")
    webhook_token = factory.LazyFunction(lambda: secrets.token_urlsafe(16))


class TagFactory(DjangoModelFactory):
    class Meta:
        model = Tag

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"tag{n}")


class ContactFactory(DjangoModelFactory):
    class Meta:
        model = Contact

    tenant = factory.SubFactory(TenantFactory)
    wa_id = factory.Sequence(lambda n: f"1415555{n:04d}")
    name = factory.Faker("name")


class ContactTagFactory(DjangoModelFactory):
    class Meta:
        model = ContactTag

    contact = factory.SubFactory(ContactFactory)
    tenant = factory.LazyAttribute(lambda o: o.contact.tenant)
    tag = factory.SubFactory(TagFactory, tenant=factory.SelfAttribute("..tenant"))


class SegmentFactory(DjangoModelFactory):
    class Meta:
        model = Segment

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Segment {n}")
    filters = factory.LazyFunction(dict)


class AttributeDefinitionFactory(DjangoModelFactory):
    class Meta:
        model = AttributeDefinition

    tenant = factory.SubFactory(TenantFactory)
    key = factory.Sequence(lambda n: f"attr{n}")
    label = factory.Sequence(lambda n: f"Attribute {n}")
    type = "text"


class ContactImportFactory(DjangoModelFactory):
    """A finished import of a two-row file (one row imported, one refused)."""

    class Meta:
        model = ContactImport

    tenant = factory.SubFactory(TenantFactory)
    original_name = "contacts.csv"
    file = factory.django.FileField(filename="contacts.csv", data=b"phone,name\n+14155550100,Ana\nnope,Bo\n")
    headers = factory.LazyFunction(lambda: ["phone", "name"])
    mapping = factory.LazyFunction(lambda: ["phone", "name"])
    status = "completed"
    total_rows = processed_rows = 2
    created_count = error_count = 1
    errors = factory.LazyFunction(lambda: [[3, "phone", "nope", "“nope” is not a valid phone number."]])


class MessageTemplateFactory(DjangoModelFactory):
    class Meta:
        model = MessageTemplate

    tenant = factory.SubFactory(TenantFactory)
    phone_number = factory.SubFactory(PhoneNumberFactory, tenant=factory.SelfAttribute("..tenant"))
    waba_id = factory.LazyAttribute(lambda o: o.phone_number.waba_id)
    name = factory.Sequence(lambda n: f"template_{n}")
    language = "en"
    status = MessageTemplate.Status.APPROVED
    components = factory.LazyFunction(lambda: [{"type": "BODY", "text": "Hello {{1}}"}])


class LabelFactory(DjangoModelFactory):
    class Meta:
        model = Label

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"label{n}")


class ConversationFactory(DjangoModelFactory):
    class Meta:
        model = Conversation

    tenant = factory.SubFactory(TenantFactory)
    phone_number = factory.SubFactory(PhoneNumberFactory, tenant=factory.SelfAttribute("..tenant"))
    contact = factory.SubFactory(ContactFactory, tenant=factory.SelfAttribute("..tenant"))
    last_message_at = factory.LazyFunction(timezone.now)


class ConversationLabelFactory(DjangoModelFactory):
    class Meta:
        model = ConversationLabel

    conversation = factory.SubFactory(ConversationFactory)
    tenant = factory.LazyAttribute(lambda o: o.conversation.tenant)
    label = factory.SubFactory(LabelFactory, tenant=factory.SelfAttribute("..tenant"))


class MediaFactory(DjangoModelFactory):
    class Meta:
        model = Media

    tenant = factory.SubFactory(TenantFactory)
    source = Media.Source.UPLOAD
    mime_type = "image/jpeg"


class MessageFactory(DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    tenant = factory.LazyAttribute(lambda o: o.conversation.tenant)
    phone_number = factory.LazyAttribute(lambda o: o.conversation.phone_number)
    contact = factory.LazyAttribute(lambda o: o.conversation.contact)
    direction = Message.Direction.OUTBOUND
    type = Message.Type.TEXT
    content = factory.LazyFunction(lambda: {"body": "hello"})
    text_preview = "hello"
    status = Message.Status.QUEUED
    # As the pipeline leaves them: a sending row was claimed when due and keeps that time until
    # it is answered or reconciled.
    next_attempt_at = factory.LazyAttribute(
        lambda o: timezone.now() - timedelta(minutes=10) if o.status == Message.Status.SENDING else None)
    failed_at = factory.LazyAttribute(lambda o: timezone.now() if o.status == Message.Status.FAILED else None)


class MessageAttemptFactory(DjangoModelFactory):
    class Meta:
        model = MessageAttempt

    message = factory.SubFactory(MessageFactory)
    tenant = factory.LazyAttribute(lambda o: o.message.tenant)
    outcome = MessageAttempt.Outcome.ACCEPTED
    status_code = 200


class CannedResponseFactory(DjangoModelFactory):
    class Meta:
        model = CannedResponse

    tenant = factory.SubFactory(TenantFactory)
    shortcut = factory.Sequence(lambda n: f"reply{n}")
    content = "Thanks!"


class CampaignFactory(DjangoModelFactory):
    class Meta:
        model = Campaign

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")
    template = factory.SubFactory(MessageTemplateFactory, tenant=factory.SelfAttribute("..tenant"))
    phone_number = factory.LazyAttribute(lambda o: o.template.phone_number)


class CampaignRecipientFactory(DjangoModelFactory):
    class Meta:
        model = CampaignRecipient

    campaign = factory.SubFactory(CampaignFactory)
    tenant = factory.LazyAttribute(lambda o: o.campaign.tenant)
    contact = factory.SubFactory(ContactFactory, tenant=factory.SelfAttribute("..tenant"))


class WebhookEventFactory(DjangoModelFactory):
    class Meta:
        model = WebhookEvent

    tenant = factory.SubFactory(TenantFactory)
    provider = WebhookEvent.Provider.META_CLOUD
    body = b"{}"
    body_sha256 = factory.Sequence(lambda n: f"{n:064x}")


class WebhookEndpointFactory(DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    tenant = factory.SubFactory(TenantFactory)
    url = "https://example.com/hook"
    secret = "whsec_test"


class WebhookDeliveryFactory(DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    tenant = factory.LazyAttribute(lambda o: o.endpoint.tenant)
    event_id = factory.Sequence(lambda n: f"evt_{n}")
    event_type = "message.sent"
    payload = factory.LazyFunction(dict)


class WebhookDeliveryAttemptFactory(DjangoModelFactory):
    class Meta:
        model = WebhookDeliveryAttempt

    delivery = factory.SubFactory(WebhookDeliveryFactory)
    tenant = factory.LazyAttribute(lambda o: o.delivery.tenant)
    status_code = 200
