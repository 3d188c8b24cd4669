"""The Meta-compatible endpoints: ``POST /graph/<version>/<phone_number_id>/messages`` and
``POST /graph/<version>/<phone_number_id>/media``.

A client written for WhatsApp's Cloud API works unchanged when pointed at ``/graph/`` with a
Parley API key as ``Authorization: Bearer``: it sends Meta's bodies (protocol.md A2), gets
Meta's answers (A3) and Meta's error envelope (A4). ``<version>`` is any ``v<major>.<minor>``
(v18.0 … v25.0 in practice; the body does not change between them). ``<phone_number_id>`` is
the provider's phone number id (what a Cloud API client already has) or Parley's id of the
number, among the key's tenant's numbers only.

Message ids: a send answers ``wamid.`` + base64url(``parley:<message id>``) at once
(``meta_format.message_wamid``); the same id names the message in Meta-format webhooks and is
accepted back in ``context.message_id``, ``reaction.message_id`` and mark-as-read bodies, as
are real WhatsApp ids and Parley ids. Template sends add ``"message_status": "accepted"``.

Mark as read (``{"messaging_product", "status": "read", "message_id", "typing_indicator"?}``)
answers ``{"success": true}``. Parley has no service that sends read receipts to providers, so
it records the read in Parley only: the conversation's unread count drops to the number of
customer messages that arrived after the one marked (Meta's rule: a message and everything
before it are read). The typing indicator is accepted and not shown to the customer.

Without ``type`` a body is text, as on Meta, unless it carries exactly one other type object
(``"interactive": {…}``), which then names the type.

Recipients: ``to`` (a phone number), or ``recipient``, a business-scoped user id from this
workspace's Meta-format webhooks (``meta_format.contact_user_id``), which is what Cloud API
clients reply to. Not supported: group sends (``recipient_type: "group"``).
``biz_opaque_callback_data`` is accepted and not echoed (Parley puts its own message id there
for the provider).

Errors, always ``{"error": {"message": "(#<code>) <title>", "type", "code", "error_data":
{"messaging_product": "whatsapp", "details"}, "fbtrace_id"}}``:

====================================================  ======  ====  ===========================
Parley condition                                      code    HTTP  Meta's meaning
====================================================  ======  ====  ===========================
no key, unknown key, revoked key, disabled workspace  190     401   access token invalid
per-key rate limit                                    130429  429   rate limit hit (a)
unknown or another tenant's number, unknown path      100/33  400   object does not exist (b)
``phone_number_not_found`` (the number is disabled)   100/33  400   object does not exist
``window_closed``                                     131047  400   re-engagement message
``template_not_approved`` (absent or not approved)    132001  404   template does not exist
``template_parameters_mismatch``                      132000  400   parameter count mismatch
``contact_opted_out``                                 131050  400   user stopped messages (c)
``invalid_recipient`` (``to`` not a phone number)     100     400   invalid parameter
missing ``messaging_product``, ``to`` or type object  131008  400   required parameter missing
missing ``file`` on /media                            131008  400   required parameter missing
bad value: ``messaging_product``, ``type``, type      131009  400   parameter value not valid
object (d), ``context.message_id``, group sends
``invalid_message`` from the send service             131009  400   parameter value not valid
``recipient`` that is not one of this tenant's users  131062  400   BSUID recipient unsupported
``invalid_media`` (upload or media id not usable)     131053  400   media upload error
body not JSON, not an object or too big; other        100     400   invalid parameter
unexpected server error (logged with its traceback)   131000  500   something went wrong
====================================================  ======  ====  ===========================

(a) Meta answers 130429 with HTTP 400; Parley uses 429 and ``Retry-After`` because HTTP
clients and their retry helpers back off on 429 and would treat a 400 as final.
(b) ``type: GraphMethodException``, ``error_subcode: 33`` and Meta's "Unsupported post
request. Object with ID '…' does not exist …" message, whether the id is unknown or another
tenant's: the answer never tells them apart.
(c) Parley's opt-out stops every message, not only marketing; 131050 is the code a Cloud API
client already branches on for "this user does not want your messages".
(d) Anything wrong inside the object named after the type, missing fields included (text
without body, media without id or link, a list without rows, …): Meta's "Parameter value is
not valid"; 131008 is kept for the top-level fields every send needs.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.db.models.functions import Least
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from apps.api.parsers import StrictJSONParser
from apps.contacts.models import Contact
from apps.conversations.models import Conversation, Message
from apps.conversations.services.media import media_upload
from apps.conversations.services.send import SENDABLE_TYPES, message_send
from apps.core.exceptions import ApplicationError
from apps.phone_numbers.models import PhoneNumber

from .meta_format import as_id, contact_id_from_user_id, message_id_from_wamid, message_wamid
from .views import TenantApiView

logger = logging.getLogger(__name__)

MESSAGING_PRODUCT = "whatsapp"
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
TEXT_MAX_LENGTH = 4096
CALLBACK_DATA_MAX_LENGTH = 512
INTERACTIVE_TYPES = frozenset({
    "button", "list", "cta_url", "flow", "product", "product_list", "catalog_message", "order_details",
    "order_status", "location_request_message", "address_message", "voice_call", "call_permission_request",
})
MAX_REPLY_BUTTONS = 3
MAX_LIST_SECTIONS = 10
MAX_LIST_ROWS = 10

# Meta's titles (the part after "(#code)") for the codes Parley answers with.
TITLES = {
    1: "An unknown error occurred",
    10: "Application does not have permission for this action",
    100: "Invalid parameter",
    190: "Invalid OAuth access token",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131008: "Required parameter is missing",
    131009: "Parameter value is not valid",
    131047: "Re-engagement message",
    131050: "Unable to deliver the message: the recipient has stopped messages from this business",
    131053: "Media upload error",
    131062: "Business-scoped user ID recipients are not supported",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
}

# Parley's error codes (design.md) -> (Meta code, HTTP status).
APPLICATION_CODES = {
    "window_closed": (131047, 400),
    "template_not_approved": (132001, 404),
    "template_parameters_mismatch": (132000, 400),
    "contact_opted_out": (131050, 400),
    "invalid_recipient": (100, 400),
    "invalid_message": (131009, 400),
    "invalid_media": (131053, 400),
}


def fbtrace_id() -> str:
    return "A" + secrets.token_urlsafe(16)[:22]


@dataclass(eq=False)
class GraphError(Exception):
    """An answer in Meta's error envelope."""

    code: int
    details: str
    http_status: int = 400
    title: str = ""
    subcode: int | None = None
    type: str = "OAuthException"
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.details)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message or f"(#{self.code}) {self.title or TITLES.get(self.code, TITLES[1])}",
            "type": self.type,
            "code": self.code,
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["error_data"] = {"messaging_product": MESSAGING_PRODUCT, "details": self.details}
        error["fbtrace_id"] = fbtrace_id()
        return {"error": error}

    def response(self) -> Response:
        return Response(self.body(), status=self.http_status, headers=self.headers or None)


