from django.contrib import admin

from apps.core.admin import TenantScopedAdmin

from .models import PhoneNumber


@admin.register(PhoneNumber)
class PhoneNumberAdmin(TenantScopedAdmin):
    list_display = ("display_number", "tenant", "provider", "phone_number_id", "status", "messages_per_second", "quality_rating")
    list_filter = ("tenant", "provider", "status")
    search_fields = ("display_number", "phone_number_id", "waba_id")
    # Secrets are write-only: never rendered back into a form.
    exclude = ("credentials",)
    readonly_fields = ("webhook_token", "last_webhook_at", "created_at", "updated_at")
