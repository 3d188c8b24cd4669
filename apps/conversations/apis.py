"""The messaging REST API: send and read messages, upload media once and reuse it, read
conversations. Thin views: validate, call one service or selector, serialize."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from apps.api.idempotency import idempotent
from apps.api.pagination import PageParams, page_body, paginate
from apps.api.views import TenantApiView
from apps.core.exceptions import ApplicationError
from apps.core.phone import InvalidPhoneNumber, normalize_wa_id

from . import statuses
from .models import Conversation, Media, Message
from .selectors import (
    MAX_ID,
    access_conversation,
    access_media,
    access_message,
    conversation_list,
    message_find_reference,
    message_list,
)
from .services import message_send, resolve_phone_number
from .services.media import MAX_MEDIA_BYTES, media_upload
from .services.send import SENDABLE_TYPES

MEDIA_MESSAGE_TYPES = ("image", "video", "audio", "document", "sticker")
CAPTIONED_TYPES = ("image", "video", "document")
INTERACTIVE_TYPES = ("button", "list", "cta_url", "flow", "product", "product_list", "catalog_message",
                     "location_request_message", "address_message", "call_permission_request", "voice_call")
INTERACTIVE_NEEDS_BODY = ("button", "list", "cta_url", "flow", "catalog_message")
TEMPLATE_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")
HTTP_URL = URLValidator(schemes=["http", "https"])
# Room for the multipart framing and the other form fields around the file itself.
UPLOAD_OVERHEAD_BYTES = 64 * 1024


# -- shared shapes -------------------------------------------------------------------------

class ErrorSerializer(serializers.Serializer):
    class ErrorDetail(serializers.Serializer):
        code = serializers.CharField(help_text="Stable machine-readable code, e.g. window_closed.")
        message = serializers.CharField()
        details = serializers.DictField()

        class Meta:
            ref_name = "ErrorDetail"

    error = ErrorDetail()

    class Meta:
        ref_name = "ErrorEnvelope"


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {400: "Invalid request (code invalid_request, field errors in details)",
                    401: "Missing, malformed or revoked API key", 404: "Not found in this workspace",
                    409: "Idempotency-Key reused with another body", 413: "File too large (invalid_media)",
                    415: "Not multipart/form-data (unsupported_media_type)",
                    422: "Refused by a send-time policy", 429: "Rate limited (Retry-After)"}
    return {code: OpenApiResponse(ErrorSerializer, description=descriptions[code]) for code in codes}


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER, {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    OpenApiParameter.HEADER, required=False,
    description="Replays the first response for the same key and body (24 h); another body gives 409.")


def _id_parameter(name: str) -> OpenApiParameter:
    return OpenApiParameter(name, int, OpenApiParameter.PATH)


# -- message type objects (Meta's shapes) ----------------------------------------------------

class TextObjectSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=4096, trim_whitespace=False)
    preview_url = serializers.BooleanField(required=False)

    class Meta:
        ref_name = "TextObject"


class MediaObjectSerializer(serializers.Serializer):
    id = serializers.CharField(required=False, max_length=128,
                               help_text="A Parley media id from POST /api/v1/media, or the provider's media id.")
    link = serializers.URLField(required=False, max_length=2000, validators=[HTTP_URL])
    caption = serializers.CharField(required=False, max_length=1024, trim_whitespace=False,
                                    help_text="image, video and document only")
    filename = serializers.CharField(required=False, max_length=255, help_text="document only")

    class Meta:
        ref_name = "MediaObject"

    def validate(self, attrs: dict) -> dict:
        if ("id" in attrs) == ("link" in attrs):
            raise serializers.ValidationError("Give exactly one of id or link.")
        return attrs


class LocationObjectSerializer(serializers.Serializer):
    latitude = serializers.FloatField(min_value=-90, max_value=90)
    longitude = serializers.FloatField(min_value=-180, max_value=180)
    name = serializers.CharField(required=False, max_length=1000)
    address = serializers.CharField(required=False, max_length=1000)

    class Meta:
        ref_name = "LocationObject"


class ReactionObjectSerializer(serializers.Serializer):
    message_id = serializers.CharField(max_length=160,
                                       help_text="The message reacted to: its wamid or its Parley id.")
    emoji = serializers.CharField(max_length=16, allow_blank=True, trim_whitespace=False,
                                  help_text="An empty string removes the reaction.")

    class Meta:
        ref_name = "ReactionObject"


class InteractiveObjectSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=INTERACTIVE_TYPES)
    header = serializers.DictField(required=False)
    body = serializers.DictField(required=False)
    footer = serializers.DictField(required=False)
    action = serializers.DictField()

    class Meta:
        ref_name = "InteractiveObject"

    def validate(self, attrs: dict) -> dict:
        kind, action, body = attrs["type"], attrs["action"], attrs.get("body") or {}
        if kind in INTERACTIVE_NEEDS_BODY and not _is_text(body.get("text")):
            raise serializers.ValidationError({"body": [f"This {kind} message needs body.text."]})
        if kind == "button":
            buttons = action.get("buttons")
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
                raise serializers.ValidationError({"action": ["action.buttons must hold 1 to 3 buttons."]})
            for button in buttons:
                reply = button.get("reply") if isinstance(button, dict) else None
                if not isinstance(reply, dict) or not _is_text(reply.get("id")) or not _is_text(reply.get("title")):
                    raise serializers.ValidationError(
                        {"action": ['Each button is {"type": "reply", "reply": {"id", "title"}}.']})
                if len(reply["title"]) > 20:
                    raise serializers.ValidationError({"action": ["A button title has at most 20 characters."]})
        elif kind == "list":
            sections = action.get("sections")
            if not _is_text(action.get("button")) or not isinstance(sections, list) or not sections:
                raise serializers.ValidationError({"action": ["A list needs action.button and action.sections."]})
            for section in sections:
                rows = section.get("rows") if isinstance(section, dict) else None
                if not isinstance(rows, list) or not rows or not all(
                        isinstance(row, dict) and _is_text(row.get("id")) and _is_text(row.get("title"))
                        for row in rows):
                    raise serializers.ValidationError({"action": ["Each section needs rows with an id and a title."]})
        elif kind == "cta_url":
            parameters = action.get("parameters")
            if (action.get("name") != "cta_url" or not isinstance(parameters, dict)
                    or not _is_text(parameters.get("display_text")) or not _is_http_url(parameters.get("url"))):
                raise serializers.ValidationError(
                    {"action": ['A cta_url needs action {"name": "cta_url", "parameters": {"display_text", "url"}}.']})
        return attrs


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(key) or _contains_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        HTTP_URL(value)
    except DjangoValidationError:
        return False
    return True


@extend_schema_field({
    "oneOf": [
        {"type": "string", "example": "en"},
        {"type": "object", "properties": {"code": {"type": "string", "example": "en_US"},
                                          "policy": {"type": "string", "example": "deterministic"}},
         "required": ["code"]},
    ],
})
class TemplateLanguageField(serializers.Field):
    """``"en"`` or Meta's ``{"code": "en"}``; always ``{"code": …}`` once validated."""

    def to_internal_value(self, data: Any) -> dict:
        language = dict(data) if isinstance(data, dict) else {"code": data}
        code = language.get("code")
        if not isinstance(code, str) or not TEMPLATE_LANGUAGE.match(code.strip()):
            raise serializers.ValidationError('Give a language code such as "en" or "en_US", or {"code": "en"}.')
        language["code"] = code.strip()
        return language

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({
    "oneOf": [
        {"type": "array", "items": {"type": "string"}, "example": ["Ada", "#1234"],
         "description": "positional: {{1}}, {{2}}, … in order"},
        {"type": "object", "additionalProperties": {"type": "string"}, "example": {"first_name": "Ada"},
         "description": "named: {{first_name}}"},
    ],
})
class TemplateVariablesField(serializers.Field):
    """The body's values: a list (positional) or an object (named), as text."""

    def to_internal_value(self, data: Any) -> list | dict:
        def text(value: Any) -> str:
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise serializers.ValidationError("Each variable is a string or a number.")
            return str(value)

        if isinstance(data, list):
            return [text(value) for value in data]
        if isinstance(data, dict):
            if not all(isinstance(key, str) and key.strip() for key in data):
                raise serializers.ValidationError("Variable names must be non-empty strings.")
            return {key.strip(): text(value) for key, value in data.items()}
        raise serializers.ValidationError("variables is a list (positional) or an object (named).")

    def to_representation(self, value: Any) -> Any:
        return value


class TemplateObjectSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=512)
    language = TemplateLanguageField()
    components = serializers.ListField(child=serializers.DictField(), required=False,
                                       help_text="Meta's send components (header, body, button parameters).")
    variables = TemplateVariablesField(required=False,
                                       help_text="Shortcut for the body's parameters: a list or an object.")

    class Meta:
        ref_name = "TemplateObject"

    def validate(self, attrs: dict) -> dict:
        """Meta's template object: ``variables`` become the body component's parameters."""
        components = [dict(component) for component in attrs.get("components") or []]
        variables = attrs.get("variables")
        if variables is not None:
            if any(str(component.get("type", "")).lower() == "body" for component in components):
                raise serializers.ValidationError(
                    {"variables": ["Give the body's values either as variables or as a body component, not both."]})
            if isinstance(variables, list):
                parameters = [{"type": "text", "text": value} for value in variables]
            else:
                parameters = [{"type": "text", "parameter_name": name, "text": value}
                              for name, value in variables.items()]
            if parameters:
                components.append({"type": "body", "parameters": parameters})
        for component in components:
            parameters = component.get("parameters", [])
            if not _is_text(component.get("type")) or not isinstance(parameters, list) or not all(
                    isinstance(parameter, dict) and _is_text(parameter.get("type")) for parameter in parameters):
                raise serializers.ValidationError(
                    {"components": ['Each component is {"type": ..., "parameters": [{"type": ...}, ...]}.']})
        content: dict[str, Any] = {"name": attrs["name"].strip(), "language": attrs["language"]}
        if components:
            content["components"] = components
        return content


