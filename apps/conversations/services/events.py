"""The data of tenant-facing message and conversation events (design.md's envelope ``data``)."""

from __future__ import annotations

from typing import Any

from apps.conversations.models import Conversation, Message


def message_event_data(message: Message, *, wa_id: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": message.pk,
        "phone_number_id": message.phone_number_id,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "type": message.type,
        "status": message.status,
        "wa_message_id": message.wa_message_id or message.provider_message_id,
        "contact": {"id": message.contact_id, "wa_id": wa_id},
        "content": message.content,
        "created_at": message.created_at.isoformat() if message.created_at else None,
    }
    if message.campaign_recipient_id:
        data["campaign_recipient_id"] = message.campaign_recipient_id
    if message.status == Message.Status.FAILED:
        data["error"] = {"code": message.error_code, "title": message.error_title, "detail": message.error_detail}
    return data


def conversation_event_data(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "phone_number_id": conversation.phone_number_id,
        "contact_id": conversation.contact_id,
        "status": conversation.status,
        "assignee_id": conversation.assignee_id,
        "window_expires_at": conversation.window_expires_at.isoformat() if conversation.window_expires_at else None,
    }