def unsupported_request(method: str, object_id: str, details: str = "") -> GraphError:
    """Meta's answer for an object that does not exist or is not the caller's."""
    return GraphError(
        code=100, subcode=33, type="GraphMethodException", http_status=400,
        message=(f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, cannot be "
                 "loaded due to missing permissions, or does not support this operation. Please read the Graph "
                 "API documentation at https://developers.facebook.com/docs/graph-api"),
        details=details or f"There is no phone number with id {object_id!r} for this API key.",
    )


def missing(name: str) -> GraphError:
    return GraphError(code=131008, details=f"The parameter {name} is required.")


def invalid(details: str) -> GraphError:
    return GraphError(code=131009, details=details)


def _from_application_error(exc: ApplicationError, context: dict) -> GraphError:
    if exc.code == "phone_number_not_found":
        view = context.get("view")
        return unsupported_request(getattr(context.get("request"), "method", "POST"),
                                   str(getattr(view, "kwargs", {}).get("phone_number_id", "")), details=exc.message)
    code, status = APPLICATION_CODES.get(exc.code, (100, 400))
    return GraphError(code=code, http_status=status, details=exc.message)


def _from_api_exception(exc: exceptions.APIException, context: dict) -> GraphError:
    request = context.get("request")
    method = getattr(request, "method", "POST")
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        headers = {"WWW-Authenticate": exc.auth_header} if getattr(exc, "auth_header", None) else {}
        return GraphError(code=190, http_status=401, details=str(exc.detail), headers=headers)
    if isinstance(exc, exceptions.Throttled):
        wait = max(1, math.ceil(exc.wait or 1))
        return GraphError(code=130429, http_status=429, headers={"Retry-After": str(wait)},
                          details=f"Too many requests for this API key; retry in {wait} s.")
    if isinstance(exc, exceptions.NotFound | exceptions.MethodNotAllowed):
        view = context.get("view")
        object_id = str(getattr(view, "kwargs", {}).get("phone_number_id") or getattr(request, "path", ""))
        error = unsupported_request(method, object_id)
        if isinstance(exc, exceptions.MethodNotAllowed):
            error.details = f"{method} is not supported here; use POST."
            error.headers = {"Allow": "POST, OPTIONS"}
        return error
    if isinstance(exc, exceptions.PermissionDenied):
        return GraphError(code=10, http_status=403, details=str(exc.detail))
    if isinstance(exc, exceptions.ParseError):
        return GraphError(code=100, details=f"The request body could not be read: {exc.detail}")
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return GraphError(code=100, details=f"{exc.detail} Send application/json (or multipart/form-data to /media).")
    return GraphError(code=100, http_status=exc.status_code if exc.status_code < 500 else 400,
                      details=str(exc.detail))


