"""Resolve the tenant from the URL once, check membership, and run the view inside the
tenant's scope (like Sentry's convert_args): every handler receives a checked tenant."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django_htmx.middleware import HtmxDetails

from apps.core.scoping import tenant_scope

from .models import Membership, Tenant
from .roles import role_may
from .selectors import access_tenant


class TenantHttpRequest(HttpRequest):
    htmx: HtmxDetails
    tenant: Tenant
    membership: Membership


def tenant_member_required(section: str) -> Callable:
    """Another tenant's slug (or a slug that does not exist) is a 404; a member whose role
    may not enter ``section`` gets a 403."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, tenant_slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
            tenant, membership = access_tenant(user=request.user, tenant_slug=tenant_slug)
            request.tenant = tenant
            request.membership = membership
            if not role_may(membership.role, section):
                raise PermissionDenied(f"Your role ({membership.get_role_display()}) cannot open this section.")
            with tenant_scope(tenant):
                return view(request, tenant_slug, *args, **kwargs)

        wrapper.tenant_section = section  # type: ignore[attr-defined]
        return wrapper

    return decorator
