"""Contacts over the REST API: list with filters, create, read, change, delete, and bulk upsert
of up to 1,000 contacts per call."""

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
from apps.core.phone import InvalidPhoneNumber, normalize_wa_id

from .models import Contact
from .selectors import access_contact, contact_list
from .services import (
    ATTRIBUTE_MODES,
    MAX_BULK_ROWS,
    MAX_TAGS_PER_CONTACT,
    contact_create,
    contact_delete,
    contact_update,
    contacts_bulk_upsert,
)

TAGS = ["Contacts"]

CONTACT_EXAMPLE = {
    "id": 42, "wa_id": "16505551234", "name": "Jessica Smith", "profile_name": "Jess",
    "attributes": {"plan": "gold", "city": "Lisbon"}, "tags": ["customer", "vip"],
    "opt_in_status": "opted_in", "opt_in_source": "checkout", "opted_in_at": "2025-03-01T10:00:00Z",
    "opted_out_at": None, "created_at": "2025-03-01T10:00:00Z", "updated_at": "2025-03-02T08:30:00Z",
}




NOT_FOUND = _error("No such contact in this workspace (another workspace's id is a 404 too).",
                   "not_found", "No contact matches the given query.")
INVALID = _error("The request is not valid.", "invalid_request", "The request is not valid; see details.",
                 {"wa_id": ["'12' is not a possible phone number in international format."]})
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False,
    description="Repeat a POST safely: the same key and body answer with the first response.")


def _normalized_number(attrs: dict) -> str:
    """``wa_id`` or ``phone`` (exactly one), as international digits."""
    wa_id, phone = attrs.pop("wa_id", ""), attrs.pop("phone", "")
    if wa_id and phone:
        raise serializers.ValidationError({"phone": ["Give wa_id or phone, not both."]})
    if not (wa_id or phone):
        raise serializers.ValidationError({"wa_id": ["wa_id or phone is required."]})
    field = "wa_id" if wa_id else "phone"
    # A wa_id is international by definition; only a phone may be national.
    region = attrs.pop("default_country", None) or None
    try:
        return normalize_wa_id(wa_id, default_region=None) if wa_id else normalize_wa_id(phone, default_region=region)
    except InvalidPhoneNumber as exc:
        raise serializers.ValidationError({field: [exc.message]}) from exc


@extend_schema_field(serializers.ListField(child=serializers.CharField()))
class TagNamesField(serializers.Field):
    """A contact's tag names (from the prefetched ``tags``)."""

    def to_representation(self, value) -> list[str]:
        return [tag.name for tag in value.all()]


