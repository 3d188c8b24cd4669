"""Meta's Cloud API shapes for Parley's messages: the message ids the Meta-compatible endpoint
answers with, and the Meta webhook envelope (protocol.md A5) built from a stored Parley event.

Pure functions: no database, no settings. The sender calls ``meta_envelope`` with the event as
it was stored and the business number it concerns, and signs the result like Meta does.

Message ids. The Meta-compatible endpoint answers a send with ``wamid.`` + the URL-safe base64
of ``parley:<message id>`` (``message_wamid``) before any provider has seen the message, so the id
is stable: the same message keeps it in every status webhook (``statuses[].id``), whatever id
the provider gives it later, and the endpoint accepts it back in ``context.message_id``,
``reaction.message_id`` and mark-as-read bodies. Inbound messages keep their real WhatsApp id.

Which events are sent to a Meta-format endpoint (``META_EVENT_TYPES``): ``message.received``
becomes ``value.messages[]``; ``message.sent``, ``message.delivered``, ``message.read`` and
``message.failed`` become ``value.statuses[]``. Meta has no webhook for Parley's other events
(``message.accepted``, conversations, campaigns, templates as Parley reports them, opt-outs),
so they are not emitted to such endpoints at all. Both kinds carry ``contacts[]`` (profile
name, ``wa_id``, ``user_id``) as Meta's newer payloads do. A ``webhook.test`` becomes the sample text
message Meta's dashboard sends when a developer tests the ``messages`` field.

Users. Meta's newer webhooks name each user by a business-scoped user id (``contacts[].user_id``,
``"US.13491208655302741918"``) besides the phone number, and Cloud API clients reply to that id
(``recipient`` instead of ``to``). Parley's equivalent is ``<ISO country of the number>.<Parley
contact id>`` (``contact_user_id``): scoped to the tenant like the contact, and accepted back by
the Meta-compatible endpoint.

Inside a message, the type object is Meta's as received, except that a file's ``id`` is the
Parley media id (the provider's media id and download URL only work with the provider's
credentials, which the tenant's bot does not hold) and Parley's parsed copy of a flow reply
(``nfm_reply.response``) is left out. ``metadata.phone_number_id`` is the id the bot uses in
its URLs: the provider's phone number id, or Parley's id for numbers that have none.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers

WAMID_PREFIX = "wamid."
# The largest primary key a database stores (signed 64-bit).
MAX_ID = 2**63 - 1
_ID_PREFIX = "parley:"
WHATSAPP_OBJECT = "whatsapp_business_account"
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})

# Parley event type -> Meta status (statuses[].status).
STATUS_EVENTS = {
    "message.sent": "sent",
    "message.delivered": "delivered",
    "message.read": "read",
    "message.failed": "failed",
}
META_EVENT_TYPES = frozenset({"message.received", *STATUS_EVENTS})
TEST_EVENT_TYPE = "webhook.test"

# Meta's generic error, for a failure that came without a provider code.
GENERIC_ERROR_CODE = 131000
GENERIC_ERROR_TITLE = "Something went wrong"


@dataclass(frozen=True)
class BusinessNumber:
    """What Meta's ``metadata`` and ``entry[].id`` say about the business number."""

    phone_number_id: str
    display_phone_number: str
    waba_id: str


def message_wamid(message_id: int) -> str:
    """The Meta-style id of Parley message ``message_id``."""
    encoded = base64.urlsafe_b64encode(f"{_ID_PREFIX}{int(message_id)}".encode()).decode("ascii")
    return WAMID_PREFIX + encoded.rstrip("=")


def message_id_from_wamid(value: str) -> int | None:
    """The Parley message id inside an id made by ``message_wamid``; None for any other id
    (a real WhatsApp id, a provider's id, garbage)."""
    if not isinstance(value, str) or not value.startswith(WAMID_PREFIX):
        return None
    encoded = value[len(WAMID_PREFIX):]
    if not encoded or len(encoded) > 64:
        return None
    try:
        decoded = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not decoded.startswith(_ID_PREFIX):
        return None
    return as_id(decoded[len(_ID_PREFIX):])


def as_id(text: Any) -> int | None:
    """``text`` as a primary key when it is one: digits, at least 1, at most ``MAX_ID``."""
    text = str(text).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


USER_ID = re.compile(r"([A-Z]{2})\.(\d{1,19})")
UNKNOWN_REGION = "ZZ"


def contact_user_id(contact_id: int, wa_id: str | None) -> str:
    """Parley's business-scoped user id for contact ``contact_id`` (whose number is ``wa_id``)."""
    region = UNKNOWN_REGION
    if wa_id:
        try:
            found = phonenumbers.region_code_for_number(phonenumbers.parse("+" + str(wa_id).lstrip("+")))
        except phonenumbers.NumberParseException:
            found = None
        if found and re.fullmatch(r"[A-Z]{2}", found):
            region = found
    return f"{region}.{int(contact_id)}"


def contact_id_from_user_id(value: Any) -> int | None:
    """The Parley contact id inside an id made by ``contact_user_id``; None for anything else."""
    match = USER_ID.fullmatch(value.strip()) if isinstance(value, str) else None
    return as_id(match.group(2)) if match else None


def _epoch(value: Any) -> str | None:
    """An ISO 8601 timestamp as Meta's string of Unix seconds."""
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return str(int(moment.timestamp()))


def _envelope(number: BusinessNumber, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": WHATSAPP_OBJECT,
        "entry": [{
            "id": number.waba_id,
            "changes": [{
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {
                        "display_phone_number": number.display_phone_number,
                        "phone_number_id": number.phone_number_id,
                    },
                    **value,
                },
                "field": "messages",
            }],
        }],
    }