def graph_exception_handler(exc: Exception, context: dict) -> Response:
    """Every error of the ``/graph/`` endpoints in Meta's envelope."""
    if isinstance(exc, GraphError):
        return exc.response()
    if isinstance(exc, ApplicationError):
        return _from_application_error(exc, context).response()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc))
    if isinstance(exc, SuspiciousOperation):  # e.g. a body over DATA_UPLOAD_MAX_MEMORY_SIZE
        return GraphError(code=100, details=f"The request was refused: {exc}").response()
    if isinstance(exc, exceptions.APIException):
        return _from_api_exception(exc, context).response()
    # A bug: record it with its traceback like Django's own 500 handling does, and answer like
    # Meta does when something breaks on its side, so the client's error path handles it.
    logger.exception("Unhandled error in %s", getattr(context.get("request"), "path", "the Graph API"))
    return GraphError(code=131000, http_status=500, details="An unexpected error occurred; it has been logged.",
                      title=TITLES[131000]).response()


# --- request reading ----------------------------------------------------------------------

def _plain(data: Any) -> dict[str, Any]:
    """The body as a dict. Meta also takes form-encoded bodies whose objects are JSON strings
    (``text={"body": "hi"}``); those are decoded here."""
    if hasattr(data, "getlist") and hasattr(data, "keys"):
        plain: dict[str, Any] = {}
        for key in data.keys():
            value = data.get(key)
            if isinstance(value, str) and value[:1] in "{[":
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise invalid(f"The parameter {key} is not valid JSON: {exc.msg}.") from exc
            plain[key] = value
        return plain
    if not isinstance(data, dict):
        raise GraphError(code=100, details="The request body must be a JSON object.")
    return data


def _check_messaging_product(body: dict[str, Any]) -> None:
    product = body.get("messaging_product")
    if product in (None, ""):
        raise missing("messaging_product")
    if product != MESSAGING_PRODUCT:
        raise invalid(f"messaging_product must be {MESSAGING_PRODUCT!r}, not {product!r}.")


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _check_text(obj: dict[str, Any]) -> None:
    body = obj.get("body")
    if not _text(body):
        raise invalid("text.body is required: the message text, 1 to 4096 characters.")
    if len(body) > TEXT_MAX_LENGTH:
        raise invalid(f"text.body is {len(body)} characters long; the limit is {TEXT_MAX_LENGTH}.")
    if "preview_url" in obj and not isinstance(obj["preview_url"], bool):
        raise invalid("text.preview_url must be true or false.")


def _check_media(type: str, obj: dict[str, Any]) -> None:
    has_id = obj.get("id") not in (None, "")
    link = obj.get("link")
    if has_id == (link not in (None, "")):
        raise invalid(f"{type} needs exactly one of id (an uploaded media id) or link (an http(s) URL).")
    if not has_id and not (isinstance(link, str) and link.lower().startswith(("http://", "https://"))):
        raise invalid(f"{type}.link must be an http:// or https:// URL.")
    if has_id and (not isinstance(obj["id"], str | int) or isinstance(obj["id"], bool)):
        raise invalid(f"{type}.id must be a media id string.")
    if has_id and str(obj["id"]).strip().isdigit() and as_id(obj["id"]) is None:
        raise invalid(f"{type}.id {obj['id']!r} is not a media id.")


def _check_location(obj: dict[str, Any]) -> None:
    for name, bound in (("latitude", 90), ("longitude", 180)):
        value = obj.get(name)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                value = None
        if not isinstance(value, int | float) or isinstance(value, bool) or abs(value) > bound:
            raise invalid(f"location.{name} is required: a number between -{bound} and {bound}.")