class ContactDetailApi(TenantApiView):
    parser_classes = [StrictJSONParser]

    @extend_schema_serializer(component_name="Contact")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        wa_id = serializers.CharField(help_text="WhatsApp id: international number, digits only.")
        name = serializers.CharField()
        profile_name = serializers.CharField(help_text="The name on the WhatsApp profile, from inbound messages.")
        attributes = serializers.DictField()
        tags = TagNamesField(read_only=True)
        opt_in_status = serializers.ChoiceField(choices=Contact.OptIn.choices)
        opt_in_source = serializers.CharField()
        opted_in_at = serializers.DateTimeField(allow_null=True)
        opted_out_at = serializers.DateTimeField(allow_null=True)
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()

    @extend_schema_serializer(component_name="ContactUpdate")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(required=False, allow_blank=True, max_length=200)
        attributes = serializers.DictField(
            required=False, help_text="Merged into the current attributes (a null value removes a key), "
                                      "or replaces them with attributes_mode=replace.")
        attributes_mode = serializers.ChoiceField(choices=ATTRIBUTE_MODES, default="merge")
        tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False,
                                     max_length=MAX_TAGS_PER_CONTACT,
                                     help_text="The contact's tags become exactly these (created as needed).")
        opt_in_status = serializers.ChoiceField(choices=Contact.OptIn.choices, required=False)
        opt_in_source = serializers.CharField(required=False, max_length=64,
                                              help_text="Where the consent came from; 'api' when omitted.")
        opt_in_at = serializers.DateTimeField(required=False, help_text="When consent changed; now when omitted.")

    @extend_schema(
        tags=TAGS, operation_id="contacts_retrieve", summary="Get a contact",
        responses={**AUTH_ERRORS, 200: OutputSerializer, 404: NOT_FOUND},
        examples=[OpenApiExample("Contact", value=CONTACT_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, contact_id: int) -> Response:
        contact = access_contact(tenant=self.tenant, contact_id=contact_id)
        return Response(self.OutputSerializer(contact).data)

    @extend_schema(
        tags=TAGS, operation_id="contacts_partial_update", summary="Change a contact",
        description="Only the fields given change. The number (wa_id) cannot be changed.",
        request=InputSerializer, responses={**AUTH_ERRORS, 200: OutputSerializer, 400: INVALID, 404: NOT_FOUND},
        examples=[
            OpenApiExample("Opt out and retag", request_only=True, value={
                "attributes": {"city": "Porto", "old_key": None}, "tags": ["customer"],
                "opt_in_status": "opted_out", "opt_in_source": "support call"}),
            OpenApiExample("Contact", value=CONTACT_EXAMPLE, response_only=True),
        ],
    )
    def patch(self, request: Request, contact_id: int) -> Response:
        contact = access_contact(tenant=self.tenant, contact_id=contact_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact = contact_update(tenant=self.tenant, contact=contact, **serializer.validated_data)
        return Response(self.OutputSerializer(access_contact(tenant=self.tenant, contact_id=contact.pk)).data)

    @extend_schema(
        tags=TAGS, operation_id="contacts_destroy", summary="Delete a contact",
        description="Deletes the contact with its conversations and messages.",
        responses={**AUTH_ERRORS, 204: None, 404: NOT_FOUND},
    )
    def delete(self, request: Request, contact_id: int) -> Response:
        contact = access_contact(tenant=self.tenant, contact_id=contact_id)
        contact_delete(tenant=self.tenant, contact=contact)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ContactListCreateApi(TenantApiView):
    parser_classes = [StrictJSONParser]

    class FilterSerializer(PageParams):
        search = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                       help_text="Name, profile name, or the start of the number.")
        tag = serializers.ListField(child=serializers.CharField(max_length=64), required=False,
                                    help_text="Repeatable; contacts carrying every given tag.")
        opt_in_status = serializers.ChoiceField(choices=Contact.OptIn.choices, required=False)
        updated_since = serializers.DateTimeField(required=False, help_text="Changed at or after this time.")

    @extend_schema_serializer(component_name="ContactCreate")
    class InputSerializer(serializers.Serializer):
        wa_id = serializers.CharField(required=False, max_length=32,
                                      help_text="International number (country code first), with or without '+'. Or give phone.")
        phone = serializers.CharField(required=False, max_length=32,
                                      help_text="A number as people write it; national numbers need default_country.")
        default_country = serializers.CharField(required=False, min_length=2, max_length=2,
                                                help_text="ISO 3166 alpha-2 region for a national phone, e.g. 'IN'.")
        name = serializers.CharField(required=False, allow_blank=True, max_length=200)
        attributes = serializers.DictField(required=False)
        tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False,
                                     max_length=MAX_TAGS_PER_CONTACT)
        opt_in_status = serializers.ChoiceField(choices=Contact.OptIn.choices, required=False)
        opt_in_source = serializers.CharField(required=False, max_length=64)
        opt_in_at = serializers.DateTimeField(required=False)

        def validate(self, attrs: dict) -> dict:
            attrs["wa_id"] = _normalized_number(attrs)
            return attrs

    OutputSerializer = ContactDetailApi.OutputSerializer

    @extend_schema(
        tags=TAGS, operation_id="contacts_list", summary="List contacts",
        parameters=[FilterSerializer],
        responses={**AUTH_ERRORS, 200: inline_serializer("ContactPage", {
            "data": ContactDetailApi.OutputSerializer(many=True),
            "page": serializers.IntegerField(), "per_page": serializers.IntegerField(),
            "has_more": serializers.BooleanField(), "next_page": serializers.IntegerField(allow_null=True),
        }), 400: INVALID},
        examples=[OpenApiExample("A page", response_only=True, value={
            "data": [CONTACT_EXAMPLE], "page": 1, "per_page": 20, "has_more": False, "next_page": None})],
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        filters = params.validated_data
        contacts = contact_list(tenant=self.tenant, search=filters.get("search", ""), tags=filters.get("tag"),
                                opt_in_status=filters.get("opt_in_status"),
                                updated_since=filters.get("updated_since"))
        rows, has_more = paginate(contacts, page=filters["page"], per_page=filters["per_page"])
        return Response(page_body(self.OutputSerializer(rows, many=True).data, page=filters["page"],
                                  per_page=filters["per_page"], has_more=has_more))

    @extend_schema(
        tags=TAGS, operation_id="contacts_create", summary="Create a contact",
        parameters=[IDEMPOTENCY_PARAMETER], request=InputSerializer,
        responses={**AUTH_ERRORS, 201: ContactDetailApi.OutputSerializer,
                   400: _error("The request is not valid.", "invalid_request", "The request is not valid; see details.",
                               {"wa_id": ["'12' is not a possible phone number in international format."]},
                               IDEMPOTENCY_KEY_INVALID),
                   409: _error("The workspace already has a contact with this number (or the Idempotency-Key was "
                               "used with another body).", "contact_exists",
                               "A contact with the number +16505551234 already exists.",
                               {"wa_id": "16505551234", "contact_id": 42}, IDEMPOTENCY_KEY_REUSED)},
        examples=[
            OpenApiExample("New contact", request_only=True, value={
                "phone": "+1 (650) 555-1234", "name": "Jessica Smith", "attributes": {"plan": "gold"},
                "tags": ["customer", "vip"], "opt_in_status": "opted_in", "opt_in_source": "checkout"}),
            OpenApiExample("Created", value=CONTACT_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact = contact_create(tenant=self.tenant, **serializer.validated_data)
        contact = access_contact(tenant=self.tenant, contact_id=contact.pk)
        return Response(self.OutputSerializer(contact).data, status=status.HTTP_201_CREATED)


class ContactBulkUpsertApi(TenantApiView):
    parser_classes = [StrictJSONParser]

    @extend_schema_serializer(component_name="ContactBulkUpsert")
    class InputSerializer(serializers.Serializer):
        contacts = serializers.ListField(
            child=serializers.JSONField(), max_length=MAX_BULK_ROWS,
            help_text="Up to 1,000 objects with wa_id (international) or phone (national numbers read with "
                      "default_country), and optionally name, attributes, tags, "
                      "opt_in_status, opt_in_source. Fields left out are not touched on existing contacts; "
                      "tags, when given, become the contact's tags.")
        default_country = serializers.CharField(required=False, min_length=2, max_length=2,
                                                help_text="ISO 3166 alpha-2 region for national phone numbers.")
        attributes_mode = serializers.ChoiceField(choices=ATTRIBUTE_MODES, default="merge")

    @extend_schema_serializer(component_name="ContactBulkUpsertResult")
    class OutputSerializer(serializers.Serializer):
        created = serializers.IntegerField()
        updated = serializers.IntegerField(help_text="Rows that matched an existing contact.")
        errors = inline_serializer("ContactBulkUpsertRowError", {
            "index": serializers.IntegerField(), "code": serializers.CharField(),
            "message": serializers.CharField(),
        }, many=True)

    @extend_schema(
        tags=TAGS, operation_id="contacts_bulk_upsert", summary="Create or update up to 1,000 contacts",
        description=(
            "Contacts are matched by number. A row that cannot be applied (bad number, bad field) is "
            "reported in `errors` with its index and the rest are applied. When a number appears "
            "more than once, the first row is applied and later ones are reported as "
            "`duplicate_in_batch`. More than 1,000 rows is a 400."
        ),
        parameters=[IDEMPOTENCY_PARAMETER], request=InputSerializer,
        responses={**AUTH_ERRORS, 200: OutputSerializer, 400: _error(
            "The body is not valid (for example more than 1,000 rows).", "invalid_request",
            "The request is not valid; see details.", {"contacts": ["Ensure this field has no more than 1000 elements."]},
            IDEMPOTENCY_KEY_INVALID),
            409: _error("Other requests changed the same numbers at the same moment (send the batch again), or "
                        "the Idempotency-Key was used with another body.", "concurrent_update",
                        "Other requests are changing these contacts right now; send the batch again.", None,
                        IDEMPOTENCY_KEY_REUSED)},
        examples=[
            OpenApiExample("Import", request_only=True, value={
                "default_country": "IN",
                "contacts": [
                    {"phone": "98765 43210", "name": "Asha", "tags": ["import-2025"], "opt_in_status": "opted_in",
                     "opt_in_source": "store signup"},
                    {"wa_id": "16505551234", "attributes": {"plan": "gold"}},
                    {"phone": "12"},
                ]}),
            OpenApiExample("Result", response_only=True, value={
                "created": 1, "updated": 1,
                "errors": [{"index": 2, "code": "invalid_phone_number",
                            "message": "'12' is not a possible phone number in international format."}]}),
        ],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        report = contacts_bulk_upsert(tenant=self.tenant, rows=data["contacts"],
                                      default_country=data.get("default_country"),
                                      attributes_mode=data["attributes_mode"])
        return Response(self.OutputSerializer(report).data)
