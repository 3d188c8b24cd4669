"""Webhook endpoints over the REST API: manage the tenant's endpoints, see every delivery with
its attempts, replay a delivery, send a test event. The signing secret is shown when an
endpoint is created (or its secret rotated) and never again."""

from __future__ import annotations

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
from apps.core.exceptions import ApplicationError

from .models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint
from .selectors import (
    access_delivery,
    access_endpoint,
    delivery_attempt_summaries,
    delivery_list,
    endpoint_list,
)
from .services import (
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
    webhook_test_event_send,
)

TAGS = ["Webhooks"]

ENDPOINT_EXAMPLE = {
    "id": 5, "url": "https://hooks.example.com/parley", "description": "CRM sync",
    "events": ["message.received", "message.failed"], "format": "parley", "is_active": True,
    "created_at": "2025-03-01T10:00:00Z", "updated_at": "2025-03-01T10:00:00Z",
}
DELIVERY_EXAMPLE = {
    "id": 901, "endpoint_id": 5, "event_id": "evt_5f0c6d2e8b1a4c7e9d3f2a1b0c9d8e7f", "event_type": "message.received",
    "status": "retrying", "attempt_count": 2, "last_status_code": 503,
    "next_attempt_at": "2025-03-02T08:31:30Z", "delivered_at": None, "created_at": "2025-03-02T08:30:00Z",
    "payload": {"id": "evt_5f0c6d2e8b1a4c7e9d3f2a1b0c9d8e7f", "type": "message.received",
                "created_at": "2025-03-02T08:30:00.000Z", "data": {"message_id": 1017}},
    "attempts": {"total": 2, "last": {"status_code": 503, "error": "", "response_excerpt": "upstream down",
                                      "duration_ms": 84, "created_at": "2025-03-02T08:31:00Z"}},
}




ENDPOINT_NOT_FOUND = _error("No such endpoint in this workspace (another workspace's id is a 404 too).",
                            "not_found", "No webhook endpoint matches the given query.")
DELIVERY_NOT_FOUND = _error("No such delivery in this workspace (another workspace's id is a 404 too).",
                            "not_found", "No webhook delivery matches the given query.")
INVALID = _error("The request is not valid.", "invalid_url", "The URL must start with http:// or https://.", None,
                 ("invalid_request", "The request is not valid; see details.",
                  {"events": {"0": ['"message.exploded" is not a valid choice.']}}))
SECRET_NOT_REPLAYABLE = ("idempotency_not_supported", "Idempotency-Key is not accepted here: the answer carries the "
                         "signing secret, which Parley does not keep in clear.", None)
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False,
    description="Repeat a POST safely: the same key and body answer with the first response.")


def _refuse_idempotency_key(request: Request) -> None:
    """Answers that carry a signing secret are not recorded for replay, so they cannot honour
    an Idempotency-Key; say so rather than ignore it."""
    if request.headers.get(IDEMPOTENCY_HEADER) is not None:
        raise ApplicationError(
            f"{IDEMPOTENCY_HEADER} is not accepted here: the answer carries the signing secret, which Parley "
            "does not keep in clear. List the endpoints to see whether an earlier try went through.",
            code="idempotency_not_supported")


def _page_schema(name: str, item: type[serializers.Serializer]) -> serializers.Serializer:
    return inline_serializer(name, {
        "data": item(many=True), "page": serializers.IntegerField(), "per_page": serializers.IntegerField(),
        "has_more": serializers.BooleanField(), "next_page": serializers.IntegerField(allow_null=True),
    })


@extend_schema_field({"type": "string", "enum": WebhookDelivery.Status.values,
                      "description": "pending, retrying (will try again), succeeded, or failed (gave up after 24 h)"},
                     component_name="WebhookDeliveryStatus")
class DeliveryStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs) -> None:
        super().__init__(choices=WebhookDelivery.Status.choices, **kwargs)


@extend_schema_serializer(component_name="WebhookEndpoint")
class EndpointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    description = serializers.CharField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES),
                                   help_text="Event types sent here; empty: every type.")
    format = serializers.ChoiceField(choices=WebhookEndpoint.Format.choices)
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="WebhookEndpointWithSecret")
class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(help_text="Signs every delivery (Parley-Signature). Shown only now: store it.")


