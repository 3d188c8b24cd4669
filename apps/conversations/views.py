from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.tenants.decorators import TenantHttpRequest, tenant_member_required

from .models import Conversation
from .selectors import conversation_list

INBOX_PAGE_SIZE = 50


@require_GET
@tenant_member_required("inbox")
def inbox(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    status = request.GET.get("status") or Conversation.Status.OPEN
    if status not in Conversation.Status.values:
        status = Conversation.Status.OPEN
    conversations = conversation_list(tenant=request.tenant, status=status)[:INBOX_PAGE_SIZE]
    return render(request, "conversations/inbox.html", {
        "section": "inbox", "conversations": conversations, "status": status,
        "statuses": Conversation.Status.choices,
    })
