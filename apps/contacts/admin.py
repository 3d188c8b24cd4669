from django.contrib import admin

from apps.core.admin import TenantScopedAdmin

from .models import AttributeDefinition, Contact, ContactImport, ContactTag, Segment, Tag


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


@admin.register(Segment)
class SegmentAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "created_at")


@admin.register(AttributeDefinition)
class AttributeDefinitionAdmin(TenantScopedAdmin):
    list_display = ("label", "key", "type", "tenant")
    list_filter = ("tenant", "type")


@admin.register(ContactImport)
class ContactImportAdmin(TenantScopedAdmin):
    list_display = ("__str__", "tenant", "status", "total_rows", "created_count", "updated_count", "error_count",
                    "created_at")
    list_filter = ("tenant", "status")
    readonly_fields = ("errors",)
