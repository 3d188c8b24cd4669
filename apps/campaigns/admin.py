from django.contrib import admin

from apps.core.admin import TenantScopedAdmin

from .models import Campaign, CampaignRecipient


@admin.register(Campaign)
class CampaignAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "status", "phone_number", "template", "scheduled_at", "started_at", "completed_at")
    list_filter = ("tenant", "status")
    raw_id_fields = ("phone_number", "template", "created_by")


@admin.register(CampaignRecipient)
class CampaignRecipientAdmin(TenantScopedAdmin):
    list_display = ("id", "campaign", "contact", "status", "skip_reason", "error_code", "tenant")
    list_filter = ("tenant", "status", "skip_reason")
    raw_id_fields = ("campaign", "contact")
