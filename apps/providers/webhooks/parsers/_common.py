"""Helpers shared by the provider parsers: timestamps, errors, Meta-shaped content and previews.

Everything here is pure: no database, no settings, no network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from apps.providers.events import MEDIA_TYPES, ErrorInfo, MediaRef, OtherEvent, ParseError

# A Unix time above this is in milliseconds (10**11 s is the year 5138; 10**11 ms is 1973).
MILLISECONDS_ABOVE = 10**11
PREVIEW_MAX_LENGTH = 255

MEDIA_PLACEHOLDERS: Mapping[str, str] = {
    "image": "📷 Photo",
    "video": "🎥 Video",
    "audio": "🎵 Audio",
    "document": "📄 Document",
    "sticker": "Sticker",
}
MEDIA_REF_KEYS = frozenset({"id", "url", "mime_type", "sha256", "filename", "caption"})


class InvalidItem(ValueError):
    """One message/status/etc. inside an otherwise valid body cannot be read. The parser turns
    it into an ``OtherEvent(kind="invalid.<what>")`` so the rest of the batch still counts."""


def parse_timestamp(value: Any) -> datetime:
    """Unix time as int, float or numeric string, in seconds or milliseconds, to aware UTC."""
    if isinstance(value, bool) or value is None:
        raise InvalidItem(f"not a timestamp: {value!r}")
    number: int | float
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        number = _number_from_text(value)
    else:
        raise InvalidItem(f"not a timestamp: {value!r}")
    if number < 0:
        raise InvalidItem(f"negative timestamp: {value!r}")
    try:
        if number > MILLISECONDS_ABOVE:
            if isinstance(number, int):
                seconds, milliseconds = divmod(number, 1000)
                return datetime.fromtimestamp(seconds, UTC) + timedelta(milliseconds=milliseconds)
            return datetime.fromtimestamp(number / 1000, UTC)
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidItem(f"timestamp out of range: {value!r}") from exc


def _number_from_text(text: str) -> int | float:
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        return float(stripped)
    except ValueError as exc:
        raise InvalidItem(f"not a timestamp: {text!r}") from exc


def iso_from_timestamp(value: Any) -> str | None:
    """``parse_timestamp`` as an ISO 8601 string, or None when absent (for JSON-safe extras)."""
    if value is None or value == "":
        return None
    return parse_timestamp(value).isoformat()


def opt_str(value: Any) -> str | None:
    """A non-empty string form of an id-like value, or None for None / "" / containers."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    return text or None


def to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def to_number(value: Any) -> Any:
    """Coordinates arrive as numbers (Meta) or numeric strings (Gupshup); keep anything else."""
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return value
    return value


