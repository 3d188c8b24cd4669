"""System check: every tenant-owned model has the tenant FK and the fail-closed manager
(in the spirit of django.contrib.sites' E001/E002)."""

from django.apps import apps
from django.core import checks
from django.db import models

from .models import TenantScopedManager, TenantScopedModel

# Tables that point at a tenant but are not scoped rows themselves.
NOT_TENANT_OWNED = {"tenants.Tenant"}


def _label(related) -> str | None:
    # A lazy reference ("tenants.Tenant") is still a string until the app registry resolves it.
    if isinstance(related, str):
        return related
    return related._meta.label if related is not None else None


@checks.register(checks.Tags.models)
def check_tenant_scoped_models(app_configs=None, **kwargs):
    return check_models(apps.get_models())


def check_models(model_list) -> list[checks.CheckMessage]:
    errors = []
    for model in model_list:
        label = model._meta.label
        if label in NOT_TENANT_OWNED or not model.__module__.startswith("apps."):
            continue
        tenant_fks = [
            f
            for f in model._meta.get_fields()
            if isinstance(f, models.ForeignKey) and _label(f.related_model) == "tenants.Tenant" and f.concrete
        ]
        is_scoped = issubclass(model, TenantScopedModel)
        if tenant_fks and not is_scoped:
            errors.append(checks.Error(
                f"{label} has a ForeignKey to Tenant but does not subclass TenantScopedModel.",
                hint="Tenant-owned rows must use apps.core.models.TenantScopedModel.",
                obj=model, id="parley.E001",
            ))
            continue
        if not is_scoped:
            continue
        field = next((f for f in tenant_fks if f.name == "tenant"), None)
        if field is None:
            errors.append(checks.Error(
                f"{label} is tenant-scoped but has no 'tenant' ForeignKey to tenants.Tenant.",
                obj=model, id="parley.E002",
            ))
        if not isinstance(getattr(model, "objects", None), TenantScopedManager):
            errors.append(checks.Error(
                f"{label}.objects is not a TenantScopedManager: queries would fail open.",
                obj=model, id="parley.E003",
            ))
        if isinstance(model._default_manager, TenantScopedManager):
            errors.append(checks.Error(
                f"{label}'s default manager is the scoped one; admin and related lookups would raise.",
                hint="Keep Meta.default_manager_name = 'all_tenants'.",
                obj=model, id="parley.E004",
            ))
        leading = [
            c for c in model._meta.constraints
            if isinstance(c, models.UniqueConstraint) and c.fields and c.fields[0] != "tenant"
        ]
        allowed = set(getattr(model, "GLOBAL_UNIQUE_CONSTRAINTS", ()))
        for constraint in leading:
            if constraint.name not in allowed:
                errors.append(checks.Error(
                    f"{label} constraint {constraint.name} does not lead with 'tenant'.",
                    hint="Lead unique constraints with tenant, or list the name in GLOBAL_UNIQUE_CONSTRAINTS with a reason.",
                    obj=model, id="parley.E005",
                ))
    return errors
