from django.contrib import admin

from apps.core.admin import TenantScopedAdmin

from .models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantScopedAdmin):
    list_display = ("url", "tenant", "format", "is_active", "created_at")
    list_filter = ("tenant", "format", "is_active")
    exclude = ("secret",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantScopedAdmin):
    list_display = ("event_id", "event_type", "endpoint", "status", "attempt_count", "last_status_code", "tenant")
    list_filter = ("tenant", "status", "event_type")
    raw_id_fields = ("endpoint",)


@admin.register(WebhookDeliveryAttempt)
class WebhookDeliveryAttemptAdmin(TenantScopedAdmin):
    list_display = ("delivery", "status_code", "duration_ms", "created_at", "tenant")
    raw_id_fields = ("delivery",)
