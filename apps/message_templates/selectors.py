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
