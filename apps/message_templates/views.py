from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.tenants.decorators import TenantHttpRequest, tenant_member_required

from .selectors import template_list


@require_GET
@tenant_member_required("templates")
def template_list_page(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    return render(request, "message_templates/list.html", {
        "section": "templates", "templates": template_list(tenant=request.tenant),
    })
