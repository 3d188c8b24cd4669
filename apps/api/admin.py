from django.contrib import admin

from apps.core.admin import TenantScopedAdmin

from .models import IdempotencyKey


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(TenantScopedAdmin):
    list_display = ("key", "tenant", "completed", "status_code", "created_at")
    readonly_fields = ("fingerprint", "response_body", "created_at", "updated_at")
