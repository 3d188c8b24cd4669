from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.http import Http404

from apps.tenants.models import Tenant

from .models import Conversation, Media, Message

# What the API shows of a thread: internal notes and activity stay in the inbox.
CUSTOMER_DIRECTIONS = (Message.Direction.INBOUND, Message.Direction.OUTBOUND)
# The largest primary key the database can hold; a larger id names nothing.
MAX_ID = 2**63 - 1


def _is_id(value: int) -> bool:
    return 0 < value <= MAX_ID


def conversation_list(*, tenant: Tenant, status: str | None = None, phone_number_id: int | None = None,
                      wa_id: str | None = None) -> QuerySet[Conversation]:
    qs = (Conversation.objects.for_tenant(tenant)
          .select_related("contact", "phone_number", "assignee")
          .order_by("-last_message_at", "-id"))
    if status:
        qs = qs.filter(status=status)
    if phone_number_id is not None:
        qs = qs.filter(phone_number_id=phone_number_id)
    if wa_id:
        qs = qs.filter(contact__tenant=tenant, contact__wa_id=wa_id)  # the (tenant, wa_id) key, not a scan
    return qs


def access_conversation(*, tenant: Tenant, conversation_id: int) -> Conversation:
    conversation = conversation_list(tenant=tenant).filter(pk=conversation_id).first() \
        if _is_id(conversation_id) else None
    if conversation is None:
        raise Http404("No such conversation")
    return conversation


def message_list(
    *,
    tenant: Tenant,
    phone_number_id: int | None = None,
    conversation_id: int | None = None,
    direction: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Message]:
    """Customer-visible messages, newest first. ``since`` is inclusive, ``until`` exclusive,
    both on ``created_at`` (when Parley recorded the message)."""
    # The number is joined for its display number; its encrypted credentials are not read.
    qs = (Message.objects.for_tenant(tenant).select_related("contact", "phone_number")
          .defer("phone_number__credentials").order_by("-id"))
    qs = qs.filter(direction=direction) if direction else qs.filter(direction__in=CUSTOMER_DIRECTIONS)
    if phone_number_id is not None:
        qs = qs.filter(phone_number_id=phone_number_id)
    if conversation_id is not None:
        qs = qs.filter(conversation_id=conversation_id)
    if status:
        qs = qs.filter(status=status)
        if status == Message.Status.FAILED:
            qs = qs.filter(failed_at__isnull=False)  # always true of a failed row: lets its index serve
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    return qs


def access_message(*, tenant: Tenant, message_id: int) -> Message:
    message = message_list(tenant=tenant).filter(pk=message_id).first() if _is_id(message_id) else None
    if message is None:
        raise Http404("No such message")
    return message


def message_find_reference(*, tenant: Tenant, reference: str) -> Message | None:
    """The tenant's message named by a Parley id or by its WhatsApp / provider message id."""
    reference = str(reference).strip()
    if not reference:
        return None
    messages = Message.objects.for_tenant(tenant).filter(direction__in=CUSTOMER_DIRECTIONS)
    if reference.isdigit() and _is_id(int(reference)):
        found = messages.filter(pk=int(reference)).first()
        if found is not None:
            return found
    return messages.filter(Q(wa_message_id=reference) | Q(provider_message_id=reference)).order_by("-id").first()


def access_media(*, tenant: Tenant, media_id: int) -> Media:
    media = Media.objects.for_tenant(tenant).filter(pk=media_id).first() if _is_id(media_id) else None
    if media is None:
        raise Http404("No such media")
    return media