class ContextSerializer(serializers.Serializer):
    message_id = serializers.CharField(max_length=160, help_text="The quoted message: its wamid or its Parley id.")

    class Meta:
        ref_name = "MessageContext"


# -- messages ------------------------------------------------------------------------------

class MessageErrorSerializer(serializers.Serializer):
    code = serializers.IntegerField(allow_null=True, help_text="The provider's error code, when it gave one.")
    title = serializers.CharField()
    detail = serializers.CharField()

    class Meta:
        ref_name = "MessageError"


class MessageContactSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    wa_id = serializers.CharField()

    class Meta:
        ref_name = "MessageContact"


class MessageSerializer(serializers.Serializer):
    """A message as the API shows it. ``from``/``to`` are E.164 digits: the business number
    and the customer, in the message's direction."""

    id = serializers.IntegerField()
    phone_number_id = serializers.IntegerField()
    conversation_id = serializers.IntegerField()
    contact = MessageContactSerializer()
    direction = serializers.CharField()
    type = serializers.CharField()
    sender = serializers.SerializerMethodField(method_name="get_sender")
    to = serializers.SerializerMethodField()
    status = serializers.CharField()
    wa_message_id = serializers.SerializerMethodField()
    content = serializers.JSONField()
    error = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    status_updated_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "Message"

    def get_fields(self) -> dict:
        # "from" is a Python keyword, so the field is declared as ``sender`` and renamed here.
        return {("from" if name == "sender" else name): field for name, field in super().get_fields().items()}

    @extend_schema_field(serializers.CharField())
    def get_sender(self, message: Message) -> str:
        inbound = message.direction == Message.Direction.INBOUND
        return message.contact.wa_id if inbound else message.phone_number.display_number

    @extend_schema_field(serializers.CharField())
    def get_to(self, message: Message) -> str:
        inbound = message.direction == Message.Direction.INBOUND
        return message.phone_number.display_number if inbound else message.contact.wa_id

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_wa_message_id(self, message: Message) -> str | None:
        return message.wa_message_id or message.provider_message_id or None

    @extend_schema_field(MessageErrorSerializer(allow_null=True))
    def get_error(self, message: Message) -> dict | None:
        if message.error_code is None and not message.error_title and not message.error_detail:
            return None
        return {"code": message.error_code, "title": message.error_title, "detail": message.error_detail}


class StatusEntrySerializer(serializers.Serializer):
    status = serializers.CharField()
    at = serializers.DateTimeField()

    class Meta:
        ref_name = "MessageStatusEntry"


