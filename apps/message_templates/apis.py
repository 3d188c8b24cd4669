"""Message templates over the REST API: list and read what the provider approved, and ask for a
sync from the provider (done in the background)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from apps.api.idempotency import idempotent
from apps.api.openapi import AUTH_ERRORS, IDEMPOTENCY_KEY_INVALID, IDEMPOTENCY_KEY_REUSED
from apps.api.openapi import error_response as _error
from apps.api.pagination import PageParams, page_body, paginate
from apps.api.parsers import StrictJSONParser
from apps.api.views import TenantApiView
from apps.phone_numbers.selectors import access_phone_number

from .models import MessageTemplate
from .rendering import template_shape
from .selectors import access_template, template_list
from .services import templates_sync_request

TAGS = ["Templates"]

TEMPLATE_EXAMPLE = {
    "id": 7, "name": "order_update", "language": "en_US", "category": "UTILITY", "status": "APPROVED",
    "parameter_format": "positional",
    "components": [{"type": "HEADER", "format": "IMAGE"},
                   {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."},
                   {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track",
                                                    "url": "https://shop.example/track/{{1}}"}]}],
    "variables": {"header": {"type": "image", "variables": []}, "body": ["1", "2"],
                  "buttons": [{"index": 0, "type": "url", "count": 1}]},
    "quality_rating": "GREEN", "rejected_reason": "", "provider_template_id": "1689556908129832",
    "phone_number_id": 3, "waba_id": "102290129340398", "last_synced_at": "2025-03-01T10:00:00Z",
    "created_at": "2025-02-20T09:00:00Z", "updated_at": "2025-03-01T10:00:00Z",
}




NOT_FOUND = _error("No such template in this workspace (another workspace's id is a 404 too).",
                   "not_found", "No template matches the given query.")
INVALID = _error("The request is not valid.", "invalid_request", "The request is not valid; see details.",
                 {"per_page": ["Ensure this value is less than or equal to 100."]})
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False,
    description="Repeat a POST safely: the same key and body answer with the first response.")


@extend_schema_field(inline_serializer("TemplateVariables", {
    "header": inline_serializer("TemplateHeaderVariables", {
        "type": serializers.CharField(help_text="text, image, video, document or location"),
        "variables": serializers.ListField(child=serializers.CharField()),
    }, allow_null=True),
    "body": serializers.ListField(child=serializers.CharField(),
                                  help_text="Placeholders in order: '1', '2' … or names such as 'first_name'."),
    "buttons": inline_serializer("TemplateButtonVariables", {
        "index": serializers.IntegerField(), "type": serializers.CharField(), "count": serializers.IntegerField(),
    }, many=True),
}))
class TemplateVariablesField(serializers.Field):
    """What a send must fill in, derived from the stored components."""

    def to_representation(self, components: list[dict[str, Any]]) -> dict[str, Any]:
        shape = template_shape(components)
        if shape.header_media:
            header: dict[str, Any] | None = {"type": shape.header_media, "variables": []}
        elif any(str(c.get("type", "")).upper() == "HEADER" for c in components or []):
            header = {"type": "text", "variables": shape.header_text}
        else:
            header = None
        return {
            "header": header,
            "body": shape.body,
            "buttons": [{"index": index, "type": "url", "count": count} for index, count in sorted(shape.url_buttons.items())],
        }


class TemplateDetailApi(TenantApiView):
    @extend_schema_serializer(component_name="Template")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        language = serializers.CharField()
        category = serializers.ChoiceField(choices=MessageTemplate.Category.choices)
        status = serializers.ChoiceField(choices=MessageTemplate.Status.choices)
        parameter_format = serializers.ChoiceField(choices=MessageTemplate.ParameterFormat.choices)
        components = serializers.ListField(child=serializers.DictField(),
                                           help_text="Meta's template components (HEADER, BODY, FOOTER, BUTTONS).")
        variables = TemplateVariablesField(source="components", read_only=True)
        quality_rating = serializers.CharField()
        rejected_reason = serializers.CharField()
        provider_template_id = serializers.CharField()
        phone_number_id = serializers.IntegerField(allow_null=True,
                                                   help_text="The Parley phone number it was synced from.")
        waba_id = serializers.CharField()
        last_synced_at = serializers.DateTimeField(allow_null=True)
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()

    @extend_schema(
        tags=TAGS, operation_id="templates_retrieve", summary="Get a template",
        responses={**AUTH_ERRORS, 200: OutputSerializer, 404: NOT_FOUND},
        examples=[OpenApiExample("Template", value=TEMPLATE_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, template_id: int) -> Response:
        template = access_template(tenant=self.tenant, template_id=template_id)
        return Response(self.OutputSerializer(template).data)


class TemplateListApi(TenantApiView):
    class FilterSerializer(PageParams):
        status = serializers.ChoiceField(choices=MessageTemplate.Status.choices, required=False)
        name = serializers.CharField(required=False, max_length=512)
        language = serializers.CharField(required=False, max_length=16)
        category = serializers.ChoiceField(choices=MessageTemplate.Category.choices, required=False)
        phone_number_id = serializers.IntegerField(required=False, min_value=1,
                                                   help_text="Parley's phone number id: that number's WABA.")

    OutputSerializer = TemplateDetailApi.OutputSerializer

    @extend_schema(
        tags=TAGS, operation_id="templates_list", summary="List templates",
        parameters=[FilterSerializer],
        responses={**AUTH_ERRORS, 200: inline_serializer("TemplatePage", {
            "data": TemplateDetailApi.OutputSerializer(many=True),
            "page": serializers.IntegerField(), "per_page": serializers.IntegerField(),
            "has_more": serializers.BooleanField(), "next_page": serializers.IntegerField(allow_null=True),
        }), 400: INVALID},
        examples=[OpenApiExample("A page", response_only=True, value={
            "data": [TEMPLATE_EXAMPLE], "page": 1, "per_page": 20, "has_more": False, "next_page": None})],
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        filters = params.validated_data
        templates = template_list(tenant=self.tenant, status=filters.get("status"), name=filters.get("name"),
                                  language=filters.get("language"), category=filters.get("category"),
                                  phone_number_id=filters.get("phone_number_id"))
        rows, has_more = paginate(templates, page=filters["page"], per_page=filters["per_page"])
        return Response(page_body(self.OutputSerializer(rows, many=True).data, page=filters["page"],
                                  per_page=filters["per_page"], has_more=has_more))


class TemplateSyncApi(TenantApiView):
    parser_classes = [StrictJSONParser]

    @extend_schema_serializer(component_name="TemplateSync")
    class InputSerializer(serializers.Serializer):
        phone_number_id = serializers.IntegerField(
            required=False, min_value=1,
            help_text="Sync this number's WABA only; omitted: every enabled number (one per WABA).")

    @extend_schema_serializer(component_name="TemplateSyncQueued")
    class OutputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=["queued"])
        phone_number_ids = serializers.ListField(child=serializers.IntegerField())

    @extend_schema(
        tags=TAGS, operation_id="templates_sync", summary="Sync templates from the provider",
        description=(
            "Reads every template of the WABA from the provider (following its paging) in the "
            "background: new ones are added, changed ones updated, and the ones the provider no "
            "longer returns are marked DELETED. Status changes are sent as `template.status_changed` "
            "webhooks."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=InputSerializer,
        responses={**AUTH_ERRORS, 202: OutputSerializer,
                   400: _error("The request is not valid.", "invalid_request", "The request is not valid; see details.",
                               {"phone_number_id": ["A valid integer is required."]}, IDEMPOTENCY_KEY_INVALID),
                   404: _error("No such phone number in this workspace.", "not_found", "No such phone number"),
                   409: _error("The workspace has no enabled number (or the Idempotency-Key was used with another "
                               "body).", "no_phone_numbers",
                               "This workspace has no enabled phone number to sync templates from.", None,
                               IDEMPOTENCY_KEY_REUSED)},
        examples=[
            OpenApiExample("One number", request_only=True, value={"phone_number_id": 3}),
            OpenApiExample("Queued", response_only=True, status_codes=["202"],
                           value={"status": "queued", "phone_number_ids": [3]}),
        ],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        number_id = serializer.validated_data.get("phone_number_id")
        number = access_phone_number(tenant=self.tenant, phone_number_id=number_id) if number_id else None
        numbers = templates_sync_request(tenant=self.tenant, phone_number=number)
        return Response(self.OutputSerializer({"status": "queued", "phone_number_ids": [n.pk for n in numbers]}).data,
                        status=status.HTTP_202_ACCEPTED)
