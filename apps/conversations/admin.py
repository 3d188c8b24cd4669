from django.contrib import admin

from apps.core.admin import TenantScopedAdmin

from .models import CannedResponse, Conversation, ConversationLabel, Label, Media, Message, MessageAttempt


@admin.register(Conversation)
class ConversationAdmin(TenantScopedAdmin):
    list_display = ("id", "contact", "phone_number", "status", "assignee", "last_message_at", "window_expires_at", "tenant")
    list_filter = ("tenant", "status")
    raw_id_fields = ("contact", "phone_number", "assignee")


@admin.register(Message)
class MessageAdmin(TenantScopedAdmin):
    list_display = ("id", "direction", "type", "status", "provider_message_id", "error_code", "created_at", "tenant")
    list_filter = ("tenant", "direction", "status", "type")
    search_fields = ("provider_message_id", "wa_message_id")
    raw_id_fields = ("conversation", "contact", "phone_number", "media", "reply_to", "campaign_recipient", "sent_by")


@admin.register(MessageAttempt)
class MessageAttemptAdmin(TenantScopedAdmin):
    list_display = ("id", "message", "outcome", "status_code", "error_code", "duration_ms", "created_at", "tenant")
    list_filter = ("tenant", "outcome")
    raw_id_fields = ("message",)


@admin.register(Media)
class MediaAdmin(TenantScopedAdmin):
    list_display = ("id", "source", "status", "mime_type", "size", "provider_media_id", "tenant")
    list_filter = ("tenant", "source", "status")


@admin.register(Label)
class LabelAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant")


@admin.register(ConversationLabel)
class ConversationLabelAdmin(TenantScopedAdmin):
    list_display = ("conversation", "label", "tenant")
    raw_id_fields = ("conversation", "label")


@admin.register(CannedResponse)
class CannedResponseAdmin(TenantScopedAdmin):
    list_display = ("shortcut", "tenant")
