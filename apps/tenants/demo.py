"""The demo workspace that `make run` seeds: a number on the Cloud API emulator, contacts,
templates the emulator knows, and a few conversations. Idempotent: running it again adds
only what is missing."""

from __future__ import annotations

from datetime import timedelta

from django.db import reset_queries, transaction
from django.utils import timezone

from apps.contacts.models import Contact, ContactTag, Tag
from apps.conversations.models import (
    CannedResponse,
    Conversation,
    ConversationLabel,
    ConversationTally,
    Label,
    Message,
    MessageText,
)
from apps.conversations.services.tally import conversation_tallies_compact
from apps.core.scoping import tenant_scope
from apps.core.statistics import vacuum
from apps.message_templates.models import MessageTemplate
from apps.phone_numbers.models import PhoneNumber
from apps.phone_numbers.services import phone_number_create

from .models import Membership, Tenant
from .services import membership_create, tenant_create, user_get_or_create

DEMO_SLUG = "demo"
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo"
# The emulator (make run) is started with these; they must agree.
EMULATOR_URL = "http://127.0.0.1:8001"
EMULATOR_PHONE_NUMBER_ID = "100000000000001"
EMULATOR_DISPLAY_NUMBER = "15550001111"
EMULATOR_WABA_ID = "emulator-waba"
EMULATOR_ACCESS_TOKEN = "emulator-access-token"
EMULATOR_APP_SECRET = "emulator-app-secret"
EMULATOR_VERIFY_TOKEN = "emulator-verify-token"

CONTACTS = [
    ("14155550101", "Maya Patel", ["vip", "newsletter"], {"city": "San Francisco", "plan": "pro"}),
    ("14155550102", "Jonas Weber", ["newsletter"], {"city": "Berlin", "plan": "free"}),
    ("14155550103", "Aiko Tanaka", ["vip"], {"city": "Osaka", "plan": "business"}),
    ("14155550104", "Lucas Oliveira", [], {"city": "São Paulo", "plan": "pro"}),
    ("14155550105", "Fatima Zahra", ["newsletter"], {"city": "Casablanca", "plan": "free"}),
    ("14155550106", "Noah Kim", ["beta"], {"city": "Seoul", "plan": "pro"}),
    ("14155550107", "Elena Rossi", ["vip", "beta"], {"city": "Milan", "plan": "business"}),
    ("14155550108", "Daniel Okafor", [], {"city": "Lagos", "plan": "free"}),
    ("14155550109", "Priya Sharma", ["newsletter"], {"city": "Bengaluru", "plan": "pro"}),
    ("14155550110", "Sam Carter", [], {"city": "Austin", "plan": "free"}),
]

TEMPLATES = [
    {"name": "hello_world", "language": "en_US", "category": "UTILITY", "parameter_format": "positional",
     "components": [{"type": "HEADER", "format": "TEXT", "text": "Hello World"},
                    {"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp message notification from the Cloud API."},
                    {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"}]},
    {"name": "order_update", "language": "en", "category": "UTILITY", "parameter_format": "positional",
     "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped and is on its way.",
                     "example": {"body_text": [["Maya", "#10423"]]}}]},
    {"name": "appointment_reminder", "language": "en", "category": "UTILITY", "parameter_format": "named",
     "components": [{"type": "BODY", "text": "Hi {{first_name}}, this is a reminder of your appointment at {{time}}.",
                     "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Maya"},
                                                            {"param_name": "time", "example": "3:30 PM"}]}}]},
    {"name": "promo_offer", "language": "en", "category": "MARKETING", "parameter_format": "positional",
     "components": [{"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://example.com/promo.jpg"]}},
                    {"type": "BODY", "text": "{{1}}, enjoy 20% off everything this weekend!", "example": {"body_text": [["Maya"]]}},
                    {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Show me"},
                                                    {"type": "QUICK_REPLY", "text": "Stop promotions"}]}]},
]

