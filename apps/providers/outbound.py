"""What Parley asks a provider to send, and what the provider answered.

``OutboundMessage.content`` is always Meta's type object for ``type`` (the value of the key
named after the type in a Cloud API send body), whichever provider carries the message; each
backend translates it. Examples:

- text: ``{"body": "Hi", "preview_url": False}``
- template: ``{"name": "order_update", "language": {"code": "en_US"}, "components": [...]}``
  (positional parameters, or named ones with ``parameter_name`` when
  ``template_parameter_format == "named"``)
- image/video/audio/document/sticker: ``{"link": url}`` or ``{"id": media_id}``, plus
  ``caption`` (image, video, document) and ``filename`` (document)
- location: ``{"latitude", "longitude", "name", "address"}``; contacts: a list of contact cards
- interactive: Meta's interactive object (``button``, ``list``, ``cta_url``, ``flow``, …)
- reaction: ``{"message_id": wamid, "emoji": "👍"}``
- mark_read: ``{"message_id": wamid, "typing_indicator": True}`` (no ``to`` is needed)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
MESSAGE_TYPES = frozenset(
    {"text", "template", "location", "contacts", "interactive", "reaction", "mark_read"} | MEDIA_TYPES
)
PARAMETER_FORMATS = frozenset({"positional", "named"})


@dataclass(frozen=True)
class OutboundMessage:
    to: str
    type: str
    content: dict[str, Any] | list[dict[str, Any]]
    reply_to: str | None = None
    callback_data: str | None = None
    provider_template_id: str | None = None
    template_parameter_format: str = "positional"

    def __post_init__(self) -> None:
        if self.type not in MESSAGE_TYPES:
            raise ValueError(f"Unknown message type {self.type!r}; expected one of {sorted(MESSAGE_TYPES)}")
        expected: type = list if self.type == "contacts" else dict
        if not isinstance(self.content, expected):
            raise ValueError(f"{self.type} content must be a {expected.__name__} (Meta's {self.type} object)")
        if self.template_parameter_format not in PARAMETER_FORMATS:
            raise ValueError("template_parameter_format must be 'positional' or 'named'")
        if self.type == "mark_read":
            if not self.content.get("message_id"):
                raise ValueError("mark_read needs content['message_id'] (the wamid being read)")
        elif not self.to:
            raise ValueError("an outbound message needs a recipient (to)")

    @property
    def is_media(self) -> bool:
        return self.type in MEDIA_TYPES


@dataclass(frozen=True)
class SendResult:
    """The provider accepted the request. ``provider_message_id`` is a wamid (Meta) or a Gupshup
    message id; it is empty for ``mark_read``, which creates no message."""

    provider_message_id: str
    wa_id: str | None
    message_status: str | None
    raw: dict[str, Any] = field(repr=False)
    status_code: int
    duration_ms: int = 0