def _check_contacts(cards: list[Any]) -> None:
    if not cards:
        raise invalid("contacts must list at least one contact card.")
    for index, card in enumerate(cards):
        name = card.get("name") if isinstance(card, dict) else None
        if not isinstance(name, dict) or not _text(name.get("formatted_name")):
            raise invalid(f"contacts[{index}].name.formatted_name is required.")


def _check_interactive(obj: dict[str, Any]) -> None:
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in INTERACTIVE_TYPES:
        raise invalid(f"interactive.type must be one of {', '.join(sorted(INTERACTIVE_TYPES))}; got {kind!r}.")
    action = obj.get("action")
    if not isinstance(action, dict):
        raise invalid("interactive.action is required: an object.")
    for part in ("header", "body", "footer"):
        if part in obj and not isinstance(obj[part], dict):
            raise invalid(f"interactive.{part} must be an object.")
    if kind in ("button", "list") and not _text(obj.get("body", {}).get("text")):
        raise invalid(f"interactive.body.text is required for a {kind} message.")
    if kind == "button":
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_REPLY_BUTTONS:
            raise invalid(f"interactive.action.buttons must list 1 to {MAX_REPLY_BUTTONS} reply buttons.")
        for index, button in enumerate(buttons):
            reply = button.get("reply") if isinstance(button, dict) else None
            if not isinstance(reply, dict) or not _text(str(reply.get("id") or "")) or not _text(reply.get("title")):
                raise invalid(f"interactive.action.buttons[{index}] needs reply.id and reply.title.")
    elif kind == "list":
        sections = action.get("sections")
        if not _text(action.get("button")):
            raise invalid("interactive.action.button is required: the text of the list's button.")
        if not isinstance(sections, list) or not 1 <= len(sections) <= MAX_LIST_SECTIONS:
            raise invalid(f"interactive.action.sections must list 1 to {MAX_LIST_SECTIONS} sections.")
        rows: list[Any] = []
        for index, section in enumerate(sections):
            if not isinstance(section, dict) or not isinstance(section.get("rows"), list):
                raise invalid(f"interactive.action.sections[{index}] needs a list of rows.")
            rows += section["rows"]
        if not 1 <= len(rows) <= MAX_LIST_ROWS:
            raise invalid(f"interactive.action.sections must hold 1 to {MAX_LIST_ROWS} rows in all.")
        if any(not isinstance(row, dict) or not _text(str(row.get("id") or "")) or not _text(row.get("title"))
               for row in rows):
            raise invalid("every row of interactive.action.sections needs an id and a title.")


def _check_template(obj: dict[str, Any]) -> None:
    if not _text(obj.get("name")):
        raise invalid("template.name is required.")
    language = obj.get("language")
    if not isinstance(language, dict) or not _text(language.get("code")):
        raise invalid("template.language.code is required.")
    components = obj.get("components", [])
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise invalid("template.components must be a list of objects.")
    for index, component in enumerate(components):
        if not _text(component.get("type")):
            raise invalid(f"template.components[{index}].type is required (header, body or button).")
        parameters = component.get("parameters", [])
        if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
            raise invalid(f"template.components[{index}].parameters must be a list of objects.")


def _check_reaction(obj: dict[str, Any]) -> None:
    if not _text(obj.get("message_id")):
        raise invalid("reaction.message_id is required.")
    if not isinstance(obj.get("emoji", ""), str):
        raise invalid("reaction.emoji must be a string (empty to remove a reaction).")


def check_type_object(type: str, obj: Any) -> None:
    """Refuse what Meta refuses synchronously in the message object named after ``type``."""
    if type == "contacts":
        if not isinstance(obj, list):
            raise invalid("contacts must be a list of contact cards.")
        _check_contacts(obj)
        return
    if not isinstance(obj, dict):
        raise invalid(f"{type} must be an object.")
    if type == "text":
        _check_text(obj)
    elif type in MEDIA_TYPES:
        _check_media(type, obj)
    elif type == "location":
        _check_location(obj)
    elif type == "interactive":
        _check_interactive(obj)
    elif type == "template":
        _check_template(obj)
    elif type == "reaction":
        _check_reaction(obj)


# --- lookups ------------------------------------------------------------------------------

def number_for_path(*, tenant, path_id: str, method: str) -> PhoneNumber:
    """The key's tenant's number named in the URL: the provider's id first, then Parley's."""
    numbers = PhoneNumber.objects.for_tenant(tenant)
    number = numbers.filter(phone_number_id=path_id).first() if path_id else None
    if number is None and as_id(path_id) is not None:
        number = numbers.filter(pk=as_id(path_id)).first()
    if number is None:
        raise unsupported_request(method, path_id)
    return number


