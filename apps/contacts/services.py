from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.tenants.models import Tenant

from .models import Contact


def contact_get_or_create(*, tenant: Tenant, wa_id: str, profile_name: str = "") -> tuple[Contact, bool]:
    """The tenant's contact for ``wa_id`` (already normalized), created on first sight.
    A WhatsApp profile name is kept up to date; the name an agent typed is never overwritten."""
    contact, created = Contact.objects.for_tenant(tenant).get_or_create(
        tenant=tenant, wa_id=wa_id, defaults={"profile_name": profile_name[:200]},
    )
    if not created and profile_name and contact.profile_name != profile_name[:200]:
        contact.profile_name = profile_name[:200]
        contact.save(update_fields=["profile_name", "updated_at"])
    return contact, created


@transaction.atomic
def contact_opt_set(*, contact: Contact, opted_in: bool, source: str, at: datetime | None = None) -> bool:
    """Record an opt-in or opt-out. Returns whether the state changed."""
    at = at or timezone.now()
    new_state = Contact.OptIn.OPTED_IN if opted_in else Contact.OptIn.OPTED_OUT
    if contact.opt_in_status == new_state:
        return False
    contact.opt_in_status = new_state
    contact.opt_in_source = source[:64]
    if opted_in:
        contact.opted_in_at = at
    else:
        contact.opted_out_at = at
    contact.save(update_fields=["opt_in_status", "opt_in_source", "opted_in_at", "opted_out_at", "updated_at"])
    return True
