"""Meta WhatsApp Cloud API webhooks (``object: whatsapp_business_account``).

The envelope walker here is shared with Gupshup Partner v3, whose callbacks use the same
envelope with a few extras (see ``gupshup_partner``); a ``Dialect`` carries the differences.
Meta batches up to 1,000 updates per POST, so every entry, change, message and status is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apps.providers.events import (
    DELETED,
    DELIVERED,
    FAILED,
    MEDIA_TYPES,
    MESSAGE_TYPES,
    PROVIDER_META,
    READ,
    SENT,
    ErrorInfo,
    Event,
    InboundMessage,
    OptEvent,
    OtherEvent,
    ParseError,
    StatusUpdate,
    TemplateStatusUpdate,
    TemplateUpdate,
)

from ._common import (
    InvalidItem,
    as_dict,
    errors_from,
    invalid,
    item_list,
    media_ref,
    meta_content,
    opt_str,
    parse_timestamp,
    preview_for,
)

WHATSAPP_OBJECT = "whatsapp_business_account"

STATUS_MAP: Mapping[str, str] = {
    "sent": SENT,
    "delivered": DELIVERED,
    "read": READ,
    "played": READ,  # first play of a voice message
    "failed": FAILED,
    "deleted": DELETED,
}

# Inbound message types read into an InboundMessage. Any other type (revoke, edit,
# request_welcome, types Meta adds later) becomes an OtherEvent.
INBOUND_TYPES = MESSAGE_TYPES

TEMPLATE_STATUS_FIELD = "message_template_status_update"
TEMPLATE_UPDATE_FIELDS: Mapping[str, tuple[str, str, str]] = {
    # field: (kind, key of the previous value, key of the new value)
    "message_template_quality_update": ("quality", "previous_quality_score", "new_quality_score"),
    "template_category_update": ("category", "previous_category", "new_category"),
    "message_template_components_update": ("components", "", ""),
}

# user_preferences ``value`` → opted in?
USER_PREFERENCE_OPT_IN: Mapping[str, bool] = {"stop": False, "resume": True, "signup": True}


@dataclass(frozen=True, slots=True)
class Dialect:
    provider: str
    status_map: Mapping[str, str]
    # Gupshup v3 statuses carry Gupshup's own id as ``gs_id``; its send API answers with it.
    gs_ids: bool = False
    # Used when a change has no metadata (Gupshup v3: ``gs_app_id``).
    app_route_key: str = ""


META = Dialect(provider=PROVIDER_META, status_map=STATUS_MAP)


def parse_meta(payload: Any) -> list[Event]:
    """Every event in a Meta webhook body. Raises ParseError only if it is not one."""
    entries = _checked_entries(payload)
    foreign = foreign_object(payload, META)
    if foreign is not None:
        return [foreign]
    return parse_entries(entries, META)


def meta_route_keys(payload: Any) -> set[str]:
    """The numbers (``phone_number_id``) and accounts (``"waba:" + entry.id``, for changes that
    carry no metadata: templates, account updates ...) a body concerns, so the intake view can
    find the app secret(s) to check the signature with."""
    keys: set[str] = set()
    for entry in _checked_entries(payload):
        waba_id = opt_str(_entry_dict(entry).get("id"))
        for change in _changes(entry):
            phone_number_id = opt_str(as_dict(_value(change).get("metadata")).get("phone_number_id"))
            if phone_number_id:
                keys.add(phone_number_id)
            elif waba_id:
                keys.add(f"waba:{waba_id}")
    return keys


def parse_entries(entries: list[Any], dialect: Dialect) -> list[Event]:
    events: list[Event] = []
    for entry in entries:
        waba_id = opt_str(_entry_dict(entry).get("id"))
        for change in _changes(entry):
            events.extend(_parse_change(change, waba_id, dialect))
    return events


def _checked_entries(payload: Any) -> list[Any]:
    if not isinstance(payload, dict):
        raise ParseError(f"webhook body is a {type(payload).__name__}, not an object")
    if "object" not in payload:
        raise ParseError("webhook body has no 'object'")
    if "entry" not in payload:
        raise ParseError("webhook body has no 'entry'")
    return item_list(payload["entry"], "'entry'")


def foreign_object(payload: dict[str, Any], dialect: Dialect) -> OtherEvent | None:
    """A body for another product (Messenger, Instagram ...) sent to the same URL."""
    obj = payload.get("object")
    if obj is None or obj == WHATSAPP_OBJECT:
        return None
    return OtherEvent(provider=dialect.provider, route_key="", kind=f"object.{obj}", raw=payload)


def _entry_dict(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ParseError("an 'entry' item is not an object")
    return entry


def _changes(entry: Any) -> list[dict[str, Any]]:
    changes = item_list(_entry_dict(entry).get("changes"), "'changes'")
    for change in changes:
        if not isinstance(change, dict):
            raise ParseError("a 'changes' item is not an object")
        _value(change)
    return changes


def _value(change: dict[str, Any]) -> dict[str, Any]:
    value = change.get("value")
    if not isinstance(value, dict):
        raise ParseError(f"change {change.get('field')!r} has no 'value' object")
    return value


def _parse_change(change: dict[str, Any], waba_id: str | None, dialect: Dialect) -> list[Event]:
    field = opt_str(change.get("field")) or "unknown"
    value = _value(change)
    phone_number_id = opt_str(as_dict(value.get("metadata")).get("phone_number_id"))
    if field == "messages":
        # Gupshup v3 may omit metadata (and entry.id): its app id names the number then.
        return _messages_change(value, phone_number_id or dialect.app_route_key or waba_id or "", dialect)
    # Account-level fields (templates, account updates) carry no metadata: the WABA id names them.
    route_key = phone_number_id or waba_id or dialect.app_route_key or ""
    if field == TEMPLATE_STATUS_FIELD:
        return [_template_status(value, route_key, dialect)]
    if field in TEMPLATE_UPDATE_FIELDS:
        return [_template_update(field, value, route_key, dialect)]
    if field == "user_preferences":
        return _user_preferences(value, route_key, dialect)
    return [OtherEvent(provider=dialect.provider, route_key=route_key, kind=field, raw=value)]


# --- messages ---------------------------------------------------------------------------------


def _messages_change(value: dict[str, Any], route_key: str, dialect: Dialect) -> list[Event]:
    names = _profile_names(value.get("contacts"))
    value_errors = errors_from(value.get("errors"))
    events: list[Event] = [
        _message_event(message, route_key, names, value_errors, dialect)
        for message in item_list(value.get("messages"), "'messages'")
    ]
    events.extend(_status_event(status, route_key, dialect) for status in item_list(value.get("statuses"), "'statuses'"))
    if not events:
        kind = "messages.errors" if value_errors else "messages"
        events.append(OtherEvent(provider=dialect.provider, route_key=route_key, kind=kind, raw=value))
    return events


def _profile_names(contacts: Any) -> dict[str, str]:
    """wa_id (and business-scoped user_id) → profile name, from ``value.contacts``."""
    names: dict[str, str] = {}
    if not isinstance(contacts, list):
        return names
    for contact in contacts:
        if not isinstance(contact, dict):
            continue
        name = str(as_dict(contact.get("profile")).get("name") or "")
        for key in ("wa_id", "user_id"):
            ident = opt_str(contact.get(key))
            if ident:
                names[ident] = name
    return names


def _message_event(
    message: Any,
    route_key: str,
    names: dict[str, str],
    value_errors: tuple[ErrorInfo, ...],
    dialect: Dialect,
) -> Event:
    provider = dialect.provider
    if not isinstance(message, dict):
        return invalid(provider, route_key, "message", message, "message is not an object")
    message_id = opt_str(message.get("id"))
    # Business-scoped user ids (BSUID) may replace the phone number in newer payloads.
    sender = opt_str(message.get("from")) or opt_str(message.get("from_user_id"))
    if not message_id or not sender:
        return invalid(provider, route_key, "message", message, "message has no 'id' or 'from'")
    try:
        timestamp = parse_timestamp(message.get("timestamp"))
    except InvalidItem as exc:
        return invalid(provider, route_key, "message", message, str(exc))
    message_type = opt_str(message.get("type")) or "untyped"
    if message_type not in INBOUND_TYPES:
        return OtherEvent(provider=provider, route_key=route_key, kind=f"messages.{message_type}", raw=message)
    content = meta_content(message_type, message)
    return InboundMessage(
        provider=provider,
        route_key=route_key,
        wa_id=sender,
        profile_name=names.get(sender, ""),
        provider_message_id=message_id,
        timestamp=timestamp,
        type=message_type,
        content=content,
        text=preview_for(message_type, content),
        context_id=_context_id(message.get("context")),
        media=media_ref(content) if message_type in MEDIA_TYPES else None,
        errors=errors_from(message.get("errors")) + value_errors,
        raw=message,
    )


def _context_id(context: Any) -> str | None:
    """The replied-to message: Gupshup v3 adds its own id as ``gs_id`` next to the wamid; prefer
    it, since that is the id its send API answered. A forwarded-only context has no id."""
    context = as_dict(context)
    return opt_str(context.get("gs_id")) or opt_str(context.get("id"))


# --- statuses ---------------------------------------------------------------------------------


def _status_event(status: Any, route_key: str, dialect: Dialect) -> Event:
    provider = dialect.provider
    if not isinstance(status, dict):
        return invalid(provider, route_key, "status", status, "status is not an object")
    if status.get("type") == "call":
        return OtherEvent(provider=provider, route_key=route_key, kind="calls.status", raw=status)
    wa_message_id = opt_str(status.get("id"))
    raw_status = opt_str(status.get("status"))
    if not wa_message_id or not raw_status:
        return invalid(provider, route_key, "status", status, "status has no 'id' or 'status'")
    try:
        timestamp = parse_timestamp(status.get("timestamp"))
    except InvalidItem as exc:
        return invalid(provider, route_key, "status", status, str(exc))
    provider_message_id = (opt_str(status.get("gs_id")) if dialect.gs_ids else None) or wa_message_id
    callback_data = status.get("biz_opaque_callback_data")
    return StatusUpdate(
        provider=provider,
        route_key=route_key,
        provider_message_id=provider_message_id,
        wa_message_id=wa_message_id,
        status=dialect.status_map.get(raw_status.lower(), raw_status.lower()),
        timestamp=timestamp,
        recipient_wa_id=opt_str(status.get("recipient_id")),
        errors=errors_from(status.get("errors")),
        conversation=as_dict(status.get("conversation")),
        pricing=as_dict(status.get("pricing")),
        callback_data=callback_data if isinstance(callback_data, str) else None,
        raw=status,
    )


# --- templates --------------------------------------------------------------------------------


def _template_status(value: dict[str, Any], route_key: str, dialect: Dialect) -> Event:
    template_id = opt_str(value.get("message_template_id"))
    status = opt_str(value.get("event"))
    if not template_id or not status:
        return invalid(dialect.provider, route_key, "template_status", value,
                       "template status update has no 'message_template_id' or 'event'")
    reason = opt_str(value.get("reason")) or ""
    return TemplateStatusUpdate(
        provider=dialect.provider,
        route_key=route_key,
        template_id=template_id,
        name=str(value.get("message_template_name") or ""),
        language=str(value.get("message_template_language") or ""),
        status=status.upper(),
        reason="" if reason.upper() == "NONE" else reason,
        raw=value,
        details=_template_details(value),
        category=str(value.get("message_template_category") or "").upper(),
    )


def _template_details(value: dict[str, Any]) -> str:
    rejection = as_dict(value.get("rejection_info"))
    parts = [opt_str(rejection.get("reason")), opt_str(rejection.get("recommendation"))]
    disable_date = opt_str(as_dict(value.get("disable_info")).get("disable_date"))
    if disable_date:
        parts.append(f"Disable date: {disable_date}")
    return " ".join(part for part in parts if part)


def _template_update(field: str, value: dict[str, Any], route_key: str, dialect: Dialect) -> Event:
    template_id = opt_str(value.get("message_template_id"))
    if not template_id:
        return invalid(dialect.provider, route_key, "template_update", value, f"{field} has no 'message_template_id'")
    kind, previous_key, new_key = TEMPLATE_UPDATE_FIELDS[field]
    return TemplateUpdate(
        provider=dialect.provider,
        route_key=route_key,
        template_id=template_id,
        name=str(value.get("message_template_name") or ""),
        language=str(value.get("message_template_language") or ""),
        kind=kind,
        previous=str(value.get(previous_key) or "") if previous_key else "",
        new=str(value.get(new_key) or "") if new_key else "",
        raw=value,
    )


# --- user preferences (marketing opt-out / opt-in) --------------------------------------------


def _user_preferences(value: dict[str, Any], route_key: str, dialect: Dialect) -> list[Event]:
    events: list[Event] = []
    for item in item_list(value.get("user_preferences"), "'user_preferences'"):
        events.append(_user_preference(item, route_key, dialect))
    if not events:
        events.append(OtherEvent(provider=dialect.provider, route_key=route_key, kind="user_preferences", raw=value))
    return events


def _user_preference(item: Any, route_key: str, dialect: Dialect) -> Event:
    provider = dialect.provider
    if not isinstance(item, dict):
        return invalid(provider, route_key, "user_preference", item, "user preference is not an object")
    wa_id = opt_str(item.get("wa_id"))
    choice = str(item.get("value") or "").lower()
    if not wa_id or choice not in USER_PREFERENCE_OPT_IN:
        return OtherEvent(provider=provider, route_key=route_key, kind="user_preferences", raw=item)
    try:
        timestamp = parse_timestamp(item.get("timestamp"))
    except InvalidItem as exc:
        return invalid(provider, route_key, "user_preference", item, str(exc))
    return OptEvent(
        provider=provider,
        route_key=route_key,
        wa_id=wa_id,
        opted_in=USER_PREFERENCE_OPT_IN[choice],
        timestamp=timestamp,
        source=str(item.get("category") or "user_preferences"),
        raw=item,
    )