def as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def item_list(value: Any, what: str) -> list[Any]:
    """A list-valued key that may be absent. Present but not a list is a broken body."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(f"{what} is not a list")
    return value


def invalid(provider: str, route_key: str, what: str, item: Any, detail: str) -> OtherEvent:
    raw = item if isinstance(item, dict) else {"item": item}
    return OtherEvent(provider=provider, route_key=route_key, kind=f"invalid.{what}", raw=raw, detail=detail)


def errors_from(items: Any) -> tuple[ErrorInfo, ...]:
    """Meta ``errors[]``: ``{code, title, message, error_data: {details}}``."""
    if not isinstance(items, list):
        return ()
    return tuple(_error_info(item) for item in items)


def _error_info(item: Any) -> ErrorInfo:
    if not isinstance(item, dict):
        return ErrorInfo(code=None, title="", message=str(item), details="")
    title = str(item.get("title") or "")
    return ErrorInfo(
        code=to_int(item.get("code")),
        title=title,
        message=str(item.get("message") or title),
        details=str(as_dict(item.get("error_data")).get("details") or ""),
    )


def media_ref(content: Mapping[str, Any]) -> MediaRef:
    return MediaRef(
        provider_media_id=opt_str(content.get("id")) or "",
        url=opt_str(content.get("url")),
        mime_type=opt_str(content.get("mime_type")),
        sha256=opt_str(content.get("sha256")),
        filename=opt_str(content.get("filename")),
        caption=opt_str(content.get("caption")),
        extra={key: value for key, value in content.items() if key not in MEDIA_REF_KEYS},
    )


def meta_content(message_type: str, message: Mapping[str, Any]) -> dict[str, Any]:
    """The Meta-shaped type object of an inbound message, copied (never the caller's dict)."""
    obj = message.get(message_type)
    if message_type == "contacts":
        return {"contacts": list(obj) if isinstance(obj, list) else []}
    if not isinstance(obj, dict):
        return {}
    content = dict(obj)
    if message_type == "interactive" and content.get("type") == "nfm_reply":
        content["nfm_reply"] = _flow_reply(as_dict(content.get("nfm_reply")))
    return content


def _flow_reply(reply: dict[str, Any]) -> dict[str, Any]:
    """Keep ``response_json`` (a JSON string) and add it parsed as ``response``; None when it is
    not a JSON object."""
    raw_json = reply.get("response_json")
    response: dict[str, Any] | None = None
    if isinstance(raw_json, str):
        try:
            decoded = json.loads(raw_json)
        except json.JSONDecodeError:
            decoded = None
        response = decoded if isinstance(decoded, dict) else None
    return {**reply, "response": response}


def preview_for(message_type: str, content: Mapping[str, Any]) -> str:
    """A short human preview of a message for lists and notifications."""
    return shorten(_preview(message_type, content))


def shorten(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= PREVIEW_MAX_LENGTH:
        return text
    return text[: PREVIEW_MAX_LENGTH - 1] + "…"


def _preview(message_type: str, content: Mapping[str, Any]) -> str:
    if message_type == "text":
        return str(content.get("body") or "")
    if message_type in MEDIA_TYPES:
        return _media_preview(message_type, content)
    handler = _PREVIEWS.get(message_type)
    if handler is None:
        return f"[{message_type}]"
    return handler(content)


def _media_preview(message_type: str, content: Mapping[str, Any]) -> str:
    caption = opt_str(content.get("caption"))
    if caption:
        return caption
    if message_type == "document" and opt_str(content.get("filename")):
        return f"📄 {content['filename']}"
    if message_type == "audio" and content.get("voice") is True:
        return "🎤 Voice message"
    return MEDIA_PLACEHOLDERS[message_type]


def _location_preview(content: Mapping[str, Any]) -> str:
    label = opt_str(content.get("name")) or opt_str(content.get("address"))
    if label is None and content.get("latitude") is not None and content.get("longitude") is not None:
        label = f"{content['latitude']}, {content['longitude']}"
    return f"📍 {label or 'Location'}"


def _contacts_preview(content: Mapping[str, Any]) -> str:
    names = [
        opt_str(as_dict(card.get("name")).get("formatted_name")) or opt_str(as_dict(card.get("name")).get("first_name"))
        for card in content.get("contacts", [])
        if isinstance(card, dict)
    ]
    shown = [name for name in names if name]
    return "👤 " + (", ".join(shown) if shown else "Contact")


def _interactive_preview(content: Mapping[str, Any]) -> str:
    subtype = opt_str(content.get("type"))
    if subtype is None:
        return "[unsupported: interactive]"
    reply = as_dict(content.get(subtype))
    if subtype in ("button_reply", "list_reply"):
        return str(reply.get("title") or reply.get("id") or "")
    if subtype == "nfm_reply":
        return str(reply.get("body") or reply.get("name") or "Form reply")
    if subtype == "call_permission_reply":
        return f"📞 Call permission: {reply.get('response') or 'unknown'}"
    return f"[interactive: {subtype}]"


def _button_preview(content: Mapping[str, Any]) -> str:
    return str(content.get("text") or content.get("payload") or "")


def _reaction_preview(content: Mapping[str, Any]) -> str:
    # An empty or absent emoji means the customer removed their reaction.
    return str(content.get("emoji") or "")


def _order_preview(content: Mapping[str, Any]) -> str:
    items = content.get("product_items")
    count = len(items) if isinstance(items, list) else 0
    note = opt_str(content.get("text"))
    label = f"🛒 Order ({count} item{'s' if count != 1 else ''})"
    return f"{label}: {note}" if note else label


def _system_preview(content: Mapping[str, Any]) -> str:
    return str(content.get("body") or content.get("type") or "[system]")


def _unsupported_preview(content: Mapping[str, Any]) -> str:
    return f"[unsupported: {opt_str(content.get('type')) or 'message'}]"


_PREVIEWS = {
    "location": _location_preview,
    "contacts": _contacts_preview,
    "interactive": _interactive_preview,
    "button": _button_preview,
    "reaction": _reaction_preview,
    "order": _order_preview,
    "system": _system_preview,
    "unsupported": _unsupported_preview,
}
