"""Base models. Tenant-owned rows subclass ``TenantScopedModel`` (see scoping.py)."""

from __future__ import annotations

from typing import Any

from django.db import models

from .scoping import require_tenant_id


class BaseModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class TenantScopedQuerySet(models.QuerySet):
    pass


class TenantScopedManager(models.Manager.from_queryset(TenantScopedQuerySet)):
    """Fails closed: with no tenant in scope, every query raises ``TenantScopeError``.

    ``for_tenant(t)`` and ``unscoped()`` are the two explicit ways around the scope.
    Writes through ``create()`` fill in the scoped tenant when none is given.
    """

    def get_queryset(self) -> TenantScopedQuerySet:
        return super().get_queryset().filter(tenant_id=require_tenant_id())

    def for_tenant(self, tenant_or_id: Any) -> TenantScopedQuerySet:
        tenant_id = getattr(tenant_or_id, "pk", tenant_or_id)
        if tenant_id is None:
            raise ValueError("for_tenant() needs a saved tenant or its id")
        return super().get_queryset().filter(tenant_id=tenant_id)

    def unscoped(self) -> TenantScopedQuerySet:
        return super().get_queryset()

    def create(self, **kwargs: Any) -> Any:
        if "tenant" not in kwargs and "tenant_id" not in kwargs:
            kwargs["tenant_id"] = require_tenant_id()
        return super().get_queryset().create(**kwargs)


class TenantScopedModel(BaseModel):
    """A row owned by one tenant. ``objects`` is scoped; ``all_tenants`` is the plain manager
    (default manager, so admin, related managers and validation keep working)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")

    objects = TenantScopedManager()
    all_tenants = models.Manager()

    class Meta:
        abstract = True
        default_manager_name = "all_tenants"
        base_manager_name = "all_tenants"