class MessageDetailSerializer(MessageSerializer):
    status_history = serializers.SerializerMethodField()
    attempts = serializers.IntegerField(source="attempt_count", help_text="Calls made to the provider so far.")
    context = serializers.SerializerMethodField()
    media_id = serializers.IntegerField(allow_null=True, help_text="The Parley media this message carries.")

    class Meta:
        ref_name = "MessageDetail"

    @extend_schema_field(StatusEntrySerializer(many=True))
    def get_status_history(self, message: Message) -> list[dict]:
        """Every status the message reached, in the ladder's order (queued … read, then failed)."""
        if message.direction == Message.Direction.INBOUND:
            steps = [(statuses.RECEIVED, message.occurred_at or message.created_at), (statuses.READ, message.read_at)]
        else:
            steps = [(statuses.QUEUED, message.created_at), (statuses.SENDING, message.sending_at),
                     (statuses.ACCEPTED, message.accepted_at), (statuses.SENT, message.sent_at),
                     (statuses.DELIVERED, message.delivered_at), (statuses.READ, message.read_at),
                     (statuses.FAILED, message.failed_at)]
        field = serializers.DateTimeField()
        return [{"status": name, "at": field.to_representation(at)} for name, at in steps if at is not None]

    @extend_schema_field(ContextSerializer(allow_null=True))
    def get_context(self, message: Message) -> dict | None:
        return {"message_id": message.reply_to_provider_id} if message.reply_to_provider_id else None


