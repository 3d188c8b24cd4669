from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from apps.tenants.models import Tenant

from .models import PhoneNumber


def phone_number_list(*, tenant: Tenant) -> QuerySet[PhoneNumber]:
    return PhoneNumber.objects.for_tenant(tenant).order_by("display_number")


def access_phone_number(*, tenant: Tenant, phone_number_id: int) -> PhoneNumber:
    number = PhoneNumber.objects.for_tenant(tenant).filter(pk=phone_number_id).first()
    if number is None:
        raise Http404("No such phone number")
    return number
