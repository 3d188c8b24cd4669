from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from apps.phone_numbers.selectors import phone_number_list

from .decorators import TenantHttpRequest, tenant_member_required
from .roles import landing_section, role_may
from .selectors import access_tenant, api_key_list, member_list, membership_list_for_user

SECTION_URL_NAMES = {
    "inbox": "conversations:inbox",
    "campaigns": "campaigns:list",
    "contacts": "contacts:list",
    "templates": "message_templates:list",
    "settings": "tenants:settings",
}


def landing_url(*, tenant_slug: str, role: str) -> str:
    return reverse(SECTION_URL_NAMES[landing_section(role)], kwargs={"tenant_slug": tenant_slug})


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """After login: the only workspace's landing page, or the picker."""
    memberships = list(membership_list_for_user(user=request.user)[:2])
    if len(memberships) == 1:
        membership = memberships[0]
        return redirect(landing_url(tenant_slug=membership.tenant.slug, role=membership.role))
    return redirect("tenants:picker")


@require_GET
def tenant_picker(request: HttpRequest) -> HttpResponse:
    memberships = membership_list_for_user(user=request.user)
    return render(request, "tenants/picker.html", {"memberships": memberships})


@require_GET
def tenant_root(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    _, membership = access_tenant(user=request.user, tenant_slug=tenant_slug)
    return redirect(landing_url(tenant_slug=tenant_slug, role=membership.role))


@require_GET
@tenant_member_required("settings")
def settings_overview(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    role = request.membership.role
    context = {
        "numbers": phone_number_list(tenant=request.tenant) if role_may(role, "settings.numbers") else None,
        "members": member_list(tenant=request.tenant) if role_may(role, "settings.team") else None,
        "api_keys": api_key_list(tenant=request.tenant) if role_may(role, "settings.api_keys") else None,
        "section": "settings",
    }
    return render(request, "tenants/settings.html", context)
