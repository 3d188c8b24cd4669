"""Pure validation of Graph API request bodies, the way Meta's Cloud API validates them.

Nothing here does I/O. Every rejection is a :class:`GraphError` carrying Meta's error code,
HTTP status and the ``details`` string; :func:`error_body` renders Meta's error envelope.
Templates are described by :class:`TemplateRecord`, parsed once from a creation body so that
validating a template send is a handful of dictionary look-ups.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# code -> (HTTP status, title). Titles and statuses from Meta's Cloud API error-code table.
ERRORS: dict[int, tuple[int, str]] = {
    0: (401, "AuthException"),
    2: (503, "Service temporarily unavailable"),
    4: (400, "Application request limit reached"),
    100: (400, "Invalid parameter"),
    190: (401, "Invalid OAuth access token - Cannot parse access token"),
    130429: (400, "Rate limit hit"),
    131000: (500, "Something went wrong"),
    131008: (400, "Required parameter is missing"),
    131009: (400, "Parameter value is not valid"),
    131026: (400, "Message undeliverable"),
    131047: (400, "Re-engagement message"),
    131049: (400, "This message was not delivered to maintain healthy ecosystem engagement."),
    131051: (400, "Unsupported message type"),
    131053: (400, "Media upload error"),
    132000: (400, "Number of parameters does not match the expected number of params"),
    132001: (404, "Template name does not exist in the translation"),
    132012: (400, "Parameter format does not match format in the created template"),
    132015: (400, "Template is Paused"),
    132016: (400, "Template is Disabled"),
}

# Details strings Meta uses in error_data / status-webhook errors for the codes the emulator
# produces on its own.
ERROR_DETAILS: dict[int, str] = {
    2: "Service temporarily unavailable. Please retry your request.",
    130429: "Cloud API message throughput has been reached.",
    131000: "Something went wrong. Please retry your request.",
    131026: "Message Undeliverable.",
    131047: (
        "Message failed to send because more than 24 hours have passed since the customer last "
        "replied to this number."
    ),
    131049: "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
}

ERROR_HREF = "/documentation/business-messaging/whatsapp/support/error-codes"

MESSAGE_TYPES = (
    "audio",
    "contacts",
    "document",
    "image",
    "interactive",
    "location",
    "reaction",
    "sticker",
    "template",
    "text",
    "video",
)
_MESSAGE_TYPE_SET = frozenset(MESSAGE_TYPES)
MEDIA_TYPES = frozenset({"audio", "document", "image", "sticker", "video"})
_CAPTIONED = frozenset({"document", "image", "video"})
INTERACTIVE_TYPES = frozenset(
    {
        "address_message",
        "button",
        "call_permission_request",
        "catalog_message",
        "cta_url",
        "flow",
        "list",
        "location_request_message",
        "order_details",
        "order_status",
        "product",
        "product_list",
        "voice_call",
    }
)
_INTERACTIVE_NEEDS_BODY = frozenset({"button", "list", "cta_url", "flow", "catalog_message"})
TEMPLATE_CATEGORIES = frozenset({"AUTHENTICATION", "MARKETING", "UTILITY"})
TEMPLATE_STATUSES = frozenset(
    {
        "APPROVED",
        "ARCHIVED",
        "DELETED",
        "DISABLED",
        "FLAGGED",
        "IN_APPEAL",
        "LIMIT_EXCEEDED",
        "LOCKED",
        "PAUSED",
        "PENDING",
        "PENDING_DELETION",
        "REINSTATED",
        "REJECTED",
    }
)
_SENDABLE_STATUSES = frozenset({"APPROVED", "FLAGGED", "REINSTATED", "UNARCHIVED"})
_HEADER_MEDIA_FORMATS = frozenset({"IMAGE", "VIDEO", "DOCUMENT", "LOCATION"})

_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_TEMPLATE_NAME_RE = re.compile(r"[a-z0-9_]{1,512}")
_PHONE_STRIP = str.maketrans("", "", "+ -().")

TEXT_BODY_MAX = 4096
CAPTION_MAX = 1024
CALLBACK_DATA_MAX = 512


class GraphError(Exception):
    """A Graph API error answer: Meta's code, HTTP status, message and details."""

    def __init__(
        self,
        code: int,
        details: str,
        *,
        message: str | None = None,
        http_status: int | None = None,
        subcode: int | None = None,
        error_type: str = "OAuthException",
    ) -> None:
        status, title = ERRORS.get(code, (400, "Invalid parameter"))
        self.code = code
        self.details = details
        self.message = message or f"(#{code}) {title}"
        self.http_status = http_status or status
        self.subcode = subcode
        self.error_type = error_type
        super().__init__(f"{self.message}: {details}")


