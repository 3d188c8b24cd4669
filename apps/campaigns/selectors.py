from __future__ import annotations

from django.db.models import QuerySet

from apps.tenants.models import Tenant

from .models import Campaign


def campaign_list(*, tenant: Tenant) -> QuerySet[Campaign]:
    return (Campaign.objects.for_tenant(tenant).select_related("template", "phone_number")
            .order_by("-created_at", "-id"))