# (contact index, [(direction, text, minutes ago)], status)
THREADS = [
    (0, [("inbound", "Hi! Is my order #10423 on its way?", 42), ("outbound", "Hi Maya, it shipped this morning — tracking link coming up.", 40),
         ("inbound", "Great, thank you 🙏", 12)], "open"),
    (1, [("inbound", "Can I change the delivery address?", 95)], "open"),
    (2, [("inbound", "Do you ship to Japan?", 60 * 5), ("outbound", "We do! 3–5 business days.", 60 * 5 - 3)], "pending"),
    (3, [("inbound", "The app keeps logging me out", 60 * 30)], "open"),
    (4, [("inbound", "Thanks, all sorted.", 60 * 50), ("outbound", "Happy to help, Fatima!", 60 * 50 - 1)], "resolved"),
]


@transaction.atomic
def seed_demo() -> Tenant:
    tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
    if tenant is None:
        tenant = tenant_create(slug=DEMO_SLUG, name="Demo Store", owner_email=DEMO_EMAIL, owner_password=DEMO_PASSWORD)
    else:
        membership_create(tenant=tenant, user=user_get_or_create(email=DEMO_EMAIL), role=Membership.Role.OWNER)
    with tenant_scope(tenant):
        number = PhoneNumber.objects.filter(provider=PhoneNumber.Provider.META_CLOUD,
                                            phone_number_id=EMULATOR_PHONE_NUMBER_ID).first()
        if number is None:
            number = phone_number_create(
                tenant=tenant, provider=PhoneNumber.Provider.META_CLOUD, display_number=EMULATOR_DISPLAY_NUMBER,
                display_name="Demo Store (emulator)", phone_number_id=EMULATOR_PHONE_NUMBER_ID,
                waba_id=EMULATOR_WABA_ID, access_token=EMULATOR_ACCESS_TOKEN, app_secret=EMULATOR_APP_SECRET,
                verify_token=EMULATOR_VERIFY_TOKEN, graph_api_url=EMULATOR_URL, messages_per_second=80,
            )
        for spec in TEMPLATES:
            MessageTemplate.objects.get_or_create(
                tenant=tenant, waba_id=EMULATOR_WABA_ID, name=spec["name"], language=spec["language"],
                defaults={"phone_number": number, "category": spec["category"], "status": MessageTemplate.Status.APPROVED,
                          "parameter_format": spec["parameter_format"], "components": spec["components"],
                          "last_synced_at": timezone.now()},
            )
        contacts = []
        for wa_id, name, tags, attributes in CONTACTS:
            contact, _ = Contact.objects.get_or_create(
                tenant=tenant, wa_id=wa_id,
                defaults={"name": name, "profile_name": name.split()[0], "attributes": attributes,
                          "opt_in_status": Contact.OptIn.OPTED_IN, "opt_in_source": "demo", "opted_in_at": timezone.now()},
            )
            for tag_name in tags:
                tag, _ = Tag.objects.get_or_create(tenant=tenant, name=tag_name)
                ContactTag.objects.get_or_create(tenant=tenant, contact=contact, tag=tag)
            contacts.append(contact)
        for name, color in (("billing", "#b7791f"), ("shipping", "#2f6fd6"), ("bug", "#c93b3b")):
            Label.objects.get_or_create(tenant=tenant, name=name, defaults={"color": color})
        for shortcut, content in (("hello", "Hi! Thanks for reaching out — how can I help?"),
                                  ("shipping", "Orders ship within 24 hours; you will get a tracking link by WhatsApp."),
                                  ("thanks", "Thank you! Is there anything else I can help with?")):
            CannedResponse.objects.get_or_create(tenant=tenant, shortcut=shortcut, defaults={"content": content})
        _seed_threads(tenant=tenant, number=number, contacts=contacts)
    return tenant


