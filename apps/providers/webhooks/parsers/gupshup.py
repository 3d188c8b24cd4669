"""Gupshup classic ("v2") callbacks: ``{"app", "timestamp" (ms), "version": 2, "type", "payload"}``
with ``type`` one of ``message``, ``message-event``, ``user-event``, ``billing-event``.

Gupshup message types are mapped onto Meta's names and shapes, so the rest of Parley sees one
format: ``file`` → ``document``, ``contact`` → ``contacts``, ``button_reply`` / ``quick_reply`` /
``list_reply`` → ``interactive`` (``button`` for a template's quick-reply button).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from apps.providers.events import (
    ACCEPTED,
    DELETED,
    DELIVERED,
    FAILED,
    MEDIA_TYPES,
    PROVIDER_GUPSHUP,
    READ,
    SENT,
    ErrorInfo,
    Event,
    InboundMessage,
    OptEvent,
    OtherEvent,
    ParseError,
    StatusUpdate,
)

from ._common import (
    InvalidItem,
    as_dict,
    invalid,
    iso_from_timestamp,
    media_ref,
    opt_str,
    parse_timestamp,
    preview_for,
    to_int,
    to_number,
)

STATUS_MAP: Mapping[str, str] = {
    "enqueued": ACCEPTED,
    "sent": SENT,
    "delivered": DELIVERED,
    "read": READ,
    "failed": FAILED,
    "deleted": DELETED,
}
# For these events ``payload.id`` is Gupshup's message id (the send API's ``messageId``); for
# the delivery reports (sent/delivered/read ...) ``payload.id`` is the WhatsApp id and ``gsId``
# Gupshup's, except on reports that arrive more than a week late, which lack ``gsId``.
SUBMISSION_EVENTS = frozenset({"enqueued", "failed"})

# Gupshup inbound type → Meta type.
TYPE_MAP: Mapping[str, str] = {
    "text": "text",
    "image": "image",
    "video": "video",
    "audio": "audio",
    "sticker": "sticker",
    "file": "document",
    "location": "location",
    "contact": "contacts",
    "button_reply": "interactive",
    "quick_reply": "interactive",  # or "button" when the payload is a template button
    "list_reply": "interactive",
}

USER_EVENT_OPT_IN: Mapping[str, bool] = {"opted-in": True, "opted-out": False}

_Handler = Callable[[dict[str, Any], Any, str, str], Event]


def parse_gupshup(payload: Any) -> list[Event]:
    """Every event in a Gupshup v2 callback body (one per body). ParseError if it is not one."""
    return parse_v2(payload, provider=PROVIDER_GUPSHUP)


def parse_v2(payload: Any, *, provider: str) -> list[Event]:
    if not isinstance(payload, dict):
        raise ParseError(f"Gupshup callback body is a {type(payload).__name__}, not an object")
    event_type = opt_str(payload.get("type"))
    inner = payload.get("payload")
    if not event_type:
        raise ParseError("Gupshup callback has no 'type'")
    if not isinstance(inner, dict):
        raise ParseError("Gupshup callback has no 'payload' object")
    route_key = opt_str(payload.get("app")) or ""
    handler = EVENT_HANDLERS.get(event_type)
    if handler is None:
        # billing-event and anything Gupshup adds later.
        return [OtherEvent(provider=provider, route_key=route_key, kind=event_type, raw=inner)]
    return [handler(inner, payload.get("timestamp"), route_key, provider)]


# --- inbound messages -------------------------------------------------------------------------


def _message(inner: dict[str, Any], envelope_timestamp: Any, route_key: str, provider: str) -> Event:
    message_id = opt_str(inner.get("id"))
    sender = as_dict(inner.get("sender"))
    wa_id = opt_str(sender.get("phone")) or opt_str(inner.get("source"))
    if not message_id or not wa_id:
        return invalid(provider, route_key, "message", inner, "message has no 'id' or sender phone")
    try:
        timestamp = parse_timestamp(envelope_timestamp)
    except InvalidItem as exc:
        return invalid(provider, route_key, "message", inner, str(exc))
    gupshup_type = opt_str(inner.get("type")) or "untyped"
    body = as_dict(inner.get("payload"))
    if gupshup_type not in TYPE_MAP:
        return OtherEvent(provider=provider, route_key=route_key, kind=f"message.{gupshup_type}", raw=inner)
    message_type, content = _to_meta(gupshup_type, body)
    context = as_dict(inner.get("context"))
    return InboundMessage(
        provider=provider,
        route_key=route_key,
        wa_id=wa_id,
        profile_name=str(sender.get("name") or ""),
        provider_message_id=message_id,
        timestamp=timestamp,
        type=message_type,
        content=content,
        text=preview_for(message_type, content),
        # gsId is Gupshup's id of the replied-to message (what its send API answered).
        context_id=opt_str(context.get("gsId")) or opt_str(context.get("id")),
        media=media_ref(content) if message_type in MEDIA_TYPES else None,
        errors=(),
        raw=inner,
    )


def _to_meta(gupshup_type: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    message_type = TYPE_MAP[gupshup_type]
    if message_type == "text":
        return message_type, {"body": str(body.get("text") or "")}
    if message_type in MEDIA_TYPES:
        return message_type, _media(message_type, body)
    if message_type == "location":
        return message_type, _location(body)
    if message_type == "contacts":
        contacts = body.get("contacts")
        return message_type, {"contacts": list(contacts) if isinstance(contacts, list) else []}
    if gupshup_type == "quick_reply" and body.get("type") == "button":
        return "button", _template_button(body)
    return message_type, _interactive_reply(gupshup_type, body)


def _media(message_type: str, body: dict[str, Any]) -> dict[str, Any]:
    content = {
        "id": opt_str(body.get("id")),
        "url": opt_str(body.get("url")),
        "mime_type": opt_str(body.get("contentType")) or opt_str(body.get("content-type")),
        "caption": opt_str(body.get("caption")),
        "filename": opt_str(body.get("name")) if message_type == "document" else None,
    }
    content.update(_url_expiry(body.get("urlExpiry")))
    return {key: value for key, value in content.items() if value is not None}


def _url_expiry(value: Any) -> dict[str, Any]:
    """``urlExpiry`` (ms) as ISO 8601; an unreadable one is kept as sent, not fatal to the message."""
    try:
        return {"url_expires_at": iso_from_timestamp(value)}
    except InvalidItem:
        return {"url_expiry": value}


def _location(body: dict[str, Any]) -> dict[str, Any]:
    content = {
        "latitude": to_number(body.get("latitude")),
        "longitude": to_number(body.get("longitude")),
        "name": opt_str(body.get("name")),
        "address": opt_str(body.get("address")),
        "url": opt_str(body.get("url")),
    }
    return {key: value for key, value in content.items() if value is not None}


def _template_button(body: dict[str, Any]) -> dict[str, Any]:
    """A template's quick-reply button, Meta's ``button`` shape. Meta's ``payload`` is what the
    template send set for the button, Gupshup's ``postbackText``; without one Meta repeats
    the button text, and so do we."""
    text = str(body.get("text") or "")
    return {"payload": opt_str(body.get("postbackText")) or text, "text": text}


def _interactive_reply(gupshup_type: str, body: dict[str, Any]) -> dict[str, Any]:
    """A reply to an interactive message, Meta's ``interactive`` shape. The id is
    ``postbackText`` when present: the classic send API sets options' ``postbackText``, not ids."""
    subtype = "list_reply" if gupshup_type == "list_reply" else "button_reply"
    reply: dict[str, Any] = {
        "id": opt_str(body.get("postbackText")) or opt_str(body.get("id")) or "",
        "title": str(body.get("title") or body.get("reply") or ""),
    }
    description = opt_str(body.get("description"))
    if subtype == "list_reply" and description:
        reply["description"] = description
    return {"type": subtype, subtype: reply}


