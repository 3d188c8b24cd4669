"""Campaigns over the REST API: create (and launch or schedule), list, read with the funnel,
recipients page by page, pause, resume and cancel."""

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
from apps.conversations.services.send import find_template, resolve_phone_number
from apps.core.exceptions import ApplicationError

from .dispatch import effective_pace
from .models import Campaign, CampaignRecipient
from .selectors import access_campaign, campaign_funnel, campaign_list, campaign_recipient_list
from .services import (
    MAX_RECIPIENTS,
    campaign_cancel,
    campaign_create,
    campaign_launch,
    campaign_pause,
    campaign_resume,
)

TAGS = ["Campaigns"]

FUNNEL_EXAMPLE = {
    "targeted": 1200, "pending": 0, "queued": 0, "accepted": 40, "sent": 1180, "delivered": 1100, "read": 640,
    "replied": 85, "failed": 12, "skipped": 8, "cancelled": 0, "progress": 1.0,
    "failed_by_code": [{"code": 131026, "title": "Message undeliverable", "count": 12,
                        "explanation": "WhatsApp could not deliver to this number: it may not be on WhatsApp, "
                                       "may not have accepted the latest terms, or uses an outdated app. Do not "
                                       "keep retrying."}],
    "skipped_by_reason": [{"reason": "opted_out", "label": "Opted out", "count": 8}],
}
CAMPAIGN_EXAMPLE = {
    "id": 7, "name": "Spring sale", "status": "completed", "status_reason": "", "paused_error_code": None,
    "phone_number_id": 1, "template": {"name": "spring_sale", "language": "en"},
    "audience": {"tags": ["vip"]}, "variable_mapping": {"1": {"source": "name", "fallback": "there"}},
    "messages_per_second": None, "pace": 80, "quiet_hours": {"start": "21:00", "end": "08:00"},
    "scheduled_at": None, "started_at": "2026-11-21T10:00:00Z", "completed_at": "2026-11-21T10:00:20Z",
    "created_at": "2026-11-21T09:58:00Z", "funnel": FUNNEL_EXAMPLE,
}
NOT_FOUND = _error("No such campaign in this workspace (another workspace's id is a 404 too).", "not_found",
                   "No campaign matches the given query.")
STATE = _error("The campaign is not in a state that allows this.", "campaign_state",
               "A completed campaign cannot be paused.", {"status": "completed", "action": "paused"})
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False,
    description="Repeat a POST safely: the same key and body answer with the first response.")


class FunnelSerializer(serializers.Serializer):
    targeted = serializers.IntegerField()
    pending = serializers.IntegerField(help_text="Planned (or not yet checked) and not handed to sending yet.")
    queued = serializers.IntegerField(help_text="Handed to sending, no answer from the provider yet.")
    accepted = serializers.IntegerField(help_text="Accepted by the provider, no delivery report yet.")
    sent = serializers.IntegerField(help_text="Accepted, sent, delivered or read.")
    delivered = serializers.IntegerField(help_text="Delivered or read.")
    read = serializers.IntegerField()
    replied = serializers.IntegerField(help_text="Recipients who wrote back within 72 hours.")
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    progress = serializers.FloatField(help_text="Share of recipients in a final state, 0 to 1.")
    failed_by_code = serializers.ListField(child=serializers.DictField(),
                                           help_text="{code, title, explanation, count}, most frequent first.")
    skipped_by_reason = serializers.ListField(child=serializers.DictField(),
                                              help_text="{reason, label, count}, most frequent first.")


@extend_schema_serializer(component_name="Campaign")
class CampaignSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Campaign.Status.choices)
    status_reason = serializers.CharField(help_text="Why it is paused or failed, in words.")
    paused_error_code = serializers.IntegerField(allow_null=True,
                                                 help_text="The provider error that paused it (131048, 131049).")
    phone_number_id = serializers.IntegerField()
    template = serializers.SerializerMethodField()
    audience = serializers.DictField()
    variable_mapping = serializers.DictField()
    messages_per_second = serializers.IntegerField(allow_null=True, help_text="The pace asked for; null: the number's budget.")
    pace = serializers.SerializerMethodField(help_text="The pace in effect: the lower of the above and the number's budget.")
    quiet_hours = serializers.DictField()
    scheduled_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_template(self, campaign: Campaign) -> dict[str, str]:
        return {"name": campaign.template.name, "language": campaign.template.language}

    def get_pace(self, campaign: Campaign) -> int:
        return effective_pace(campaign)