def _seed_threads(*, tenant: Tenant, number: PhoneNumber, contacts: list[Contact]) -> None:
    now = timezone.now()
    for index, lines, status in THREADS:
        contact = contacts[index]
        conversation, created = Conversation.objects.get_or_create(
            tenant=tenant, phone_number=number, contact=contact, defaults={"status": status},
        )
        if not created:
            continue
        last_inbound = None
        for direction, text, minutes_ago in lines:
            at = now - timedelta(minutes=minutes_ago)
            inbound = direction == "inbound"
            Message.objects.create(
                tenant=tenant, conversation=conversation, phone_number=number, contact=contact,
                direction=direction, type=Message.Type.TEXT, content={"body": text}, text_preview=text[:255],
                status=Message.Status.RECEIVED if inbound else Message.Status.READ,
                occurred_at=at, status_updated_at=at, read_at=None if inbound else at,
            )
            if inbound:
                last_inbound = at
        last_direction, last_text, last_minutes = lines[-1]
        conversation.last_message_at = now - timedelta(minutes=last_minutes)
        conversation.last_message_preview = last_text[:255]
        conversation.last_message_type = Message.Type.TEXT
        conversation.last_message_direction = last_direction
        conversation.last_inbound_at = last_inbound
        conversation.window_expires_at = last_inbound + timedelta(hours=24) if last_inbound else None
        conversation.unread_count = 1 if last_direction == "inbound" and status == "open" else 0
        conversation.save()


# --- a large workspace, for the inbox benchmarks -------------------------------------------

LARGE_SLUG = "large"
LARGE_EMAIL = "large@example.com"
LARGE_PASSWORD = "large"
LARGE_CONVERSATIONS = 100_000
LARGE_MESSAGES_PER_CONVERSATION = 10
LARGE_BATCH = 1_000  # conversations per transaction: 1,000 contacts, 1,000 conversations, 10,000 messages
LARGE_AGENTS = 6
LARGE_LABELS = (("billing", "#b7791f"), ("shipping", "#2f6fd6"), ("bug", "#c93b3b"), ("vip", "#7b4fd6"),
                ("returns", "#3a8fa3"), ("sales", "#0d7a63"))
LARGE_LINES = (
    ("inbound", "Hi, where is my order?"), ("outbound", "Let me check that for you."),
    ("inbound", "It was supposed to arrive yesterday."), ("outbound", "It left the warehouse this morning."),
    ("inbound", "Can I change the delivery address?"), ("outbound", "Yes — send me the new address."),
    ("inbound", "12 Harbour Street, Flat 3"), ("outbound", "Updated. Anything else?"),
    ("inbound", "Do you also sell gift cards?"), ("outbound", "We do, from 10 to 200 in any amount."),
)


def seed_large(*, conversations: int = LARGE_CONVERSATIONS,
               messages_per_conversation: int = LARGE_MESSAGES_PER_CONVERSATION, batch: int = LARGE_BATCH,
               progress=None) -> tuple[Tenant, bool]:
    """The workspace ``large``: ``conversations`` conversations (one contact each, on two
    numbers, assigned round-robin to six agents, a fifth of them labelled) with
    ``messages_per_conversation`` messages each, written with bulk_create one batch per
    transaction, so memory stays flat. Idempotent: a complete workspace is left alone and an
    interrupted run carries on from its last whole batch. Returns the tenant and whether
    anything was added."""
    tenant = Tenant.objects.filter(slug=LARGE_SLUG).first()
    if tenant is None:
        tenant = tenant_create(slug=LARGE_SLUG, name="Large Workspace", owner_email=LARGE_EMAIL,
                               owner_password=LARGE_PASSWORD)
    with tenant_scope(tenant):
        done = Conversation.objects.count()
        if done >= conversations:
            return tenant, False
        numbers, agents, labels = _large_fixtures(tenant)
        start = timezone.now() - timedelta(days=120)
        span = timedelta(days=120).total_seconds()
        for first in range(done, conversations, batch):
            _large_batch(tenant=tenant, first=first, last=min(first + batch, conversations), total=conversations,
                         per=messages_per_conversation, numbers=numbers, agents=agents, labels=labels, start=start,
                         span=span)
            # With DEBUG on, Django keeps the SQL of recent queries, each bulk INSERT whole:
            # forget it, so memory stays flat over a million rows.
            reset_queries()
            if progress:
                progress(min(first + batch, conversations), conversations)
        # One tally row per group instead of one per batch (per conversation on SQLite).
        conversation_tallies_compact()
        vacuum(Contact, Conversation, ConversationLabel, Message, MessageText, ConversationTally, sqlite=True)
    return tenant, True


