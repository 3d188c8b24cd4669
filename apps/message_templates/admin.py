from django.contrib import admin

from apps.core.admin import TenantScopedAdmin

from .models import MessageTemplate


@admin.register(MessageTemplate)
class MessageTemplateAdmin(TenantScopedAdmin):
    list_display = ("name", "language", "category", "status", "tenant", "waba_id")
    list_filter = ("tenant", "status", "category")
    search_fields = ("name",)
