from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from apps.tenants.models import Tenant

from .models import Contact, ContactTag


def contact_list(
    *,
    tenant: Tenant,
    search: str = "",
    tags: Iterable[str] | None = None,
    opt_in_status: str | None = None,
    updated_since: datetime | None = None,
) -> QuerySet[Contact]:
    """Newest first, tags prefetched. ``search`` matches the name, the WhatsApp profile name or
    the start of the number; ``tags``: contacts carrying every one of the given tag names."""
    qs = Contact.objects.for_tenant(tenant).prefetch_related("tags").order_by("-id")
    search = search.strip()
    if search:
        digits = "".join(ch for ch in search if ch.isdigit())
        condition = Q(name__icontains=search) | Q(profile_name__icontains=search)
        if digits:
            condition |= Q(wa_id__startswith=digits)
        qs = qs.filter(condition)
    for name in dict.fromkeys(tags or ()):
        tagged = ContactTag.objects.for_tenant(tenant).filter(tag__name=name).values("contact_id")
        qs = qs.filter(pk__in=tagged)
    if opt_in_status:
        qs = qs.filter(opt_in_status=opt_in_status)
    if updated_since is not None:
        qs = qs.filter(updated_at__gte=updated_since)
    return qs


def access_contact(*, tenant: Tenant, contact_id: Any) -> Contact:
    """The tenant's contact with its tags; another tenant's id (or no such id) is a 404."""
    try:
        pk = int(contact_id)
    except (TypeError, ValueError) as exc:
        raise Http404("No contact matches the given query.") from exc
    contact = Contact.objects.for_tenant(tenant).prefetch_related("tags").filter(pk=pk).first()
    if contact is None:
        raise Http404("No contact matches the given query.")
    return contact