@extend_schema_serializer(component_name="CampaignWithFunnel")
class CampaignDetailSerializer(CampaignSerializer):
    funnel = serializers.SerializerMethodField()

    @extend_schema_field(FunnelSerializer)
    def get_funnel(self, campaign: Campaign) -> dict:
        return campaign_funnel(campaign=campaign)


def _detail(campaign: Campaign) -> dict:
    return CampaignDetailSerializer(campaign).data


class CampaignListCreateApi(TenantApiView):
    parser_classes = [StrictJSONParser]

    class FilterSerializer(PageParams):
        status = serializers.ChoiceField(choices=Campaign.Status.choices, required=False)

    @extend_schema_serializer(component_name="CampaignCreate")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        phone_number_id = serializers.CharField(required=False, max_length=64,
                                                help_text="The number to send from; optional when the workspace has one.")
        template = serializers.DictField(child=serializers.CharField(max_length=512),
                                         help_text='{"name": "spring_sale", "language": "en"}: an approved template '
                                                   "of the number's WhatsApp Business Account.")
        audience = serializers.DictField(required=False, help_text=(
            "Contacts to send to: tags (every one), segment_id, filters (the contacts filter shape) -- all "
            "combined -- plus contact_ids (added)."))
        recipients = serializers.ListField(child=serializers.JSONField(), required=False, max_length=MAX_RECIPIENTS,
                                           help_text='Or an explicit list of up to 100,000 {"to": "+1...", '
                                                     '"variables": {"1": "Ana"}} (values win over the mapping).')
        variable_mapping = serializers.DictField(required=False, help_text=(
            'Template variable -> {"source": "name"|"first_name"|"wa_id"|"attribute"|"literal", "key", "value", '
            '"fallback"}.'))
        messages_per_second = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=1000,
                                                       help_text="Pace; at most the number's budget.")
        quiet_hours = serializers.DictField(required=False, child=serializers.CharField(max_length=5),
                                            help_text='{"start": "21:00", "end": "08:00"} in the workspace\'s time '
                                                      "zone: nothing is sent in between.")
        scheduled_at = serializers.DateTimeField(required=False, allow_null=True, help_text=(
            "Start later; a time without an offset is read in the workspace's time zone."))
        launch = serializers.BooleanField(default=True, help_text="false: keep it as a draft.")

    @extend_schema(
        tags=TAGS, operation_id="campaigns_list", summary="List campaigns", parameters=[FilterSerializer],
        responses={**AUTH_ERRORS, 200: inline_serializer("CampaignPage", {
            "data": CampaignSerializer(many=True), "page": serializers.IntegerField(),
            "per_page": serializers.IntegerField(), "has_more": serializers.BooleanField(),
            "next_page": serializers.IntegerField(allow_null=True)}), 400: _error(
            "The query is not valid.", "invalid_request", "The request is not valid; see details.",
            {"per_page": ["Ensure this value is less than or equal to 100."]})},
        examples=[OpenApiExample("A page", response_only=True, value={
            "data": [{k: v for k, v in CAMPAIGN_EXAMPLE.items() if k != "funnel"}], "page": 1, "per_page": 20,
            "has_more": False, "next_page": None})],
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        filters = params.validated_data
        campaigns = campaign_list(tenant=self.tenant)
        if filters.get("status"):
            campaigns = campaigns.filter(status=filters["status"])
        rows, has_more = paginate(campaigns, page=filters["page"], per_page=filters["per_page"])
        return Response(page_body(CampaignSerializer(rows, many=True).data, page=filters["page"],
                                  per_page=filters["per_page"], has_more=has_more))

    @extend_schema(
        tags=TAGS, operation_id="campaigns_create", summary="Create a campaign (and launch or schedule it)",
        description=(
            "Validates everything up front: an approved template of the number's account, a mapping that fills "
            "every variable (for an audience), a pace within the number's budget, a schedule in the future. "
            "With `launch` (the default) it starts now, or at `scheduled_at`. Recipients are checked while "
            "planning: opted-out, invalid, duplicate and incomplete ones are skipped and counted by reason."),
        parameters=[IDEMPOTENCY_PARAMETER], request=InputSerializer,
        responses={**AUTH_ERRORS, 201: CampaignDetailSerializer,
                   400: _error("The campaign is not valid.", "invalid_variable_mapping",
                               "Variable {{2}} has no value: map it to a contact field or give a text.",
                               {"problems": ["Variable {{2}} has no value: map it to a contact field or give a text."]},
                               ("invalid_pace", "The pace must be between 1 and the number's budget of 80 "
                                "messages/s.", {"max": 80}),
                               ("invalid_schedule", "The schedule (2026-01-01 09:00 UTC) is in the past.", None),
                               ("empty_audience", "Choose an audience: tags, a segment, filters, contacts or a "
                                "list of numbers.", None),
                               IDEMPOTENCY_KEY_INVALID),
                   404: _error("The number or segment is not in this workspace.", "phone_number_not_found",
                               "No phone number 99 in this workspace."),
                   409: _error("The Idempotency-Key was used with another body.", *IDEMPOTENCY_KEY_REUSED),
                   422: _error("The template is unknown or not approved, or no number was named.",
                               "template_not_approved", "There is no template 'spring_sale' in language 'en' for "
                               "this number's account.", {"name": "spring_sale", "language": "en"},
                               ("phone_number_not_found", "Say which phone number to send from (phone_number_id): "
                                "this workspace has several.", None))},
        examples=[
            OpenApiExample("To a tag, now", request_only=True, value={
                "name": "Spring sale", "template": {"name": "spring_sale", "language": "en"},
                "audience": {"tags": ["vip"]},
                "variable_mapping": {"1": {"source": "name", "fallback": "there"},
                                     "2": {"source": "attribute", "key": "city", "fallback": "your city"}},
                "messages_per_second": 50, "quiet_hours": {"start": "21:00", "end": "08:00"}}),
            OpenApiExample("An explicit list, scheduled", request_only=True, value={
                "name": "Renewals", "phone_number_id": "1", "template": {"name": "renewal", "language": "en"},
                "recipients": [{"to": "+14155550101", "variables": {"1": "Ana", "2": "12 May"}},
                               {"to": "+351912345678", "variables": {"1": "Rui", "2": "14 May"}}],
                "scheduled_at": "2026-12-01T09:00:00"}),
            OpenApiExample("Created", value=CAMPAIGN_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        number = resolve_phone_number(tenant=self.tenant, phone_number=data.get("phone_number_id"))
        name, language = data["template"].get("name", ""), data["template"].get("language", "")
        if not name or not language:
            raise ApplicationError("template needs a name and a language.", code="invalid_request",
                                   details={"template": ["name and language are required."]})
        template = find_template(tenant=self.tenant, number=number, name=name, language=language)
        if template is None:
            raise ApplicationError(f"There is no template {name!r} in language {language!r} for this number's "
                                   "account.", code="template_not_approved", http_status=422,
                                   details={"name": name, "language": language})
        campaign = campaign_create(
            tenant=self.tenant, name=data["name"], phone_number=number, template=template,
            audience=data.get("audience") or {}, variable_mapping=data.get("variable_mapping") or {},
            messages_per_second=data.get("messages_per_second"), quiet_hours=data.get("quiet_hours") or None,
            scheduled_at=data.get("scheduled_at"), recipients=data.get("recipients"),
        )
        if data["launch"]:
            campaign = campaign_launch(campaign=campaign)
        return Response(_detail(access_campaign(tenant=self.tenant, campaign_id=campaign.pk)),
                        status=status.HTTP_201_CREATED)


class CampaignDetailApi(TenantApiView):
    @extend_schema(
        tags=TAGS, operation_id="campaigns_retrieve", summary="Get a campaign with its funnel",
        responses={**AUTH_ERRORS, 200: CampaignDetailSerializer, 404: NOT_FOUND},
        examples=[OpenApiExample("Campaign", value=CAMPAIGN_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        return Response(_detail(access_campaign(tenant=self.tenant, campaign_id=campaign_id)))


@extend_schema_serializer(component_name="CampaignRecipient")
class RecipientSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    to = serializers.CharField(help_text="The number as given, or the contact's.")
    contact_id = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=CampaignRecipient.Status.choices)
    skip_reason = serializers.CharField()
    error_code = serializers.IntegerField(allow_null=True)
    variables = serializers.DictField()
    replied_at = serializers.DateTimeField(allow_null=True)


class CampaignRecipientListApi(TenantApiView):
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(
            choices=[*CampaignRecipient.Status.values, "replied"], required=False,
            help_text="A recipient state, or a funnel stage (sent and delivered include later states).")
        skip_reason = serializers.ChoiceField(choices=CampaignRecipient.SkipReason.choices, required=False)
        error_code = serializers.IntegerField(required=False, min_value=0, max_value=2_147_483_647)
        after_id = serializers.IntegerField(required=False, min_value=0, max_value=2**62,
                                            help_text="Keyset: the last id of the previous page.")
        limit = serializers.IntegerField(required=False, default=100, min_value=1, max_value=500)

    @extend_schema(
        tags=TAGS, operation_id="campaigns_recipients_list", summary="List a campaign's recipients",
        description="In id order. Pass the last id back as `after_id` for the next page; `next_after_id` is "
                    "null on the last page.",
        parameters=[FilterSerializer],
        responses={**AUTH_ERRORS, 200: inline_serializer("CampaignRecipientPage", {
            "data": RecipientSerializer(many=True), "next_after_id": serializers.IntegerField(allow_null=True)}),
                   404: NOT_FOUND,
                   400: _error("The query is not valid.", "invalid_request", "The request is not valid; see details.",
                               {"limit": ["Ensure this value is less than or equal to 500."]})},
        examples=[OpenApiExample("A page", response_only=True, value={"data": [{
            "id": 301, "to": "14155550101", "contact_id": 42, "status": "failed", "skip_reason": "",
            "error_code": 131026, "variables": {"1": "Ana"}, "replied_at": None}], "next_after_id": None})],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = access_campaign(tenant=self.tenant, campaign_id=campaign_id)
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data
        rows = campaign_recipient_list(campaign=campaign, status=query.get("status"),
                                       skip_reason=query.get("skip_reason"), error_code=query.get("error_code"),
                                       after_id=query.get("after_id"), limit=query["limit"] + 1)
        more = len(rows) > query["limit"]
        rows = rows[:query["limit"]]
        return Response({"data": RecipientSerializer(rows, many=True).data,
                         "next_after_id": rows[-1].pk if more and rows else None})


def _action(name: str, verb: str, description: str, service):
    @extend_schema(
        tags=TAGS, operation_id=f"campaigns_{name}", summary=f"{verb} a campaign", description=description,
        request=None, parameters=[IDEMPOTENCY_PARAMETER],
        responses={**AUTH_ERRORS, 200: CampaignDetailSerializer, 404: NOT_FOUND,
                   400: _error("The Idempotency-Key is not valid.", *IDEMPOTENCY_KEY_INVALID),
                   409: _error("The campaign's state does not allow this (or the Idempotency-Key was used with "
                               "another body).", "campaign_state", "A completed campaign cannot be paused.",
                               {"status": "completed", "action": "paused"}, IDEMPOTENCY_KEY_REUSED)},
    )
    @idempotent
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = access_campaign(tenant=self.tenant, campaign_id=campaign_id)
        service(campaign=campaign)
        return Response(_detail(access_campaign(tenant=self.tenant, campaign_id=campaign_id)))

    return type(f"Campaign{verb}Api", (TenantApiView,), {"post": post, "__doc__": description})


CampaignPauseApi = _action("pause", "Pause", "Stops sending within a second; messages already handed to the "
                           "provider are not recalled.", campaign_pause)
CampaignResumeApi = _action("resume", "Resume", "Sending continues where it stopped; nobody gets the message twice.",
                            campaign_resume)
CampaignCancelApi = _action("cancel", "Cancel", "Stops for good: recipients not yet sent to are cancelled.",
                            campaign_cancel)