def fbtrace_id() -> str:
    return secrets.token_urlsafe(17)[:23]


def error_body(err: GraphError) -> dict[str, Any]:
    """Meta's synchronous error envelope (protocol.md A4)."""
    error: dict[str, Any] = {
        "message": err.message,
        "type": err.error_type,
        "code": err.code,
    }
    if err.subcode is not None:
        error["error_subcode"] = err.subcode
    error["error_data"] = {"messaging_product": "whatsapp", "details": err.details}
    error["fbtrace_id"] = fbtrace_id()
    return {"error": error}


def webhook_error(code: int) -> dict[str, Any]:
    """An ``errors[]`` entry of a failed status webhook (protocol.md A5)."""
    title = ERRORS.get(code, (400, "Something went wrong"))[1]
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": ERROR_DETAILS.get(code, title)},
        "href": ERROR_HREF,
    }


def unknown_object(object_id: str, method: str) -> GraphError:
    return GraphError(
        100,
        f"Object with ID '{object_id}' does not exist.",
        message=(
            f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this operation. "
            "Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
        ),
        subcode=33,
        error_type="GraphMethodException",
    )


def phone_digits(value: str) -> str | None:
    """The WhatsApp id (digits only) for a phone number as a client may write it."""
    digits = value.translate(_PHONE_STRIP)
    if 5 <= len(digits) <= 15 and digits.isascii() and digits.isdigit():
        return digits
    return None


# --------------------------------------------------------------------------------------------
# Templates


@dataclass(slots=True)
class TemplateRecord:
    """An approved-or-not message template and what a send must supply for it."""

    id: str
    name: str
    language: str
    category: str
    status: str
    components: list[dict[str, Any]]
    parameter_format: str = "POSITIONAL"
    header_format: str | None = None
    header_params: int = 0
    body_params: tuple[str, ...] = ()
    buttons: tuple[dict[str, Any], ...] = ()
    reason: str = "NONE"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def named(self) -> bool:
        return self.parameter_format == "NAMED"

    def to_graph(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "parameter_format": self.parameter_format,
            "components": self.components,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "id": self.id,
        }


def _placeholders(text: str) -> list[str]:
    seen: list[str] = []
    for name in _PLACEHOLDER_RE.findall(text):
        if name not in seen:
            seen.append(name)
    return seen


def parse_template_definition(body: Any, template_id: str) -> TemplateRecord:
    """Validate a ``POST /<WABA_ID>/message_templates`` body and describe the template."""
    if not isinstance(body, dict):
        raise GraphError(100, "Request body must be a JSON object.")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise GraphError(100, "The parameter name is required.")
    if not _TEMPLATE_NAME_RE.fullmatch(name):
        raise GraphError(100, "Template name can only contain lowercase characters, numbers and underscores.")
    language = body.get("language")
    if not isinstance(language, str) or not language:
        raise GraphError(100, "The parameter language is required.")
    category = body.get("category")
    if not isinstance(category, str) or not category:
        raise GraphError(100, "The parameter category is required.")
    category = category.upper()
    if category not in TEMPLATE_CATEGORIES:
        raise GraphError(
            100, f'Param category must be one of {{AUTHENTICATION, MARKETING, UTILITY}} - got "{category}".'
        )
    fmt = body.get("parameter_format", "positional")
    if not isinstance(fmt, str) or fmt.upper() not in ("POSITIONAL", "NAMED"):
        raise GraphError(100, "Param parameter_format must be one of {POSITIONAL, NAMED}.")
    components = body.get("components")
    if not isinstance(components, list) or not components:
        raise GraphError(100, "The parameter components is required.")
    record = describe_template(
        template_id=template_id,
        name=name,
        language=language,
        category=category,
        status="PENDING",
        components=components,
        parameter_format=fmt.upper(),
    )
    if not any(c.get("type") == "BODY" for c in record.components):
        raise GraphError(100, "A template needs a BODY component.")
    return record


