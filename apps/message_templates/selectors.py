from __future__ import annotations

from django.db.models import QuerySet

from apps.tenants.models import Tenant

from .models import MessageTemplate


def template_list(*, tenant: Tenant, status: str | None = None) -> QuerySet[MessageTemplate]:
    qs = MessageTemplate.objects.for_tenant(tenant).select_related("phone_number").order_by("name", "language")
    if status:
        qs = qs.filter(status=status)
    return qs
