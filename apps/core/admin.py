"""Admin base for tenant-owned models: superusers see every tenant (with a tenant filter);
staff users see only the tenants they are members of."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest


def member_tenant_ids(request: HttpRequest) -> list[int]:
    from apps.tenants.models import Membership

    return list(Membership.objects.unscoped().filter(user=request.user).values_list("tenant_id", flat=True))


class TenantScopedAdmin(admin.ModelAdmin):
    list_filter: tuple = ("tenant",)
    list_select_related: tuple = ("tenant",)
    readonly_fields: tuple = ("created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = self.model.all_tenants.all()
        if request.user.is_superuser:
            return qs
        return qs.filter(tenant_id__in=member_tenant_ids(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "tenant" and not request.user.is_superuser:
            from apps.tenants.models import Tenant

            kwargs["queryset"] = Tenant.objects.filter(pk__in=member_tenant_ids(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