def _contacts(data: dict[str, Any]) -> list[dict[str, Any]]:
    contact = data.get("contact") or {}
    item: dict[str, Any] = {"profile": {"name": contact.get("name") or ""}, "wa_id": contact.get("wa_id") or ""}
    if contact.get("id"):
        item["user_id"] = contact_user_id(contact["id"], contact.get("wa_id"))
    return [item]


def _meta_error(code: Any, title: str, detail: str) -> dict[str, Any]:
    title = title or (GENERIC_ERROR_TITLE if code is None else "")
    error: dict[str, Any] = {
        "code": int(code) if code is not None else GENERIC_ERROR_CODE,
        "title": title,
        "message": title,
    }
    if detail:
        error["error_data"] = {"details": detail}
    return error


def _type_object(message_type: str, content: Any, media_id: Any) -> Any:
    if message_type == "contacts":
        return list(content.get("contacts") or []) if isinstance(content, dict) else list(content or [])
    body = dict(content) if isinstance(content, dict) else {}
    if message_type in MEDIA_TYPES:
        body.pop("url", None)
        if media_id:
            body["id"] = str(media_id)
    if message_type == "interactive" and isinstance(body.get("nfm_reply"), dict):
        body["nfm_reply"] = {k: v for k, v in body["nfm_reply"].items() if k != "response"}
    return body


def _context(data: dict[str, Any], number: BusinessNumber) -> dict[str, Any] | None:
    quoted = data.get("reply_to")
    if not quoted:
        return None
    if quoted.get("id") and quoted.get("direction") == "outbound":
        quoted_id = message_wamid(quoted["id"])
    else:
        quoted_id = quoted.get("wa_message_id") or (message_wamid(quoted["id"]) if quoted.get("id") else None)
    if not quoted_id:
        return None
    return {"from": number.display_phone_number, "id": quoted_id}


def inbound_message(data: dict[str, Any], number: BusinessNumber) -> dict[str, Any]:
    """One ``value.messages[]`` item for a received message."""
    message_type = data.get("type") or "unsupported"
    content = data.get("content") or {}
    contact = data.get("contact") or {}
    item: dict[str, Any] = {"from": contact.get("wa_id") or ""}
    if contact.get("id"):
        item["from_user_id"] = contact_user_id(contact["id"], contact.get("wa_id"))
    item |= {
        "id": data.get("wa_message_id") or message_wamid(data["id"]),
        "timestamp": _epoch(data.get("occurred_at") or data.get("created_at")) or "0",
        "type": message_type,
    }
    context = _context(data, number)
    if context:
        item["context"] = context
    if message_type == "unsupported":
        original = content.get("type") if isinstance(content, dict) else None
        if original:
            item["unsupported"] = {"type": original}
    else:
        item[message_type] = _type_object(message_type, content, data.get("media_id"))
    error = data.get("error")
    if error and (error.get("code") is not None or error.get("title")):
        item["errors"] = [_meta_error(error.get("code"), error.get("title") or "", error.get("detail") or "")]
    return item


def status_item(status: str, data: dict[str, Any], *, fallback_time: str | None) -> dict[str, Any]:
    """One ``value.statuses[]`` item for an outbound message's status."""
    contact = data.get("contact") or {}
    item: dict[str, Any] = {
        "id": message_wamid(data["id"]),
        "status": status,
        "timestamp": _epoch(data.get("status_at") or fallback_time) or "0",
        "recipient_id": contact.get("wa_id") or "",
    }
    pricing = data.get("pricing") or {}
    if status == "sent":
        if pricing.get("conversation"):
            item["conversation"] = pricing["conversation"]
        if pricing.get("pricing"):
            item["pricing"] = pricing["pricing"]
    if status == "failed":
        error = data.get("error") or {}
        item["errors"] = [_meta_error(error.get("code"), error.get("title") or "", error.get("detail") or "")]
    return item


# The number in Meta's dashboard sample: a bot that checks ``phone_number_id`` ignores the sample.
SAMPLE_NUMBER = BusinessNumber(phone_number_id="123456123", display_phone_number="16505551111", waba_id="0")


def dashboard_sample_envelope() -> dict[str, Any]:
    """The sample Meta's dashboard sends to test the ``messages`` field."""
    return _envelope(SAMPLE_NUMBER, {
        "contacts": [{"profile": {"name": "test user name"}, "wa_id": "16315551181", "user_id": "US.0"}],
        "messages": [{"from": "16315551181", "id": "ABGGFlA5Fpa", "timestamp": "1504902988", "type": "text",
                      "text": {"body": "this is a text message"}}],
    })


def meta_envelope(event: dict[str, Any], number: BusinessNumber | None) -> dict[str, Any] | None:
    """The Meta webhook body for stored Parley event ``event`` (``{"id", "type",
    "created_at", "data"}``) about business number ``number``; None when the event has no Meta
    form (or concerns no number)."""
    event_type = event.get("type")
    data = event.get("data") or {}
    if event_type == TEST_EVENT_TYPE:
        return dashboard_sample_envelope()
    if number is None:
        return None
    if event_type == "message.received":
        return _envelope(number, {"contacts": _contacts(data), "messages": [inbound_message(data, number)]})
    if event_type in STATUS_EVENTS:
        item = status_item(STATUS_EVENTS[event_type], data, fallback_time=event.get("created_at"))
        return _envelope(number, {"contacts": _contacts(data), "statuses": [item]})
    return None
