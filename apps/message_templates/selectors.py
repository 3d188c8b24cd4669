from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from apps.phone_numbers.models import PhoneNumber
from apps.tenants.models import Tenant

from .models import MessageTemplate


def template_list(
    *,
    tenant: Tenant,
    status: str | None = None,
    name: str | None = None,
    language: str | None = None,
    category: str | None = None,
    phone_number_id: int | None = None,
) -> QuerySet[MessageTemplate]:
    """By name and language. ``phone_number_id`` (Parley's id) narrows to the templates of
    that number's WABA (Gupshup: its app); a number of another tenant matches nothing."""
    qs = MessageTemplate.objects.for_tenant(tenant).select_related("phone_number").order_by("name", "language", "id")
    if status:
        qs = qs.filter(status=status)
    if name:
        qs = qs.filter(name=name)
    if language:
        qs = qs.filter(language=language)
    if category:
        qs = qs.filter(category=category)
    if phone_number_id is not None:
        number = PhoneNumber.objects.for_tenant(tenant).filter(pk=phone_number_id).values("waba_id").first()
        if number is None:
            return qs.none()
        qs = qs.filter(waba_id=number["waba_id"])
    return qs


def access_template(*, tenant: Tenant, template_id: Any) -> MessageTemplate:
    try:
        pk = int(template_id)
    except (TypeError, ValueError) as exc:
        raise Http404("No template matches the given query.") from exc
    template = MessageTemplate.objects.for_tenant(tenant).select_related("phone_number").filter(pk=pk).first()
    if template is None:
        raise Http404("No template matches the given query.")
    return template


# --- the template pages -----------------------------------------------------------------------

def template_browse(*, tenant: Tenant, status: str | None = None, search: str | None = None,
                    phone_number_id: Any = None) -> QuerySet[MessageTemplate]:
    """The list page: by name, filtered by status (deleted ones only when asked for), a search
    in the name, and a number (its WABA / Gupshup app)."""
    number_id = None
    if phone_number_id not in (None, ""):
        try:
            number_id = int(phone_number_id)
        except (TypeError, ValueError):
            return MessageTemplate.objects.for_tenant(tenant).none()
    qs = template_list(tenant=tenant, status=status or None, phone_number_id=number_id)
    if not status:
        qs = qs.exclude(status=MessageTemplate.Status.DELETED)
    if search:
        qs = qs.filter(name__icontains=search.strip().replace(" ", "_"))
    return qs


def templates_version(*, tenant: Tenant) -> str:
    """A token that changes whenever any template of the tenant changes (its latest
    ``updated_at``): the list's live poll sends it back and hears 204 while it still holds."""
    latest = (MessageTemplate.objects.for_tenant(tenant).order_by("-updated_at")
              .values_list("updated_at", flat=True).first())
    return latest.isoformat() if latest else "0"


def templates_changed_since(*, tenant: Tenant, version: str) -> bool:
    from django.utils.dateparse import parse_datetime

    since = parse_datetime(version or "") if version and version != "0" else None
    qs = MessageTemplate.objects.for_tenant(tenant)
    if since is None:
        return version != "0" or qs.exists()
    return qs.filter(updated_at__gt=since).exists()


def template_numbers(*, tenant: Tenant) -> QuerySet[PhoneNumber]:
    return PhoneNumber.objects.for_tenant(tenant).order_by("id")