def _message_examples() -> list[OpenApiExample]:
    return [
        OpenApiExample("Text", request_only=True, value={
            "to": "14155550100", "type": "text", "text": {"body": "Your order has shipped."}}),
        OpenApiExample("Template (variables)", request_only=True, value={
            "phone_number_id": 1, "to": "+1 415 555 0100", "type": "template",
            "template": {"name": "order_update", "language": "en", "variables": ["Ada", "#1234"]}}),
        OpenApiExample("Template (named variables)", request_only=True, value={
            "to": "14155550100", "type": "template",
            "template": {"name": "reminder", "language": {"code": "en_US"},
                         "variables": {"first_name": "Ada", "time": "10:00"}}}),
        OpenApiExample("Template (Meta components)", request_only=True, value={
            "to": "14155550100", "type": "template",
            "template": {"name": "order_update", "language": {"code": "en"}, "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "#1234"}]}]}}),
        OpenApiExample("Image by link", request_only=True, value={
            "to": "14155550100", "type": "image",
            "image": {"link": "https://example.com/catalog.jpg", "caption": "New arrivals"}}),
        OpenApiExample("Document by uploaded media id", request_only=True, value={
            "to": "14155550100", "type": "document", "document": {"id": "42", "filename": "invoice.pdf"}}),
        OpenApiExample("Interactive buttons", request_only=True, value={
            "to": "14155550100", "type": "interactive", "interactive": {
                "type": "button", "body": {"text": "Did this answer your question?"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                                       {"type": "reply", "reply": {"id": "no", "title": "No"}}]}}}),
        OpenApiExample("Reply with context", request_only=True, value={
            "to": "14155550100", "type": "text", "text": {"body": "Sure!"},
            "context": {"message_id": "wamid.HBgLMTQxNTU1NTAxMDAVAgARGBI"}, "idempotency": "order-1234-shipped"}),
        OpenApiExample("Queued", response_only=True, status_codes=["202"], value={
            "id": 1017, "phone_number_id": 1, "direction": "outbound", "type": "text", "to": "14155550100",
            "status": "queued", "wa_message_id": None, "conversation_id": 88,
            "created_at": "2025-05-01T09:30:00.120000Z"}),
        OpenApiExample("Window closed", response_only=True, status_codes=["422"], value={
            "error": {"code": "window_closed", "message": "The 24-hour customer service window is closed: the "
                      "customer has not written in the last 24 hours, so only an approved template can be sent.",
                      "details": {"window_expires_at": "2025-04-30T08:12:00+00:00"}}}),
        OpenApiExample("Missing field", response_only=True, status_codes=["400"], value={
            "error": {"code": "invalid_request", "message": "The request is not valid; see details.",
                      "details": {"to": ["This field is required."]}}}),
    ]


class MessageListCreateApi(TenantApiView):
    class InputSerializer(serializers.Serializer):
        phone_number_id = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, max_value=MAX_ID,
            help_text="The number to send from; may be left out when the workspace has one number.")
        to = serializers.CharField(max_length=32, help_text="The customer's number, E.164 (with or without +).")
        type = serializers.ChoiceField(choices=SENDABLE_TYPES)
        text = TextObjectSerializer(required=False)
        template = TemplateObjectSerializer(required=False)
        image = MediaObjectSerializer(required=False)
        video = MediaObjectSerializer(required=False)
        audio = MediaObjectSerializer(required=False)
        document = MediaObjectSerializer(required=False)
        sticker = MediaObjectSerializer(required=False)
        location = LocationObjectSerializer(required=False)
        contacts = serializers.ListField(child=serializers.DictField(), required=False, min_length=1,
                                         help_text="Meta's contact cards; each needs name.formatted_name.")
        interactive = InteractiveObjectSerializer(required=False)
        reaction = ReactionObjectSerializer(required=False)
        context = ContextSerializer(required=False, help_text="Quote an earlier message of the conversation.")
        idempotency = serializers.CharField(
            required=False, max_length=128,
            help_text="A key of yours for this message: sending it again returns the same message.")

        class Meta:
            ref_name = "MessageCreate"

        _prototypes: ClassVar[dict[frozenset[str], Any]] = {}
        _is_prototype = False

        def get_fields(self) -> dict:
            """Only the type objects the body holds: an absent optional field validates
            nothing, and copying all eleven nested serializers for every send is most of the
            validation's cost. Without data (the OpenAPI schema) every field is there."""
            data = getattr(self, "initial_data", None)
            if not isinstance(data, Mapping):
                return super().get_fields()
            return {name: copy.deepcopy(field) for name, field in self._declared_fields.items()
                    if name not in SENDABLE_TYPES or name in data}

        @property
        def fields(self) -> Any:
            """The fields for the type objects the body holds, built and bound once per such
            set (on a prototype instance) and shared by every request of every thread:
            validating reads fields and changes none of them, so the per-request deep copy of
            the nested serializers (DRF's way) bought nothing. The schema, with no data, gets
            fields of its own."""
            data = getattr(self, "initial_data", None)
            if self._is_prototype or not isinstance(data, Mapping):
                return self._own_fields
            present = frozenset(name for name in SENDABLE_TYPES if name in data)
            prototype = self._prototypes.get(present)
            if prototype is None:
                prototype = type(self)(data=dict.fromkeys(present))
                prototype._is_prototype = True
                prototype.fields  # noqa: B018 -- bound before another thread can see it
                if len(self._prototypes) < 64:  # every set of type names at most, a handful in use
                    self._prototypes[present] = prototype
            return prototype.fields

        @functools.cached_property
        def _own_fields(self) -> Any:
            return serializers.Serializer.fields.func(self)

        def validate(self, attrs: dict) -> dict:
            kind = attrs["type"]
            if attrs.get(kind) is None:
                raise serializers.ValidationError({kind: [f"This field is required when type is {kind}."]})
            content = attrs[kind]
            if _contains_nul(content):
                raise serializers.ValidationError({kind: ["Text may not contain NUL characters."]})
            if kind in MEDIA_MESSAGE_TYPES:
                if "caption" in content and kind not in CAPTIONED_TYPES:
                    raise serializers.ValidationError({kind: [f"{kind.capitalize()} messages cannot have a caption."]})
                if "filename" in content and kind != "document":
                    raise serializers.ValidationError({kind: ["Only a document has a filename."]})
            if kind == "contacts":
                for card in content:
                    name = card.get("name")
                    if not isinstance(name, dict) or not _is_text(name.get("formatted_name")):
                        raise serializers.ValidationError({"contacts": ["Each contact needs name.formatted_name."]})
            return attrs

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        phone_number_id = serializers.IntegerField()
        direction = serializers.CharField()
        type = serializers.CharField()
        to = serializers.CharField(source="contact.wa_id")
        status = serializers.CharField()
        wa_message_id = serializers.SerializerMethodField()
        conversation_id = serializers.IntegerField()
        created_at = serializers.DateTimeField()

        class Meta:
            ref_name = "MessageQueued"

        @extend_schema_field(serializers.CharField(allow_null=True))
        def get_wa_message_id(self, message: Message) -> str | None:
            return message.wa_message_id or message.provider_message_id or None

    class FilterSerializer(PageParams):
        phone_number_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
        direction = serializers.ChoiceField(choices=["inbound", "outbound"], required=False)
        status = serializers.ChoiceField(choices=Message.Status.values, required=False)
        since = serializers.DateTimeField(required=False, help_text="ISO 8601; created at or after")
        until = serializers.DateTimeField(required=False, help_text="ISO 8601; created before")

    class PageSerializer(serializers.Serializer):
        data = MessageSerializer(many=True)
        page = serializers.IntegerField()
        per_page = serializers.IntegerField()
        has_more = serializers.BooleanField()
        next_page = serializers.IntegerField(allow_null=True)

        class Meta:
            ref_name = "MessagePage"

    @extend_schema(
        operation_id="messages_send", tags=["Messages"], summary="Send a message",
        description=(
            "Queues one message of any type and answers 202 at once; delivery is reported by webhooks and by "
            "GET /api/v1/messages/{id}. The type object is Meta's (text, template, image, video, audio, document, "
            "sticker, location, contacts, interactive, reaction). Templates also take "
            '`{"name", "language": "en", "variables": [...] | {...}}`; media take `{"link"}` or `{"id"}` (an '
            "id from POST /api/v1/media, or the provider's). Send-time policy errors answer 422: window_closed, "
            "contact_opted_out, template_not_approved, template_parameters_mismatch, phone_number_not_found, "
            "invalid_recipient, invalid_message, invalid_media."),
        request=InputSerializer, parameters=[IDEMPOTENCY_PARAMETER],
        responses={202: OutputSerializer, **_errors(400, 401, 404, 409, 422, 429)},
        examples=_message_examples(),
    )
    @idempotent
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        kind = data["type"]
        content = _plain(data[kind])
        if kind == "reaction":
            content["message_id"] = self._reacted_message_id(content["message_id"])
        reply_to = None
        if data.get("context"):
            reference = data["context"]["message_id"]
            reply_to = message_find_reference(tenant=self.tenant, reference=reference)
            if reply_to is None:
                raise ApplicationError(f"There is no message {reference!r} in this workspace to reply to.",
                                       code="invalid_message", http_status=422,
                                       details={"context": {"message_id": reference}})
        message = message_send(
            tenant=self.tenant, to=data["to"], type=kind, content=content,
            phone_number=data.get("phone_number_id"), reply_to=reply_to,
            idempotency_key=data.get("idempotency") or None,
        )
        return Response(self.queued_body(message), status=status.HTTP_202_ACCEPTED)

    _created_at = serializers.DateTimeField()

    @classmethod
    def queued_body(cls, message: Message) -> dict:
        """What OutputSerializer gives, without building its nine fields on every send (a test
        holds the two equal)."""
        return {"id": message.pk, "phone_number_id": message.phone_number_id, "direction": message.direction,
                "type": message.type, "to": message.contact.wa_id, "status": message.status,
                "wa_message_id": message.wa_message_id or message.provider_message_id or None,
                "conversation_id": message.conversation_id,
                "created_at": cls._created_at.to_representation(message.created_at)}

    def _reacted_message_id(self, reference: str) -> str:
        """A reaction names the message by its WhatsApp id; a Parley id is translated."""
        target = message_find_reference(tenant=self.tenant, reference=reference)
        if target is None:
            if reference.isdigit():
                raise ApplicationError(f"There is no message {reference} in this workspace to react to.",
                                       code="invalid_message", http_status=422,
                                       details={"reaction": {"message_id": reference}})
            return reference
        wa_id = target.wa_message_id or target.provider_message_id
        if not wa_id:
            raise ApplicationError(f"Message {target.pk} has not reached WhatsApp yet, so it cannot be reacted to.",
                                   code="invalid_message", http_status=422,
                                   details={"reaction": {"message_id": reference}})
        return wa_id

    @extend_schema(
        operation_id="messages_list", tags=["Messages"], summary="List messages",
        description="Newest first. Pages never count the whole table: `has_more` says whether another page exists.",
        parameters=[FilterSerializer], responses={200: PageSerializer, **_errors(400, 401, 429)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = dict(filters.validated_data)
        page, per_page = params.pop("page"), params.pop("per_page")
        rows, has_more = paginate(message_list(tenant=self.tenant, **params), page=page, per_page=per_page)
        return Response(page_body(MessageSerializer(rows, many=True).data, page=page, per_page=per_page,
                                  has_more=has_more))


class MessageDetailApi(TenantApiView):
    @extend_schema(
        operation_id="messages_retrieve", tags=["Messages"], summary="Get a message",
        description="The message with every status it reached and when, its last error, and the attempts made.",
        parameters=[_id_parameter("message_id")], responses={200: MessageDetailSerializer, **_errors(401, 404, 429)},
    )
    def get(self, request: Request, message_id: int) -> Response:
        message = access_message(tenant=self.tenant, message_id=message_id)
        return Response(MessageDetailSerializer(message).data)


def _plain(value: Any) -> Any:
    """Validated data as plain JSON-ready dicts and lists."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# -- media ---------------------------------------------------------------------------------

class MediaSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    mime_type = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)
    filename = serializers.CharField()
    sha256 = serializers.CharField()

    class Meta:
        ref_name = "Media"


class MediaUploadApi(TenantApiView):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(help_text="jpeg/png ≤ 5 MB, webp sticker ≤ 500 KB, mp4/3gp ≤ 16 MB, "
                                               "aac/amr/mp3/m4a/ogg ≤ 16 MB, pdf/txt/office ≤ 100 MB")
        phone_number_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID,
                                                   help_text="The number that will send it, when known.")

        class Meta:
            ref_name = "MediaUpload"

    @extend_schema(
        operation_id="media_upload", tags=["Media"], summary="Upload a file",
        description=('Stores the file once; send it in any number of messages as `{"image": {"id": "<id>"}}` '
                     "(or video, audio, document, sticker). It reaches the provider with the first message that "
                     "uses it, and the provider's id is reused for 29 days. Uploading the same file again stores "
                     "another copy (no Idempotency-Key here: the body is a file, not JSON)."),
        request={"multipart/form-data": InputSerializer},
        responses={201: MediaSerializer, **_errors(400, 401, 404, 413, 415, 422, 429)},
        examples=[
            OpenApiExample("Uploaded", response_only=True, status_codes=["201"], value={
                "id": 42, "mime_type": "application/pdf", "size": 48213, "filename": "invoice.pdf",
                "sha256": "9f2c5e0b8d6f4a1e3c7b9d2f0a8e6c4b2d0f8e6a4c2b0d9f7e5c3a1b9d7f5e3c"}),
            OpenApiExample("Too large", response_only=True, status_codes=["413"], value={
                "error": {"code": "invalid_media", "message": "An image (image/jpeg) may be at most 5 MB; this "
                          "file has 7340032 bytes.", "details": {"size": 7340032, "max_bytes": 5242880,
                                                                 "kind": "image"}}}),
        ],
    )
    def post(self, request: Request) -> Response:
        # Refuse what can only be too large before reading the body to disk.
        length = request.META.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > MAX_MEDIA_BYTES + UPLOAD_OVERHEAD_BYTES:
            raise ApplicationError(f"A file may be at most {MAX_MEDIA_BYTES // (1024 * 1024)} MB.",
                                   code="invalid_media", http_status=413, details={"max_bytes": MAX_MEDIA_BYTES})
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        phone_number = None
        if serializer.validated_data.get("phone_number_id"):
            phone_number = resolve_phone_number(tenant=self.tenant,
                                                phone_number=serializer.validated_data["phone_number_id"])
        media = media_upload(tenant=self.tenant, file=upload, filename=upload.name, mime_type=upload.content_type,
                             phone_number=phone_number)
        return Response(MediaSerializer(media).data, status=status.HTTP_201_CREATED)


class MediaDetailApi(TenantApiView):
    class OutputSerializer(MediaSerializer):
        source = serializers.ChoiceField(choices=Media.Source.choices)
        status = serializers.ChoiceField(choices=Media.Status.choices)
        phone_number_id = serializers.IntegerField(allow_null=True)
        created_at = serializers.DateTimeField()

        class Meta:
            ref_name = "MediaDetail"

    @extend_schema(operation_id="media_retrieve", tags=["Media"], summary="Get a file's metadata",
                   parameters=[_id_parameter("media_id")], responses={200: OutputSerializer, **_errors(401, 404, 429)})
    def get(self, request: Request, media_id: int) -> Response:
        return Response(self.OutputSerializer(access_media(tenant=self.tenant, media_id=media_id)).data)


# -- conversations -------------------------------------------------------------------------

class ConversationContactSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    wa_id = serializers.CharField()
    name = serializers.CharField(source="__str__")

    class Meta:
        ref_name = "ConversationContact"


class ConversationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    phone_number_id = serializers.IntegerField()
    contact = ConversationContactSerializer()
    status = serializers.CharField()
    assignee_id = serializers.IntegerField(allow_null=True)
    window_expires_at = serializers.DateTimeField(allow_null=True)
    window_open = serializers.SerializerMethodField()
    last_message_at = serializers.DateTimeField(allow_null=True)
    last_message_preview = serializers.CharField()
    last_message_type = serializers.CharField()
    last_message_direction = serializers.CharField()
    unread_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Conversation"

    @extend_schema_field(serializers.BooleanField())
    def get_window_open(self, conversation: Conversation) -> bool:
        """Whether a free-form message may be sent now (the 24-hour window)."""
        return bool(conversation.window_expires_at and conversation.window_expires_at > timezone.now())


class ConversationListApi(TenantApiView):
    class FilterSerializer(PageParams):
        status = serializers.ChoiceField(choices=Conversation.Status.values, required=False)
        phone_number_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
        wa_id = serializers.CharField(required=False, max_length=32, help_text="The contact's number (E.164).")

        def validate_wa_id(self, value: str) -> str:
            try:
                return normalize_wa_id(value)
            except InvalidPhoneNumber:
                # Not a possible number, so no contact has it: the filter simply matches nothing.
                return value

    class PageSerializer(serializers.Serializer):
        data = ConversationSerializer(many=True)
        page = serializers.IntegerField()
        per_page = serializers.IntegerField()
        has_more = serializers.BooleanField()
        next_page = serializers.IntegerField(allow_null=True)

        class Meta:
            ref_name = "ConversationPage"

    @extend_schema(operation_id="conversations_list", tags=["Conversations"], summary="List conversations",
                   description="Most recent activity first.",
                   parameters=[FilterSerializer], responses={200: PageSerializer, **_errors(400, 401, 429)})
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = dict(filters.validated_data)
        page, per_page = params.pop("page"), params.pop("per_page")
        rows, has_more = paginate(conversation_list(tenant=self.tenant, **params), page=page, per_page=per_page)
        return Response(page_body(ConversationSerializer(rows, many=True).data, page=page, per_page=per_page,
                                  has_more=has_more))


class ConversationDetailApi(TenantApiView):
    @extend_schema(operation_id="conversations_retrieve", tags=["Conversations"], summary="Get a conversation",
                   parameters=[_id_parameter("conversation_id")], responses={200: ConversationSerializer, **_errors(401, 404, 429)})
    def get(self, request: Request, conversation_id: int) -> Response:
        conversation = access_conversation(tenant=self.tenant, conversation_id=conversation_id)
        return Response(ConversationSerializer(conversation).data)


class ConversationMessageListApi(TenantApiView):
    @extend_schema(operation_id="conversations_messages_list", tags=["Conversations"],
                   summary="List a conversation's messages", description="Newest first.",
                   parameters=[_id_parameter("conversation_id"), PageParams],
                   responses={200: MessageListCreateApi.PageSerializer,
                                                       **_errors(400, 401, 404, 429)})
    def get(self, request: Request, conversation_id: int) -> Response:
        params = PageParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        page, per_page = params.validated_data["page"], params.validated_data["per_page"]
        conversation = access_conversation(tenant=self.tenant, conversation_id=conversation_id)
        rows, has_more = paginate(message_list(tenant=self.tenant, conversation_id=conversation.pk),
                                  page=page, per_page=per_page)
        return Response(page_body(MessageSerializer(rows, many=True).data, page=page, per_page=per_page,
                                  has_more=has_more))