@transaction.atomic
def _large_fixtures(tenant: Tenant) -> tuple[list[PhoneNumber], list, list[Label]]:
    membership_create(tenant=tenant, user=user_get_or_create(email=DEMO_EMAIL), role=Membership.Role.OWNER)
    numbers = []
    for index in (1, 2):
        number = PhoneNumber.objects.filter(phone_number_id=f"20000000000000{index}").first()
        if number is None:
            number = phone_number_create(
                tenant=tenant, provider=PhoneNumber.Provider.META_CLOUD, display_number=f"1555000200{index}",
                display_name=f"Large line {index}", phone_number_id=f"20000000000000{index}", waba_id="large-waba",
                access_token="large-access-token", app_secret="large-app-secret", verify_token=f"large-verify-{index}",
                graph_api_url=EMULATOR_URL)
        numbers.append(number)
    agents = []
    for index in range(1, LARGE_AGENTS + 1):
        user = user_get_or_create(email=f"agent{index}@large.example.com", password=LARGE_PASSWORD,
                                  name=f"Agent {index}")
        membership_create(tenant=tenant, user=user, role=Membership.Role.AGENT)
        agents.append(user)
    labels = [Label.objects.get_or_create(tenant=tenant, name=name, defaults={"color": color})[0]
              for name, color in LARGE_LABELS]
    return numbers, agents, labels


@transaction.atomic
def _large_batch(*, tenant: Tenant, first: int, last: int, total: int, per: int, numbers: list[PhoneNumber],
                 agents: list, labels: list[Label], start, span: float) -> None:
    wa_ids = [f"99{index:010d}" for index in range(first, last)]
    contacts = Contact.objects.bulk_create([
        Contact(tenant=tenant, wa_id=wa_id, name=f"Customer {index:06d}", profile_name=f"Customer {index}",
                opt_in_status=Contact.OptIn.OPTED_IN, opt_in_source="seed")
        for index, wa_id in zip(range(first, last), wa_ids, strict=True)
    ])
    statuses = ("resolved", "resolved", "resolved", "open", "open", "pending")
    conversations = []
    for offset, contact in enumerate(contacts):
        index = first + offset
        # Spread activity over 120 days, newest conversations last.
        last_at = start + timedelta(seconds=span * (index + 1) / total)
        line = LARGE_LINES[(per - 1) % len(LARGE_LINES)]
        # Runs of six (one of each status) per agent, so every agent has every status.
        assignee = None if index % 7 == 0 else agents[index // 6 % len(agents)]
        conversations.append(Conversation(
            tenant=tenant, phone_number=numbers[index % len(numbers)], contact=contact,
            status=statuses[index % len(statuses)], assignee=assignee, last_message_at=last_at,
            last_inbound_at=last_at - timedelta(minutes=1), window_expires_at=last_at + timedelta(hours=24),
            last_message_preview=line[1], last_message_type=Message.Type.TEXT, last_message_direction=line[0],
            unread_count=1 if index % 5 == 0 else 0,
        ))
    conversations = Conversation.objects.bulk_create(conversations)
    messages = []
    for offset, conversation in enumerate(conversations):
        index = first + offset
        for n in range(per):
            direction, text = LARGE_LINES[n % len(LARGE_LINES)]
            at = conversation.last_message_at - timedelta(minutes=2 * (per - 1 - n))
            inbound = direction == "inbound"
            messages.append(Message(
                tenant=tenant, conversation=conversation, phone_number_id=conversation.phone_number_id,
                contact_id=conversation.contact_id, direction=direction, type=Message.Type.TEXT,
                content={"body": text}, text_preview=text,
                status=Message.Status.RECEIVED if inbound else Message.Status.READ,
                occurred_at=at, status_updated_at=at, sent_at=None if inbound else at,
                delivered_at=None if inbound else at, read_at=None if inbound else at,
                provider_message_id=f"wamid.L{index}.{n}", wa_message_id=f"wamid.L{index}.{n}",
            ))
        if len(messages) >= 5_000:
            Message.objects.bulk_create(messages)
            messages = []
    if messages:
        Message.objects.bulk_create(messages)
    ConversationLabel.objects.bulk_create([
        ConversationLabel(tenant=tenant, conversation=conversation,
                          label=labels[(first + offset) // 5 % len(labels)])
        for offset, conversation in enumerate(conversations) if (first + offset) % 5 == 1
    ])
