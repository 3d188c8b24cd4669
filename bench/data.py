"""Bulk fixtures for the benchmarks: a workspace and a number through Parley's services, then
contacts, conversations and messages with bulk INSERTs (creating 20,000 messages one
``message_send`` at a time would measure the setup, not the pipeline)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from apps.contacts.models import Contact
from apps.conversations.models import Conversation, Message
from apps.core.statistics import analyze
from apps.phone_numbers.models import PhoneNumber
from apps.phone_numbers.services import phone_number_create
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_create

BATCH = 2000
WABA_ID = "emulator-waba"


def wa_id(index: int) -> str:
    """Distinct, valid E.164 digits for customer ``index``."""
    return f"1555{index:07d}"


def wamid(customer: str, index: int, instance: str) -> str:
    """A WhatsApp message id shaped like Meta's (and the emulator's)."""
    raw = f"{customer}\x15\x02\x00\x11\x18\x12{instance}{index:012X}\x00".encode()
    return "wamid.HBgL" + base64.b64encode(raw).decode()


@dataclass
class Workspace:
    tenant: Tenant
    number: PhoneNumber


def workspace(*, slug: str, phone_number_id: str, display_number: str, app_secret: str,
              messages_per_second: int = 80, graph_api_url: str = "") -> Workspace:
    tenant = tenant_create(slug=slug, name=f"Benchmark {slug}", owner_email=f"{slug}@bench.invalid")
    number = phone_number_create(
        tenant=tenant, provider=PhoneNumber.Provider.META_CLOUD, display_number=display_number,
        phone_number_id=phone_number_id, waba_id=WABA_ID, access_token=f"{slug}-access-token", app_secret=app_secret,
        graph_api_url=graph_api_url, messages_per_second=messages_per_second,
    )
    return Workspace(tenant=tenant, number=number)


def outbound_messages(ws: Workspace, count: int, *, build: Callable[[int, Contact, Conversation], dict[str, Any]],
                      window_open: bool) -> list[Message]:
    """``count`` contacts, one conversation each, and one outbound message per conversation;
    ``build(i, contact, conversation)`` gives the message's own fields (type, content, status...)."""
    now = timezone.now()
    tenant, number = ws.tenant, ws.number
    contacts, conversations = contacts_and_conversations(ws, count, window_open=window_open, now=now)
    messages = [
        Message(tenant=tenant, conversation=conversation, phone_number=number, contact=contact,
                direction=Message.Direction.OUTBOUND, occurred_at=now, status_updated_at=now,
                **build(i, contact, conversation))
        for i, (contact, conversation) in enumerate(zip(contacts, conversations, strict=True))
    ]
    created = Message.all_tenants.bulk_create(messages, batch_size=BATCH)
    if any(m.pk is None for m in created):
        raise RuntimeError("this database did not return the ids of bulk-created rows")
    # As autovacuum would have done on tables that grew over weeks: without fresh statistics
    # PostgreSQL believes the new tables are empty and plans accordingly.
    analyze(Contact, Conversation, Message, sqlite=True)
    return created


def contacts_and_conversations(ws: Workspace, count: int, *, window_open: bool,
                               now: Any = None) -> tuple[list[Contact], list[Conversation]]:
    """``count`` contacts (``wa_id(i)``) with one conversation each on the workspace's number,
    their 24-hour window open or closed."""
    now = now or timezone.now()
    tenant, number = ws.tenant, ws.number
    contacts = Contact.all_tenants.bulk_create(
        [Contact(tenant=tenant, wa_id=wa_id(i), name=f"Customer {i}") for i in range(count)], batch_size=BATCH)
    conversations = Conversation.all_tenants.bulk_create(
        [Conversation(tenant=tenant, phone_number=number, contact=contact, last_message_at=now,
                      last_inbound_at=now if window_open else None,
                      window_expires_at=now + timedelta(hours=24) if window_open else None,
                      last_message_direction=Message.Direction.OUTBOUND)
         for contact in contacts], batch_size=BATCH)
    return contacts, conversations


def instance_tag() -> str:
    return secrets.token_hex(4).upper()
