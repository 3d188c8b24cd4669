from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.tenants.decorators import TenantHttpRequest, tenant_member_required

from .selectors import campaign_list


@require_GET
@tenant_member_required("campaigns")
def campaign_list_page(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    return render(request, "campaigns/list.html", {
        "section": "campaigns", "campaigns": campaign_list(tenant=request.tenant)[:100],
    })
