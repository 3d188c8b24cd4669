from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.tenants.models import Tenant

from .models import Contact


def contact_list(*, tenant: Tenant, search: str = "") -> QuerySet[Contact]:
    qs = Contact.objects.for_tenant(tenant).prefetch_related("tags").order_by("-id")
    search = search.strip()
    if search:
        digits = "".join(ch for ch in search if ch.isdigit())
        condition = Q(name__icontains=search) | Q(profile_name__icontains=search)
        if digits:
            condition |= Q(wa_id__startswith=digits)
        qs = qs.filter(condition)
    return qs
