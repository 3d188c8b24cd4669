from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from .roles import role_may

NAV = (
    ("inbox", "Inbox", "conversations:inbox"),
    ("campaigns", "Campaigns", "campaigns:list"),
    ("contacts", "Contacts", "contacts:list"),
    ("templates", "Templates", "message_templates:list"),
    ("settings", "Settings", "tenants:settings"),
)

# The settings sub-navigation (templates/tenants/_settings_nav.html): key, label, URL name,
# the section that gates it, icon.
SETTINGS_NAV = (
    ("numbers", "Numbers", "phone_numbers:list", "settings.numbers", "phone"),
    ("team", "Team", "tenants:team", "settings.team", "users"),
    ("api_keys", "API keys", "tenants:api_keys", "settings.api_keys", "key"),
    ("webhooks", "Webhooks", "webhooks:endpoint_list", "settings.webhooks", "webhook"),
)


def settings_nav_items(*, tenant_slug: str, role: str) -> list[dict]:
    return [
        {"key": key, "label": label, "icon": icon, "url": reverse(url_name, kwargs={"tenant_slug": tenant_slug})}
        for key, label, url_name, section, icon in SETTINGS_NAV
        if role_may(role, section)
    ]


def workspace(request: HttpRequest) -> dict:
    """Navigation for the workspace in the URL: only the sections the member's role may open."""
    tenant = getattr(request, "tenant", None)
    membership = getattr(request, "membership", None)
    if tenant is None or membership is None:
        return {}
    nav = [
        {"key": key, "label": label, "url": reverse(url_name, kwargs={"tenant_slug": tenant.slug})}
        for key, label, url_name in NAV
        if role_may(membership.role, key)
    ]
    return {"tenant": tenant, "membership": membership, "nav": nav,
            "settings_nav": SimpleLazyObject(lambda: settings_nav_items(tenant_slug=tenant.slug,
                                                                         role=membership.role))}
