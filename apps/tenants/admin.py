from django.contrib import admin

from apps.core.admin import TenantScopedAdmin, member_tenant_ids

from .models import ApiKey, Invitation, Membership, Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "is_active", "time_zone", "created_at")
    search_fields = ("name", "slug")

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(pk__in=member_tenant_ids(request))


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("tenant", "role")
    search_fields = ("user__email",)
    raw_id_fields = ("user",)


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "prefix", "last_used_at", "revoked_at", "created_at")
    readonly_fields = ("prefix", "hashed_key", "last_used_at", "created_at", "updated_at")
    exclude = ()


@admin.register(Invitation)
class InvitationAdmin(TenantScopedAdmin):
    list_display = ("email", "tenant", "role", "expires_at", "accepted_at", "revoked_at", "created_at")
    list_filter = ("tenant", "role")
    search_fields = ("email",)
    readonly_fields = ("token_hash", "accepted_at", "accepted_by", "created_at", "updated_at")
    raw_id_fields = ("invited_by",)