def message_for_reference(*, tenant, number: PhoneNumber, reference: Any) -> Message | None:
    """The message of ``number`` that ``reference`` names: an id this endpoint answered with, a
    WhatsApp or provider message id, or a Parley message id."""
    reference = str(reference or "").strip()
    if not reference:
        return None
    messages = Message.objects.for_tenant(tenant).filter(
        phone_number=number, direction__in=(Message.Direction.INBOUND, Message.Direction.OUTBOUND))
    parley_id = message_id_from_wamid(reference)
    if parley_id is not None:
        return messages.filter(pk=parley_id).first()
    found = (messages.filter(wa_message_id=reference).first()
             or messages.filter(provider_message_id=reference).first())
    if found is None and as_id(reference) is not None:
        found = messages.filter(pk=as_id(reference)).first()
    return found


@transaction.atomic
def conversation_read_up_to(*, tenant, message: Message) -> None:
    """Record that the business read ``message`` and everything before it: the conversation's
    unread count keeps only the customer messages that came after it."""
    newer = Message.objects.for_tenant(tenant).filter(
        conversation_id=message.conversation_id, direction=Message.Direction.INBOUND, pk__gt=message.pk).count()
    Conversation.objects.for_tenant(tenant).filter(pk=message.conversation_id).update(
        unread_count=Least("unread_count", newer))


# --- views --------------------------------------------------------------------------------

class GraphApiView(TenantApiView):
    """Key authentication, the per-key throttle and tenant scope of the REST API, with Meta's
    error envelope for every error."""

    def get_exception_handler(self):
        return graph_exception_handler


GRAPH_ERRORS = {code: OpenApiTypes.OBJECT for code in (400, 401, 404, 429)}