# --- message events (delivery reports) --------------------------------------------------------


def _message_event(inner: dict[str, Any], envelope_timestamp: Any, route_key: str, provider: str) -> Event:
    event_type = (opt_str(inner.get("type")) or "").lower()
    event_id = opt_str(inner.get("id"))
    details = as_dict(inner.get("payload"))
    if not event_type:
        return invalid(provider, route_key, "status", inner, "message-event has no 'type'")
    if event_type in SUBMISSION_EVENTS:
        provider_message_id = event_id
        wa_message_id = opt_str(details.get("whatsappMessageId"))
    else:
        provider_message_id = opt_str(inner.get("gsId")) or event_id
        wa_message_id = event_id
    if not provider_message_id:
        return invalid(provider, route_key, "status", inner, "message-event has no message id")
    try:
        # ``payload.ts`` (seconds) is when WhatsApp reported it; the envelope's is Gupshup's.
        timestamp = parse_timestamp(details["ts"] if details.get("ts") not in (None, "") else envelope_timestamp)
    except InvalidItem as exc:
        return invalid(provider, route_key, "status", inner, str(exc))
    return StatusUpdate(
        provider=provider,
        route_key=route_key,
        provider_message_id=provider_message_id,
        wa_message_id=wa_message_id,
        status=STATUS_MAP.get(event_type, event_type),
        timestamp=timestamp,
        recipient_wa_id=opt_str(inner.get("destination")),
        errors=_failure(details) if event_type == "failed" else (),
        conversation=as_dict(inner.get("conversation")),
        pricing=as_dict(inner.get("pricing")),
        callback_data=None,
        raw=inner,
    )


def _failure(details: dict[str, Any]) -> tuple[ErrorInfo, ...]:
    """A failed event's ``payload``: ``{"code": 1002, "reason": "..."}`` (Gupshup codes, or Meta's
    passed through). A failure without either still yields one error, so it is never silent."""
    code = to_int(details.get("code"))
    reason = str(details.get("reason") or details.get("message") or "")
    return (ErrorInfo(code=code, title=reason, message=reason, details=""),)


# --- user events (opt-in / opt-out / sandbox) -------------------------------------------------


def _user_event(inner: dict[str, Any], envelope_timestamp: Any, route_key: str, provider: str) -> Event:
    event_type = (opt_str(inner.get("type")) or "").lower()
    phone = opt_str(inner.get("phone"))
    if event_type not in USER_EVENT_OPT_IN or not phone:
        # sandbox-start (also sent with phone "callbackSetPhone" when a callback URL is set).
        return OtherEvent(provider=provider, route_key=route_key, kind=f"user-event.{event_type or 'untyped'}",
                          raw=inner)
    try:
        timestamp = parse_timestamp(envelope_timestamp)
    except InvalidItem as exc:
        return invalid(provider, route_key, "user_event", inner, str(exc))
    return OptEvent(
        provider=provider,
        route_key=route_key,
        wa_id=phone,
        opted_in=USER_EVENT_OPT_IN[event_type],
        timestamp=timestamp,
        source="user-event",
        raw=inner,
    )


EVENT_HANDLERS: Mapping[str, _Handler] = {
    "message": _message,
    "message-event": _message_event,
    "user-event": _user_event,
}
