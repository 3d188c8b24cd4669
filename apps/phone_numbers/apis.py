"""Phone numbers over the REST API: list, read, and a live status check. Credentials, verify
tokens and webhook URL tokens are never part of any answer."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api.errors import error_body
from apps.api.pagination import PageParams, page_body, paginate
from apps.api.views import TenantApiView

from .models import PhoneNumber
from .selectors import access_phone_number, phone_number_list, phone_number_status

TAGS = ["Phone numbers"]

NUMBER_EXAMPLE = {
    "id": 3, "provider": "meta_cloud", "display_number": "15550783881", "display_name": "Acme Support",
    "provider_phone_number_id": "106540352242922", "waba_id": "102290129340398", "provider_app_id": "",
    "status": "connected", "status_detail": "", "quality_rating": "GREEN", "messaging_limit_tier": "TIER_2K",
    "messages_per_second": 80, "last_webhook_at": "2025-03-02T08:30:00Z", "created_at": "2025-02-20T09:00:00Z",
    "updated_at": "2025-03-01T10:00:00Z",
}


def _error(description: str, code: str, message: str, details: dict | None = None) -> OpenApiResponse:
    return OpenApiResponse(response=OpenApiTypes.OBJECT, description=description, examples=[
        OpenApiExample(code, value=error_body(code, message, details))])


NOT_FOUND = _error("No such phone number in this workspace (another workspace's id is a 404 too).",
                   "not_found", "No such phone number")
AUTH_ERRORS = {
    401: _error("Missing, malformed or revoked API key.", "unauthenticated",
                "Authentication required: send 'Authorization: Bearer <api key>' or 'X-API-Key: <api key>'."),
    429: _error("Too many requests for this key; retry after the Retry-After header's seconds.", "rate_limited",
                "Too many requests; retry in 12 s.", {"retry_after": 12}),
}


@extend_schema_field({"type": "string", "enum": PhoneNumber.Status.values,
                      "description": "The number's configured state in Parley: connected, pending, disabled or error."},
                     component_name="PhoneNumberState")
class PhoneNumberStateField(serializers.ChoiceField):
    def __init__(self, **kwargs) -> None:
        super().__init__(choices=PhoneNumber.Status.choices, **kwargs)


class PhoneNumberDetailApi(TenantApiView):
    @extend_schema_serializer(component_name="PhoneNumber")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        provider = serializers.ChoiceField(choices=PhoneNumber.Provider.choices)
        display_number = serializers.CharField(help_text="E.164 digits, no '+'.")
        display_name = serializers.CharField()
        provider_phone_number_id = serializers.CharField(source="phone_number_id",
                                                         help_text="Meta's phone number id, when known.")
        waba_id = serializers.CharField(help_text="WhatsApp Business Account id (Gupshup: the app).")
        provider_app_id = serializers.CharField(help_text="Gupshup app name or Partner app id.")
        status = PhoneNumberStateField()
        status_detail = serializers.CharField()
        quality_rating = serializers.ChoiceField(choices=PhoneNumber.Quality.choices)
        messaging_limit_tier = serializers.CharField()
        messages_per_second = serializers.IntegerField(help_text="The send budget Parley keeps to.")
        last_webhook_at = serializers.DateTimeField(allow_null=True)
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()

    @extend_schema(
        tags=TAGS, operation_id="phone_numbers_retrieve", summary="Get a phone number",
        responses={**AUTH_ERRORS, 200: OutputSerializer, 404: NOT_FOUND},
        examples=[OpenApiExample("Number", value=NUMBER_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, phone_number_id: int) -> Response:
        number = access_phone_number(tenant=self.tenant, phone_number_id=phone_number_id)
        return Response(self.OutputSerializer(number).data)


class PhoneNumberListApi(TenantApiView):
    FilterSerializer = PageParams
    OutputSerializer = PhoneNumberDetailApi.OutputSerializer

    @extend_schema(
        tags=TAGS, operation_id="phone_numbers_list", summary="List phone numbers",
        parameters=[PageParams],
        responses={**AUTH_ERRORS, 200: inline_serializer("PhoneNumberPage", {
            "data": PhoneNumberDetailApi.OutputSerializer(many=True),
            "page": serializers.IntegerField(), "per_page": serializers.IntegerField(),
            "has_more": serializers.BooleanField(), "next_page": serializers.IntegerField(allow_null=True),
        }), 400: _error("Invalid paging parameters.", "invalid_request", "The request is not valid; see details.",
                    {"per_page": ["Ensure this value is less than or equal to 100."]})},
        examples=[OpenApiExample("A page", response_only=True, value={
            "data": [NUMBER_EXAMPLE], "page": 1, "per_page": 20, "has_more": False, "next_page": None})],
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        page, per_page = params.validated_data["page"], params.validated_data["per_page"]
        rows, has_more = paginate(phone_number_list(tenant=self.tenant), page=page, per_page=per_page)
        return Response(page_body(self.OutputSerializer(rows, many=True).data, page=page, per_page=per_page,
                                  has_more=has_more))


class PhoneNumberStatusApi(TenantApiView):
    @extend_schema_serializer(component_name="PhoneNumberStatus")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        provider = serializers.ChoiceField(choices=PhoneNumber.Provider.choices)
        display_number = serializers.CharField()
        status = PhoneNumberStateField()
        connection = inline_serializer("PhoneNumberConnection", {
            "state": serializers.ChoiceField(choices=["ok", "error"]),
            "checked_at": serializers.DateTimeField(),
            "title": serializers.CharField(),
            "explanation": serializers.CharField(help_text="What happened and what to do, in words."),
            "error_code": serializers.IntegerField(allow_null=True, help_text="The provider's error code."),
            "http_status": serializers.IntegerField(allow_null=True),
            "transient": serializers.BooleanField(help_text="Whether trying again later can help."),
        })
        quality_rating = serializers.ChoiceField(choices=PhoneNumber.Quality.choices)
        throughput = inline_serializer("PhoneNumberThroughput", {
            "messages_per_second": serializers.IntegerField(),
            "level": serializers.CharField(help_text="Meta's throughput level: STANDARD or HIGH."),
        })
        messaging_limit_tier = serializers.CharField(allow_null=True)
        last_webhook_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(
        tags=TAGS, operation_id="phone_numbers_status", summary="Check a phone number's health",
        description=(
            "Asks the provider about the number now (a few seconds at most). A provider failure is "
            "reported as `connection.state = error` with an explanation, never as an error of this "
            "request."
        ),
        responses={**AUTH_ERRORS, 200: OutputSerializer, 404: NOT_FOUND},
        examples=[
            OpenApiExample("Healthy", response_only=True, value={
                "id": 3, "provider": "meta_cloud", "display_number": "15550783881", "status": "connected",
                "connection": {"state": "ok", "checked_at": "2025-03-02T08:31:00Z", "title": "Connected",
                               "explanation": "Meta Cloud API accepted this number's credentials and answered for it.",
                               "error_code": None, "http_status": None, "transient": False},
                "quality_rating": "GREEN", "throughput": {"messages_per_second": 80, "level": "STANDARD"},
                "messaging_limit_tier": "TIER_2K", "last_webhook_at": "2025-03-02T08:30:00Z"}),
            OpenApiExample("Expired token", response_only=True, value={
                "id": 3, "provider": "meta_cloud", "display_number": "15550783881", "status": "connected",
                "connection": {"state": "error", "checked_at": "2025-03-02T08:31:00Z",
                               "title": "Access token has expired",
                               "explanation": "The access token for this number has expired. Generate a new "
                                              "(system-user) token and update the number's credentials.",
                               "error_code": 190, "http_status": 401, "transient": False},
                "quality_rating": "GREEN", "throughput": {"messages_per_second": 80, "level": "STANDARD"},
                "messaging_limit_tier": "TIER_2K", "last_webhook_at": "2025-03-02T08:30:00Z"}),
        ],
    )
    def get(self, request: Request, phone_number_id: int) -> Response:
        number = access_phone_number(tenant=self.tenant, phone_number_id=phone_number_id)
        return Response(self.OutputSerializer(phone_number_status(tenant=self.tenant, phone_number=number)).data)
