from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.tenants.decorators import TenantHttpRequest, tenant_member_required

from .selectors import contact_list

PAGE_SIZE = 50


@require_GET
@tenant_member_required("contacts")
def contact_list_page(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    search = request.GET.get("q", "")
    contacts = contact_list(tenant=request.tenant, search=search)[:PAGE_SIZE]
    return render(request, "contacts/list.html", {"section": "contacts", "contacts": contacts, "q": search})