class GraphMessagesApi(GraphApiView):
    parser_classes = [StrictJSONParser, FormParser, MultiPartParser]

    @extend_schema(
        tags=["graph"], operation_id="graph_messages_send", request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, **GRAPH_ERRORS},
        summary="Send a message, or mark one as read, with Meta's Cloud API body",
        description="Meta's request body and answer (protocol.md A2, A3); errors in Meta's envelope.",
        examples=[OpenApiExample("text", request_only=True, value={
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+16505551234",
            "type": "text", "text": {"preview_url": False, "body": "Hello"}})],
    )
    def post(self, request, version: str, phone_number_id: str):
        number = number_for_path(tenant=self.tenant, path_id=phone_number_id, method=request.method)
        body = _plain(request.data)
        _check_messaging_product(body)
        if "status" in body and "to" not in body:
            return self._mark_read(number, body)
        return self._send(number, body)

    def _mark_read(self, number: PhoneNumber, body: dict[str, Any]) -> Response:
        if body.get("status") != "read":
            raise invalid(f"status must be 'read' to mark a message as read, not {body.get('status')!r}.")
        if body.get("message_id") in (None, ""):
            raise missing("message_id")
        message = message_for_reference(tenant=self.tenant, number=number, reference=body["message_id"])
        if message is None or message.direction != Message.Direction.INBOUND:
            raise invalid(f"message_id {body['message_id']!r} is not a message this number received.")
        conversation_read_up_to(tenant=self.tenant, message=message)
        return Response({"success": True})

    def _recipient(self, body: dict[str, Any]) -> tuple[str, Contact | None]:
        """What the body says to send to (as given) and, for a user id, the contact it names."""
        recipient_type = body.get("recipient_type", "individual")
        if recipient_type == "group":
            raise invalid("Parley does not send to WhatsApp groups (recipient_type 'group').")
        if recipient_type != "individual":
            raise invalid(f"recipient_type must be 'individual', not {recipient_type!r}.")
        to = body.get("to")
        if to in (None, ""):
            user_id = body.get("recipient")
            if user_id in (None, ""):
                raise missing("to")
            contact_id = contact_id_from_user_id(user_id)
            contact = (Contact.objects.for_tenant(self.tenant).filter(pk=contact_id).first()
                       if contact_id is not None else None)
            if contact is None:
                raise GraphError(code=131062, details=f"recipient {user_id!r} is not a user id from this "
                                                      "workspace's webhooks; send to a phone number (to).")
            return str(user_id), contact
        if not isinstance(to, str | int) or isinstance(to, bool):
            raise invalid("to must be the recipient's phone number.")
        return str(to), None

    def _send(self, number: PhoneNumber, body: dict[str, Any]) -> Response:
        to, contact = self._recipient(body)
        type = body.get("type") or self._implied_type(body)
        if not isinstance(type, str) or type not in SENDABLE_TYPES:
            raise invalid(f"type must be one of {', '.join(SENDABLE_TYPES)}; got {type!r}.")
        if type not in body:
            raise missing(type)
        content = body[type]
        check_type_object(type, content)
        callback_data = body.get("biz_opaque_callback_data")
        if callback_data is not None and (not isinstance(callback_data, str)
                                          or len(callback_data) > CALLBACK_DATA_MAX_LENGTH):
            raise invalid(f"biz_opaque_callback_data must be a string of at most {CALLBACK_DATA_MAX_LENGTH} "
                          "characters.")
        reply_to = self._reply_to(number, body.get("context"))
        if type == "reaction":
            content = self._reaction(number, content)
        message = message_send(tenant=self.tenant, to=contact.wa_id if contact else to, type=type, content=content,
                               phone_number=number, reply_to=reply_to, contact=contact)
        sent: dict[str, Any] = {"id": message_wamid(message.pk)}
        if type == "template":
            sent["message_status"] = "accepted"
        recipient = {"input": to, "wa_id": message.contact.wa_id}
        if contact is not None:
            recipient["user_id"] = to
        return Response({"messaging_product": MESSAGING_PRODUCT, "contacts": [recipient], "messages": [sent]})

    @staticmethod
    def _implied_type(body: dict[str, Any]) -> str:
        """Without ``type``, Meta sends text; a body that carries exactly one other type object
        (one of Meta's own examples omits ``type`` beside ``interactive``) is that type."""
        present = [name for name in SENDABLE_TYPES if name in body]
        return present[0] if len(present) == 1 else "text"

    def _reply_to(self, number: PhoneNumber, context: Any) -> Message | None:
        if context is None:
            return None
        if not isinstance(context, dict) or context.get("message_id") in (None, ""):
            raise invalid("context must be an object with the message_id of the message replied to.")
        quoted = message_for_reference(tenant=self.tenant, number=number, reference=context["message_id"])
        if quoted is None:
            raise invalid(f"context.message_id {context['message_id']!r} is not a message of this number.")
        return quoted

    def _reaction(self, number: PhoneNumber, content: dict[str, Any]) -> dict[str, Any]:
        """A reaction names its target by WhatsApp id; an id this endpoint gave out is replaced by
        the WhatsApp id the provider gave the message."""
        reference = str(content["message_id"])
        if message_id_from_wamid(reference) is None:
            return content
        target = message_for_reference(tenant=self.tenant, number=number, reference=reference)
        if target is None:
            raise invalid(f"reaction.message_id {reference!r} is not a message of this number.")
        whatsapp_id = target.wa_message_id or target.provider_message_id
        if not whatsapp_id:
            raise invalid(f"The message {reference} has not reached WhatsApp yet; react once it has been sent.")
        return {**content, "message_id": whatsapp_id}


class GraphMediaApi(GraphApiView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        tags=["graph"], operation_id="graph_media_upload", request={"multipart/form-data": OpenApiTypes.OBJECT},
        responses={200: OpenApiTypes.OBJECT, **GRAPH_ERRORS},
        summary="Upload a file (messaging_product=whatsapp, file, type) and get its media id",
    )
    def post(self, request, version: str, phone_number_id: str):
        number = number_for_path(tenant=self.tenant, path_id=phone_number_id, method=request.method)
        _check_messaging_product(request.data)
        upload = request.FILES.get("file")
        if upload is None:
            raise missing("file")
        mime_type = request.data.get("type") or upload.content_type
        media = media_upload(tenant=self.tenant, file=upload, filename=upload.name or "", mime_type=mime_type,
                             phone_number=number)
        return Response({"id": str(media.pk)})


@extend_schema(exclude=True)
class GraphUnknownApi(GraphApiView):
    """Any other path under ``/graph/``: Meta's "object does not exist" answer, after the key
    is checked like everywhere else."""

    def _unknown(self, request, *args, **kwargs):
        path = request.path.removeprefix("/graph/").strip("/")
        raise unsupported_request(request.method, path, details=f"There is no {request.method} /graph/{path}; "
                                  "use POST /graph/<version>/<phone_number_id>/messages or /media.")

    get = post = put = patch = delete = _unknown
