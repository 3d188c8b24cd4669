from django.contrib import admin

from apps.core.admin import TenantScopedAdmin

from .models import WebhookEvent


@admin.register(WebhookEvent)
class WebhookEventAdmin(TenantScopedAdmin):
    list_display = ("id", "provider", "tenant", "phone_number", "received_at", "processed_at", "attempts", "error")
    list_filter = ("provider", "tenant")
    readonly_fields = ("body_sha256", "received_at", "created_at", "updated_at")
    raw_id_fields = ("phone_number",)
