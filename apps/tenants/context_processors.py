from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse

from .roles import role_may

NAV = (
    ("inbox", "Inbox", "conversations:inbox"),
    ("campaigns", "Campaigns", "campaigns:list"),
    ("contacts", "Contacts", "contacts:list"),
    ("templates", "Templates", "message_templates:list"),
    ("settings", "Settings", "tenants:settings"),
)


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
    return {"tenant": tenant, "membership": membership, "nav": nav}