class AttemptSerializer(serializers.Serializer):
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    response_excerpt = serializers.CharField()
    duration_ms = serializers.IntegerField()
    created_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="WebhookDelivery")
class DeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    endpoint_id = serializers.IntegerField()
    event_id = serializers.CharField()
    event_type = serializers.CharField()
    status = DeliveryStatusField()
    attempt_count = serializers.IntegerField(help_text="Attempts in the current cycle (a replay starts a new one).")
    last_status_code = serializers.IntegerField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    payload = serializers.DictField(help_text="The event envelope exactly as posted.")


class WebhookEndpointListCreateApi(TenantApiView):
    parser_classes = [StrictJSONParser]
    FilterSerializer = PageParams
    OutputSerializer = EndpointSerializer

    @extend_schema_serializer(component_name="WebhookEndpointCreate")
    class InputSerializer(serializers.Serializer):
        url = serializers.CharField(max_length=500, help_text="http(s) URL that receives the POSTs.")
        events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES), required=False,
                                       help_text="Event types to send; omitted or empty: every type.")
        format = serializers.ChoiceField(choices=WebhookEndpoint.Format.choices, default=WebhookEndpoint.Format.PARLEY)
        description = serializers.CharField(required=False, allow_blank=True, max_length=200)

    @extend_schema(
        tags=TAGS, operation_id="webhook_endpoints_list", summary="List webhook endpoints",
        parameters=[PageParams],
        responses={**AUTH_ERRORS, 200: _page_schema("WebhookEndpointPage", EndpointSerializer),
                   400: _error("Invalid paging parameters.", "invalid_request", "The request is not valid; see details.")},
        examples=[OpenApiExample("A page", response_only=True, value={
            "data": [ENDPOINT_EXAMPLE], "page": 1, "per_page": 20, "has_more": False, "next_page": None})],
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        page, per_page = params.validated_data["page"], params.validated_data["per_page"]
        rows, has_more = paginate(endpoint_list(tenant=self.tenant), page=page, per_page=per_page)
        return Response(page_body(self.OutputSerializer(rows, many=True).data, page=page, per_page=per_page,
                                  has_more=has_more))

    @extend_schema(
        tags=TAGS, operation_id="webhook_endpoints_create", summary="Create a webhook endpoint",
        description=(
            "The answer carries the endpoint's signing `secret`, which is never shown again (rotate it "
            "to get a new one). Because that answer must not be stored, this POST does not take an "
            "`Idempotency-Key`."
        ),
        request=InputSerializer,
        responses={**AUTH_ERRORS, 201: EndpointWithSecretSerializer,
                   400: _error("The request is not valid.", "invalid_url", "The URL must start with http:// or https://.",
                               None, SECRET_NOT_REPLAYABLE)},
        examples=[
            OpenApiExample("New endpoint", request_only=True, value={
                "url": "https://hooks.example.com/parley", "events": ["message.received", "message.failed"],
                "description": "CRM sync"}),
            OpenApiExample("Created", response_only=True, status_codes=["201"], value={
                **ENDPOINT_EXAMPLE, "secret": "whsec_3q2-7wAmK0HkS9aC1mP4xYvLr8tZbN6eUoJ5dFgQhWs"}),
        ],
    )
    def post(self, request: Request) -> Response:
        _refuse_idempotency_key(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = webhook_endpoint_create(tenant=self.tenant, **serializer.validated_data)
        data = EndpointSerializer(endpoint).data
        data["secret"] = secret
        return Response(data, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailApi(TenantApiView):
    parser_classes = [StrictJSONParser]
    OutputSerializer = EndpointSerializer

    @extend_schema_serializer(component_name="WebhookEndpointUpdate")
    class InputSerializer(serializers.Serializer):
        url = serializers.CharField(required=False, max_length=500)
        events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES), required=False,
                                       help_text="Empty list: every event type.")
        format = serializers.ChoiceField(choices=WebhookEndpoint.Format.choices, required=False)
        description = serializers.CharField(required=False, allow_blank=True, max_length=200)
        is_active = serializers.BooleanField(required=False)

    @extend_schema(
        tags=TAGS, operation_id="webhook_endpoints_retrieve", summary="Get a webhook endpoint",
        responses={**AUTH_ERRORS, 200: EndpointSerializer, 404: ENDPOINT_NOT_FOUND},
        examples=[OpenApiExample("Endpoint", value=ENDPOINT_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        endpoint = access_endpoint(tenant=self.tenant, endpoint_id=endpoint_id)
        return Response(self.OutputSerializer(endpoint).data)

    @extend_schema(
        tags=TAGS, operation_id="webhook_endpoints_partial_update", summary="Change a webhook endpoint",
        request=InputSerializer, responses={**AUTH_ERRORS, 200: EndpointSerializer, 400: INVALID, 404: ENDPOINT_NOT_FOUND},
        examples=[
            OpenApiExample("Pause", request_only=True, value={"is_active": False}),
            OpenApiExample("Endpoint", response_only=True, value={**ENDPOINT_EXAMPLE, "is_active": False}),
        ],
    )
    def patch(self, request: Request, endpoint_id: int) -> Response:
        access_endpoint(tenant=self.tenant, endpoint_id=endpoint_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_update(tenant=self.tenant, endpoint_id=endpoint_id, **serializer.validated_data)
        return Response(self.OutputSerializer(endpoint).data)

    @extend_schema(
        tags=TAGS, operation_id="webhook_endpoints_destroy", summary="Delete a webhook endpoint",
        description="Deletes the endpoint with its deliveries and their attempts.",
        responses={**AUTH_ERRORS, 204: None, 404: ENDPOINT_NOT_FOUND},
    )
    def delete(self, request: Request, endpoint_id: int) -> Response:
        webhook_endpoint_delete(tenant=self.tenant, endpoint_id=endpoint_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointRotateSecretApi(TenantApiView):
    OutputSerializer = EndpointWithSecretSerializer

    @extend_schema(
        tags=TAGS, operation_id="webhook_endpoints_rotate_secret", summary="Rotate an endpoint's secret",
        description="A new signing secret, shown only in this answer; attempts from now on are signed with it. "
                    "Does not take an `Idempotency-Key` (the answer carries the secret).",
        request=None, responses={**AUTH_ERRORS, 200: EndpointWithSecretSerializer, 404: ENDPOINT_NOT_FOUND,
                                 400: _error("An Idempotency-Key was sent.", *SECRET_NOT_REPLAYABLE)},
        examples=[OpenApiExample("Rotated", response_only=True, value={
            **ENDPOINT_EXAMPLE, "secret": "whsec_Jt8W1pQe5ZbK3yNc7RvX0aLm2sUhGd4fVo6iEkTnBqY"})],
    )
    def post(self, request: Request, endpoint_id: int) -> Response:
        _refuse_idempotency_key(request)
        endpoint, secret = webhook_endpoint_rotate_secret(tenant=self.tenant, endpoint_id=endpoint_id)
        data = EndpointSerializer(endpoint).data
        data["secret"] = secret
        return Response(data)


class WebhookEndpointTestApi(TenantApiView):
    OutputSerializer = DeliverySerializer

    @extend_schema(
        tags=TAGS, operation_id="webhook_endpoints_test", summary="Send a test event",
        description="Queues a `webhook.test` event to this endpoint, whatever it subscribes to.",
        parameters=[IDEMPOTENCY_PARAMETER], request=None,
        responses={**AUTH_ERRORS, 202: DeliverySerializer, 404: ENDPOINT_NOT_FOUND,
                   400: _error("The Idempotency-Key is not valid.", *IDEMPOTENCY_KEY_INVALID),
                   409: _error("The endpoint is disabled (or the Idempotency-Key was used with another request).",
                               "endpoint_disabled", "The endpoint is disabled; enable it to send a test event.", None,
                               IDEMPOTENCY_KEY_REUSED)},
        examples=[OpenApiExample("Queued", response_only=True, status_codes=["202"], value={
            **DELIVERY_EXAMPLE, "event_type": "webhook.test", "status": "pending", "attempt_count": 0,
            "last_status_code": None, "payload": {
                "id": "evt_5f0c6d2e8b1a4c7e9d3f2a1b0c9d8e7f", "type": "webhook.test",
                "created_at": "2025-03-02T08:30:00.000Z",
                "data": {"message": "This is a test event from Parley.", "endpoint_id": 5,
                         "url": "https://hooks.example.com/parley"}}})],
    )
    @idempotent
    def post(self, request: Request, endpoint_id: int) -> Response:
        delivery = webhook_test_event_send(tenant=self.tenant, endpoint_id=endpoint_id)
        return Response(self.OutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookEndpointDeliveryListApi(TenantApiView):
    class FilterSerializer(PageParams):
        status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)

    @extend_schema_serializer(component_name="WebhookDeliverySummary")
    class OutputSerializer(DeliverySerializer):
        attempts = inline_serializer("WebhookDeliveryAttempts", {
            "total": serializers.IntegerField(help_text="Attempts of every cycle."),
            "last": AttemptSerializer(allow_null=True),
        }, source="attempts_summary")

    @extend_schema(
        tags=TAGS, operation_id="webhook_endpoints_deliveries", summary="List an endpoint's deliveries",
        description="Newest first, each with how many attempts were made and how the last one went.",
        parameters=[FilterSerializer],
        responses={**AUTH_ERRORS, 200: _page_schema("WebhookDeliveryPage", OutputSerializer), 404: ENDPOINT_NOT_FOUND,
                   400: _error("Invalid filter or paging.", "invalid_request", "The request is not valid; see details.")},
        examples=[OpenApiExample("A page", response_only=True, value={
            "data": [DELIVERY_EXAMPLE], "page": 1, "per_page": 20, "has_more": False, "next_page": None})],
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        endpoint = access_endpoint(tenant=self.tenant, endpoint_id=endpoint_id)
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        filters = params.validated_data
        deliveries = delivery_list(tenant=self.tenant, endpoint_id=endpoint.pk, status=filters.get("status"))
        rows, has_more = paginate(deliveries, page=filters["page"], per_page=filters["per_page"])
        summaries = delivery_attempt_summaries(tenant=self.tenant, delivery_ids=[row.pk for row in rows])
        for row in rows:
            row.attempts_summary = summaries[row.pk]
        data = self.OutputSerializer(rows, many=True).data
        return Response(page_body(data, page=filters["page"], per_page=filters["per_page"], has_more=has_more))



class WebhookDeliveryDetailApi(TenantApiView):
    @extend_schema_serializer(component_name="WebhookDeliveryDetail")
    class OutputSerializer(DeliverySerializer):
        attempts = AttemptSerializer(many=True, source="attempts.all", help_text="Every attempt, newest first.")

    @extend_schema(
        tags=TAGS, operation_id="webhook_deliveries_retrieve", summary="Get a delivery with every attempt",
        responses={**AUTH_ERRORS, 200: OutputSerializer, 404: DELIVERY_NOT_FOUND},
        examples=[OpenApiExample("Delivery", response_only=True, value={
            **DELIVERY_EXAMPLE, "attempts": [DELIVERY_EXAMPLE["attempts"]["last"],
                                             {"status_code": None, "error": "timeout: no answer within 10 s",
                                              "response_excerpt": "", "duration_ms": 10004,
                                              "created_at": "2025-03-02T08:30:01Z"}]})],
    )
    def get(self, request: Request, delivery_id: int) -> Response:
        delivery = access_delivery(tenant=self.tenant, delivery_id=delivery_id)
        return Response(self.OutputSerializer(delivery).data)


class WebhookDeliveryReplayApi(TenantApiView):
    OutputSerializer = DeliverySerializer

    @extend_schema(
        tags=TAGS, operation_id="webhook_deliveries_replay", summary="Replay a delivery",
        description=(
            "Sends the same event (same id and payload, so receivers can dedupe) again, now, with a "
            "fresh 24 h retry cycle. Earlier attempts are kept."
        ),
        parameters=[IDEMPOTENCY_PARAMETER], request=None,
        responses={**AUTH_ERRORS, 202: DeliverySerializer, 404: DELIVERY_NOT_FOUND,
                   400: _error("The Idempotency-Key is not valid.", *IDEMPOTENCY_KEY_INVALID),
                   409: _error("The Idempotency-Key was used with another request.", *IDEMPOTENCY_KEY_REUSED)},
        examples=[OpenApiExample("Queued", response_only=True, status_codes=["202"], value={
            **DELIVERY_EXAMPLE, "status": "pending", "attempt_count": 0, "last_status_code": None,
            "next_attempt_at": "2025-03-02T09:00:00Z"})],
    )
    @idempotent
    def post(self, request: Request, delivery_id: int) -> Response:
        delivery = webhook_delivery_replay(tenant=self.tenant, delivery_id=delivery_id)
        return Response(self.OutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
