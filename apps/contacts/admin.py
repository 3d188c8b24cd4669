from django.contrib import admin

from apps.core.admin import TenantScopedAdmin

from .models import Contact, ContactTag, Tag


@admin.register(Contact)
class ContactAdmin(TenantScopedAdmin):
    list_display = ("wa_id", "name", "profile_name", "tenant", "opt_in_status", "created_at")
    list_filter = ("tenant", "opt_in_status")
    search_fields = ("wa_id", "name", "profile_name")


@admin.register(Tag)
class TagAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant")


@admin.register(ContactTag)
class ContactTagAdmin(TenantScopedAdmin):
    list_display = ("contact", "tag", "tenant")
    raw_id_fields = ("contact", "tag")