def describe_template(
    *,
    template_id: str,
    name: str,
    language: str,
    category: str,
    status: str,
    components: list[Any],
    parameter_format: str = "POSITIONAL",
) -> TemplateRecord:
    """Normalize components (upper-case types) and work out the expected send parameters."""
    normalized: list[dict[str, Any]] = []
    header_format: str | None = None
    header_params = 0
    body_params: tuple[str, ...] = ()
    buttons: list[dict[str, Any]] = []
    named = parameter_format == "NAMED"
    for index, component in enumerate(components):
        if not isinstance(component, dict) or not isinstance(component.get("type"), str):
            raise GraphError(100, f"Param components[{index}] must be an object with a type.")
        comp = dict(component)
        ctype = comp["type"].upper()
        comp["type"] = ctype
        if ctype == "HEADER":
            header_format = str(comp.get("format", "TEXT")).upper()
            comp["format"] = header_format
            if header_format == "TEXT":
                header_params = len(_placeholders(str(comp.get("text", ""))))
            elif header_format in _HEADER_MEDIA_FORMATS:
                header_params = 1
            else:
                raise GraphError(100, f"Unsupported header format {header_format}.")
        elif ctype == "BODY":
            names = _placeholders(str(comp.get("text", "")))
            if named and any(n.isdigit() for n in names):
                raise GraphError(100, "Named templates need named placeholders like {{first_name}}.")
            if not named and any(not n.isdigit() for n in names):
                raise GraphError(100, "Positional templates need placeholders like {{1}}.")
            body_params = tuple(names)
        elif ctype == "BUTTONS":
            raw_buttons = comp.get("buttons")
            if not isinstance(raw_buttons, list):
                raise GraphError(100, "The parameter components[].buttons is required.")
            norm_buttons = []
            for button in raw_buttons:
                if not isinstance(button, dict) or not isinstance(button.get("type"), str):
                    raise GraphError(100, "Each button needs a type.")
                b = dict(button)
                b["type"] = b["type"].upper()
                norm_buttons.append(b)
                buttons.append(
                    {
                        "type": b["type"],
                        "text": str(b.get("text", "")),
                        "dynamic": b["type"] == "URL" and bool(_placeholders(str(b.get("url", "")))),
                    }
                )
            comp["buttons"] = norm_buttons
        elif ctype != "FOOTER":
            raise GraphError(100, f"Unsupported component type {ctype}.")
        normalized.append(comp)
    return TemplateRecord(
        id=template_id,
        name=name,
        language=language,
        category=category,
        status=status,
        components=normalized,
        parameter_format=parameter_format,
        header_format=header_format,
        header_params=header_params,
        body_params=body_params,
        buttons=tuple(buttons),
    )


def _check_params(params: list[Any], where: str) -> None:
    for i, param in enumerate(params):
        if not isinstance(param, dict) or not isinstance(param.get("type"), str):
            raise GraphError(100, f"Param {where}['parameters'][{i}]['type'] is required.")
        ptype = param["type"]
        if ptype not in param:
            raise GraphError(100, f"The parameter {where}['parameters'][{i}]['{ptype}'] is required.")


