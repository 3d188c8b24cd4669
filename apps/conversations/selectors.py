from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from apps.tenants.models import Tenant

from .models import Conversation


def conversation_list(*, tenant: Tenant, status: str | None = None) -> QuerySet[Conversation]:
    qs = (Conversation.objects.for_tenant(tenant)
          .select_related("contact", "phone_number", "assignee")
          .order_by("-last_message_at", "-id"))
    if status:
        qs = qs.filter(status=status)
    return qs


def access_conversation(*, tenant: Tenant, conversation_id: int) -> Conversation:
    conversation = conversation_list(tenant=tenant).filter(pk=conversation_id).first()
    if conversation is None:
        raise Http404("No such conversation")
    return conversation