def check_template_send(
    template: dict[str, Any], templates: Mapping[tuple[str, str], TemplateRecord]
) -> tuple[TemplateRecord, dict[int, str]]:
    """Validate the ``template`` object of a send against the stored templates.

    Returns the template and the quick-reply payloads given per button index.
    """
    name = template.get("name")
    if not isinstance(name, str) or not name:
        raise GraphError(100, "The parameter template['name'] is required.")
    language = template.get("language")
    if not isinstance(language, dict):
        raise GraphError(100, "The parameter template['language'] is required.")
    code = language.get("code")
    if not isinstance(code, str) or not code:
        raise GraphError(100, "The parameter template['language']['code'] is required.")
    record = templates.get((name, code))
    if record is not None and record.status == "PAUSED":
        raise GraphError(132015, f"Template {name} is paused.")
    if record is not None and record.status == "DISABLED":
        raise GraphError(132016, f"Template {name} is disabled.")
    if record is None or record.status not in _SENDABLE_STATUSES:
        raise GraphError(132001, f"template name ({name}) does not exist in {code}")

    components = template.get("components", [])
    if not isinstance(components, list):
        raise GraphError(100, "Param template['components'] must be an array.")
    header: list[Any] | None = None
    body: list[Any] | None = None
    buttons: dict[int, list[Any]] = {}
    for i, comp in enumerate(components):
        where = f"template['components'][{i}]"
        if not isinstance(comp, dict):
            raise GraphError(100, f"Param {where} must be an object.")
        ctype = comp.get("type")
        if not isinstance(ctype, str):
            raise GraphError(100, f"The parameter {where}['type'] is required.")
        params = comp.get("parameters", [])
        if not isinstance(params, list):
            raise GraphError(100, f"Param {where}['parameters'] must be an array.")
        _check_params(params, where)
        ctype = ctype.lower()
        if ctype == "header":
            header = params
        elif ctype == "body":
            body = params
        elif ctype == "button":
            if not isinstance(comp.get("sub_type"), str):
                raise GraphError(100, f"The parameter {where}['sub_type'] is required.")
            try:
                index = int(comp.get("index"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise GraphError(100, f"The parameter {where}['index'] is required.") from None
            if not 0 <= index < len(record.buttons):
                raise GraphError(131009, f"button: index {index} does not exist in the template")
            buttons[index] = params
        else:
            raise GraphError(
                100, f"Param {where}['type'] must be one of {{HEADER, BODY, BUTTON}} - got \"{ctype}\"."
            )

    given_header = header or []
    if record.header_format in _HEADER_MEDIA_FORMATS:
        got = given_header[0]["type"].upper() if given_header else "UNKNOWN"
        if got != record.header_format:
            raise GraphError(
                132012, f"header: Format mismatch, expected {record.header_format}, received {got}"
            )
        if len(given_header) != 1:
            raise GraphError(
                132000,
                f"header: number of localizable_params ({len(given_header)}) does not match the "
                "expected number of params (1)",
            )
        media = given_header[0].get(record.header_format.lower())
        if record.header_format != "LOCATION" and (
            not isinstance(media, dict) or not (media.get("id") or media.get("link"))
        ):
            raise GraphError(100, "Header media needs an id or a link.")
    elif len(given_header) != record.header_params:
        raise GraphError(
            132000,
            f"header: number of localizable_params ({len(given_header)}) does not match the "
            f"expected number of params ({record.header_params})",
        )

    given_body = body or []
    expected = record.body_params
    if len(given_body) != len(expected):
        raise GraphError(
            132000,
            f"body: number of localizable_params ({len(given_body)}) does not match the expected "
            f"number of params ({len(expected)})",
        )
    if record.named and given_body:
        names = [p.get("parameter_name") for p in given_body]
        if any(not isinstance(n, str) or not n for n in names):
            raise GraphError(132012, "body: parameter_name is required for templates with named parameters")
        if set(names) != set(expected):
            raise GraphError(
                132000,
                f"body: parameter names ({', '.join(sorted(map(str, names)))}) do not match the "
                f"expected parameter names ({', '.join(sorted(expected))})",
            )

    payloads: dict[int, str] = {}
    for index, spec in enumerate(record.buttons):
        params = buttons.get(index)
        if spec["dynamic"] and not params:
            raise GraphError(
                132000,
                f"button: number of localizable_params (0) does not match the expected number of "
                f"params (1) for button {index}",
            )
        if params and spec["type"] == "QUICK_REPLY":
            payload = params[0].get("payload", params[0].get("text"))
            if payload is not None:
                payloads[index] = str(payload)
    return record, payloads


# --------------------------------------------------------------------------------------------
# Sends


@dataclass(slots=True)
class ValidatedSend:
    """What the emulator needs to know about an accepted send."""

    to: str
    wa_id: str
    type: str
    callback_data: str | None
    template: TemplateRecord | None = None
    button_payloads: dict[int, str] | None = None


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _check_media(mtype: str, obj: dict[str, Any]) -> None:
    media_id = obj.get("id")
    link = obj.get("link")
    if media_id is None and link is None:
        raise GraphError(131008, f"Please specify one of id or link for {mtype}.")
    if media_id is not None and link is not None:
        raise GraphError(131009, f"Only one of {mtype}['id'] or {mtype}['link'] may be given.")
    if link is not None and (not isinstance(link, str) or not link.startswith(("http://", "https://"))):
        raise GraphError(131009, f"Param {mtype}['link'] must be an http(s) URL.")
    if media_id is not None and not _text(media_id):
        raise GraphError(131009, f"Param {mtype}['id'] must be a non-empty string.")
    caption = obj.get("caption")
    if caption is not None:
        if mtype not in _CAPTIONED:
            raise GraphError(131009, f"Param {mtype}['caption'] is not supported for {mtype}.")
        if not isinstance(caption, str) or len(caption) > CAPTION_MAX:
            raise GraphError(100, f"Param {mtype}['caption'] must be at most {CAPTION_MAX} characters long.")


def _check_interactive(obj: dict[str, Any]) -> None:
    itype = obj.get("type")
    if itype is None:
        raise GraphError(131008, "The parameter interactive['type'] is required.")
    if itype not in INTERACTIVE_TYPES:
        raise GraphError(131009, f"Param interactive['type'] is not valid - got \"{itype}\".")
    body = obj.get("body")
    if itype in _INTERACTIVE_NEEDS_BODY:
        if not isinstance(body, dict) or not _text(body.get("text")):
            raise GraphError(131008, "The parameter interactive['body']['text'] is required.")
    action = obj.get("action")
    if not isinstance(action, dict):
        raise GraphError(131008, "The parameter interactive['action'] is required.")
    if itype == "button":
        if len(body["text"]) > 1024:  # type: ignore[index]
            raise GraphError(
                131009, "Param interactive['body']['text'] must be at most 1024 characters long."
            )
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise GraphError(131009, "Param interactive['action']['buttons'] must have 1 to 3 buttons.")
        ids = set()
        for i, button in enumerate(buttons):
            reply = button.get("reply") if isinstance(button, dict) else None
            if not isinstance(reply, dict) or not _text(reply.get("id")) or not _text(reply.get("title")):
                raise GraphError(
                    131008,
                    f"The parameter interactive['action']['buttons'][{i}]['reply'] id and title are required.",
                )
            if len(reply["id"]) > 256 or len(reply["title"]) > 20:
                raise GraphError(131009, f"Button {i}: id at most 256 and title at most 20 characters.")
            if reply["id"] in ids:
                raise GraphError(131009, "Button ids must be unique.")
            ids.add(reply["id"])
    elif itype == "list":
        if not _text(action.get("button")) or len(action["button"]) > 20:
            raise GraphError(
                131009, "Param interactive['action']['button'] is required, at most 20 characters."
            )
        sections = action.get("sections")
        if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
            raise GraphError(131009, "Param interactive['action']['sections'] must have 1 to 10 sections.")
        rows = 0
        for section in sections:
            section_rows = section.get("rows") if isinstance(section, dict) else None
            if not isinstance(section_rows, list) or not section_rows:
                raise GraphError(131009, "Each section needs rows.")
            for row in section_rows:
                if not isinstance(row, dict) or not _text(row.get("id")) or not _text(row.get("title")):
                    raise GraphError(131008, "Each row needs an id and a title.")
                if (
                    len(row["id"]) > 200
                    or len(row["title"]) > 24
                    or len(str(row.get("description", ""))) > 72
                ):
                    raise GraphError(131009, "Row id ≤ 200, title ≤ 24, description ≤ 72 characters.")
                rows += 1
        if rows > 10:
            raise GraphError(131009, "A list message has at most 10 rows.")
    elif itype == "cta_url":
        params = action.get("parameters")
        if action.get("name") != "cta_url" or not isinstance(params, dict):
            raise GraphError(131008, "The parameter interactive['action']['parameters'] is required.")
        if not _text(params.get("display_text")) or len(params["display_text"]) > 20:
            raise GraphError(131009, "Param display_text is required, at most 20 characters.")
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise GraphError(131009, "Param url must be an http(s) URL.")
    elif itype == "flow":
        params = action.get("parameters")
        if action.get("name") != "flow" or not isinstance(params, dict):
            raise GraphError(131008, "The parameter interactive['action']['parameters'] is required.")
        if not (params.get("flow_id") or params.get("flow_name")):
            raise GraphError(131008, "One of flow_id or flow_name is required.")


def validate_send(body: Any, templates: Mapping[tuple[str, str], TemplateRecord]) -> ValidatedSend | None:
    """Validate a ``POST /<PHONE_NUMBER_ID>/messages`` body.

    Returns ``None`` for a mark-as-read request, else what was accepted; raises
    :class:`GraphError` with Meta's code otherwise.
    """
    if not isinstance(body, dict):
        raise GraphError(100, "Request body must be a JSON object.")
    product = body.get("messaging_product")
    if product is None:
        raise GraphError(
            100,
            "The parameter messaging_product is required.",
            message="(#100) The parameter messaging_product is required.",
        )
    if product != "whatsapp":
        raise GraphError(
            100,
            f'Param messaging_product must be one of {{WHATSAPP}} - got "{product}".',
            message=f'(#100) Param messaging_product must be one of {{WHATSAPP}} - got "{product}".',
        )
    if "status" in body:
        if body["status"] != "read":
            raise GraphError(100, f'Param status must be one of {{READ}} - got "{body["status"]}".')
        if not _text(body.get("message_id")):
            raise GraphError(131008, "The parameter message_id is required.")
        return None

    to = body.get("to")
    if to is None or to == "":
        raise GraphError(131008, "The parameter to is required.")
    if not isinstance(to, str):
        raise GraphError(131009, "Param to must be a string.")
    recipient_type = body.get("recipient_type", "individual")
    if recipient_type == "individual":
        wa_id = phone_digits(to)
        if wa_id is None:
            raise GraphError(131009, f'Param to is not a valid phone number - got "{to}".')
    elif recipient_type == "group":
        wa_id = to
    else:
        raise GraphError(
            100, f'Param recipient_type must be one of {{INDIVIDUAL, GROUP}} - got "{recipient_type}".'
        )

    mtype = body.get("type", "text")
    if mtype not in _MESSAGE_TYPE_SET:
        raise GraphError(
            100,
            f'Param type must be one of {{{", ".join(t.upper() for t in MESSAGE_TYPES)}}} - got "{mtype}".',
        )
    obj = body.get(mtype)
    if obj is None:
        raise GraphError(131008, f"The parameter {mtype} is required.")

    callback_data = body.get("biz_opaque_callback_data")
    if callback_data is not None and (
        not isinstance(callback_data, str) or len(callback_data) > CALLBACK_DATA_MAX
    ):
        raise GraphError(
            131009,
            f"Param biz_opaque_callback_data must be a string of at most {CALLBACK_DATA_MAX} characters.",
        )
    context = body.get("context")
    if context is not None and (not isinstance(context, dict) or not _text(context.get("message_id"))):
        raise GraphError(131008, "The parameter context['message_id'] is required.")

    if mtype == "text":
        if not isinstance(obj, dict):
            raise GraphError(100, "Param text must be an object.")
        text = obj.get("body")
        if not _text(text):
            raise GraphError(100, "The parameter text['body'] is required.")
        if len(text) > TEXT_BODY_MAX:
            raise GraphError(100, f"Param text['body'] must be at most {TEXT_BODY_MAX} characters long.")
        return ValidatedSend(to, wa_id, mtype, callback_data)

    if mtype == "contacts":
        if not isinstance(obj, list) or not obj:
            raise GraphError(100, "Param contacts must be a non-empty array.")
        for i, contact in enumerate(obj):
            name = contact.get("name") if isinstance(contact, dict) else None
            if not isinstance(name, dict) or not _text(name.get("formatted_name")):
                raise GraphError(100, f"The parameter contacts[{i}]['name']['formatted_name'] is required.")
        return ValidatedSend(to, wa_id, mtype, callback_data)

    if not isinstance(obj, dict):
        raise GraphError(100, f"Param {mtype} must be an object.")

    if mtype == "template":
        record, payloads = check_template_send(obj, templates)
        return ValidatedSend(to, wa_id, mtype, callback_data, record, payloads)
    if mtype in MEDIA_TYPES:
        _check_media(mtype, obj)
    elif mtype == "interactive":
        _check_interactive(obj)
    elif mtype == "location":
        lat, lng = obj.get("latitude"), obj.get("longitude")
        if lat is None or lng is None:
            raise GraphError(
                100, "The parameters location['latitude'] and location['longitude'] are required."
            )
        try:
            lat_f, lng_f = float(lat), float(lng)
        except (TypeError, ValueError):
            raise GraphError(131009, "Param location latitude/longitude must be numbers.") from None
        if not (-90 <= lat_f <= 90 and -180 <= lng_f <= 180):
            raise GraphError(131009, "Param location latitude/longitude out of range.")
    elif mtype == "reaction":
        if not _text(obj.get("message_id")):
            raise GraphError(100, "The parameter reaction['message_id'] is required.")
        if not isinstance(obj.get("emoji", ""), str):
            raise GraphError(131009, "Param reaction['emoji'] must be a string.")
    return ValidatedSend(to, wa_id, mtype, callback_data)


def reply_choices(body: dict[str, Any], sent: ValidatedSend) -> list[dict[str, Any]]:
    """The interactive answers a customer could give to this message (empty: free text)."""
    if sent.template is not None:
        choices = []
        for index, spec in enumerate(sent.template.buttons):
            if spec["type"] == "QUICK_REPLY":
                payload = (sent.button_payloads or {}).get(index, spec["text"])
                choices.append({"type": "button", "button": {"payload": payload, "text": spec["text"]}})
        return choices
    if sent.type != "interactive":
        return []
    interactive = body["interactive"]
    action = interactive.get("action", {})
    if interactive.get("type") == "button":
        return [
            {
                "type": "interactive",
                "interactive": {
                    "type": "button_reply",
                    "button_reply": {"id": b["reply"]["id"], "title": b["reply"]["title"]},
                },
            }
            for b in action.get("buttons", [])
        ]
    if interactive.get("type") == "list":
        choices = []
        for section in action.get("sections", []):
            for row in section.get("rows", []):
                reply = {"id": row["id"], "title": row["title"]}
                if row.get("description"):
                    reply["description"] = row["description"]
                choices.append(
                    {"type": "interactive", "interactive": {"type": "list_reply", "list_reply": reply}}
                )
        return choices
    return []
