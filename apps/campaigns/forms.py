"""The campaign form's fields <-> the arguments of ``services.campaign_create``.

One POST carries every step of the form: the basics (``name``, ``phone_number``, ``template``),
the audience (``audience_kind`` = ``contacts`` with ``segment``, ``tag``/``tag_mode`` and
attribute rows ``a_key``/``a_op``/``a_val`` in the contacts page's shape, or ``csv`` with
``csv_file``), the variable mapping (``map-<variable>-source|key|value|fallback``), the
schedule (``schedule`` = ``now`` | ``later`` with ``scheduled_at`` as the tenant's local
``YYYY-MM-DDTHH:MM``), the pace (``messages_per_second``) and quiet hours (``quiet``,
``quiet_start``, ``quiet_end``). Nothing here writes; errors are collected per field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.http import QueryDict

from apps.contacts.forms import describe_filters, filters_from_query
from apps.contacts.models import AttributeDefinition, Segment
from apps.core.exceptions import ApplicationError
from apps.message_templates.models import MessageTemplate
from apps.phone_numbers.models import PhoneNumber
from apps.tenants.models import Tenant

from .variables import template_variables

SOURCE_CHOICES = (
    ("name", "Contact name"),
    ("first_name", "First name"),
    ("wa_id", "WhatsApp number"),
    ("attribute", "Contact attribute"),
    ("literal", "Fixed text"),
)
SCHEDULE_FORMAT = "%Y-%m-%dT%H:%M"

# Which part of the form a service error belongs next to.
FIELD_FOR_CODE = {
    "invalid_name": "name",
    "phone_number_not_found": "phone_number",
    "template_not_found": "template",
    "template_not_approved": "template",
    "template_not_supported": "template",
    "template_parameters_mismatch": "mapping",
    "invalid_variable_mapping": "mapping",
    "missing_variable": "mapping",
    "empty_audience": "audience",
    "invalid_audience": "audience",
    "segment_not_found": "audience",
    "invalid_filter": "audience",
    "invalid_csv": "audience",
    "invalid_recipients": "audience",
    "too_many_recipients": "audience",
    "invalid_pace": "pace",
    "invalid_quiet_hours": "quiet",
    "invalid_schedule": "schedule",
}


def field_for(error: ApplicationError) -> str:
    return FIELD_FOR_CODE.get(error.code, "form")


@dataclass
class CampaignInput:
    """What the form said, cleaned as far as the form can (the service checks the rules)."""

    name: str = ""
    phone_number: PhoneNumber | None = None
    template: MessageTemplate | None = None
    audience_kind: str = "contacts"
    audience: dict[str, Any] = field(default_factory=dict)
    audience_words: list[str] = field(default_factory=list)
    segment: Segment | None = None
    csv_name: str = ""
    recipients: list[dict] | None = None
    variables: list[str] = field(default_factory=list)
    mapping: dict[str, dict[str, str]] = field(default_factory=dict)
    schedule: str = "now"
    scheduled_at: datetime | None = None
    scheduled_at_text: str = ""
    messages_per_second: int | None = None
    quiet: bool = False
    quiet_hours: dict[str, str] | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)
    # The raw attribute/tag inputs, to draw the form again as it was typed.
    tags: list[str] = field(default_factory=list)
    tag_mode: str = "all"
    attribute_rows: list[dict[str, Any]] = field(default_factory=list)

    def add_error(self, where: str, message: str) -> None:
        self.errors.setdefault(where, []).append(message)

    @property
    def valid(self) -> bool:
        return not self.errors


def number_choices(*, tenant: Tenant):
    return PhoneNumber.objects.for_tenant(tenant).exclude(status=PhoneNumber.Status.DISABLED).order_by("display_number")


def approved_templates(*, tenant: Tenant, number: PhoneNumber | None):
    """The approved templates of ``number``'s WhatsApp Business Account, the only ones it may send."""
    if number is None:
        return MessageTemplate.objects.for_tenant(tenant).none()
    return (MessageTemplate.objects.for_tenant(tenant)
            .filter(status=MessageTemplate.Status.APPROVED, waba_id=number.waba_id)
            .order_by("name", "language"))


def _pick(qs, raw: Any):
    text = str(raw or "").strip()
    if not text.isdigit() or len(text) > 18:
        return None
    return qs.filter(pk=int(text)).first()


def default_mapping(template: MessageTemplate | None) -> dict[str, dict[str, str]]:
    """A first guess a marketer can keep: the first variable is the contact's name, the others
    are the template's own example values as fixed text."""
    if template is None:
        return {}
    examples = template_examples(template)
    mapping: dict[str, dict[str, str]] = {}
    for index, name in enumerate(template_variables(template=template)):
        lowered = name.lower()
        if lowered in ("first_name", "firstname"):
            mapping[name] = {"source": "first_name", "fallback": "there"}
        elif lowered in ("name", "customer_name", "full_name") or (index == 0 and name == "1"):
            mapping[name] = {"source": "name", "fallback": "there"}
        elif lowered in ("phone", "number", "wa_id"):
            mapping[name] = {"source": "wa_id"}
        else:
            mapping[name] = {"source": "literal", "value": examples.get(name, "")}
    return mapping


def template_examples(template: MessageTemplate) -> dict[str, str]:
    """The template's example values by variable name, from Meta's ``example`` blocks."""
    examples: dict[str, str] = {}
    for component in template.components or []:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).upper()
        example = component.get("example") or {}
        if kind == "BODY":
            positional = (example.get("body_text") or [[]])[0] if isinstance(example.get("body_text"), list) else []
            for i, value in enumerate(positional or [], start=1):
                examples[str(i)] = str(value)
            for item in example.get("body_text_named_params") or []:
                if isinstance(item, dict):
                    examples[str(item.get("param_name"))] = str(item.get("example", ""))
        elif kind == "HEADER":
            for i, value in enumerate(example.get("header_text") or [], start=1):
                examples[f"header.{i}"] = str(value)
            for item in example.get("header_text_named_params") or []:
                if isinstance(item, dict):
                    examples[f"header.{item.get('param_name')}"] = str(item.get("example", ""))
    return examples


def mapping_from_post(data: QueryDict, variables: list[str]) -> dict[str, dict[str, str]]:
    mapping: dict[str, dict[str, str]] = {}
    for name in variables:
        prefix = f"map-{name}-"
        source = data.get(prefix + "source", "literal")
        rule = {"source": source}
        # Only the inputs the chosen source uses (the others stay in the form, hidden).
        parts = {"attribute": ("key", "fallback"), "literal": ("value",)}.get(source, ("fallback",))
        for part in parts:
            value = data.get(prefix + part, "").strip()
            if value:
                rule[part] = value
        mapping[name] = rule
    return mapping


def parse_campaign_form(*, tenant: Tenant, data: QueryDict, files=None) -> CampaignInput:
    """Read every step of the form. A CSV upload is parsed here (with the engine's parser) so
    its errors are shown next to the file field."""
    from .services import campaign_recipients_csv_parse

    got = CampaignInput()
    got.name = data.get("name", "").strip()[:200]
    got.phone_number = _pick(number_choices(tenant=tenant), data.get("phone_number"))
    if got.phone_number is None:
        numbers = list(number_choices(tenant=tenant)[:2])
        if len(numbers) == 1 and not data.get("phone_number"):
            got.phone_number = numbers[0]
    got.template = _pick(approved_templates(tenant=tenant, number=got.phone_number), data.get("template"))
    if got.template is not None:
        got.variables = template_variables(template=got.template)
        got.mapping = mapping_from_post(data, got.variables)

    got.audience_kind = "csv" if data.get("audience_kind") == "csv" else "contacts"
    if got.audience_kind == "contacts":
        definitions = list(AttributeDefinition.objects.for_tenant(tenant))
        parsed = filters_from_query(data, definitions)
        got.tags = [t for t in data.getlist("tag") if t.strip()]
        got.tag_mode = "any" if data.get("tag_mode") == "any" else "all"
        got.attribute_rows = parsed.rows
        for message in parsed.errors:
            got.add_error("audience", message)
        parsed.filters.pop("q", None)
        parsed.filters.pop("opt_in", None)
        if parsed.filters:
            got.audience["filters"] = parsed.filters
        got.segment = _pick(Segment.objects.for_tenant(tenant), data.get("segment"))
        if got.segment is not None:
            got.audience["segment_id"] = got.segment.pk
            got.audience_words.append(f"in segment “{got.segment.name}”")
        got.audience_words += describe_filters(parsed.filters)
    else:
        upload = (files or {}).get("csv_file")
        if upload is not None:
            got.csv_name = upload.name
            try:
                got.recipients = campaign_recipients_csv_parse(tenant=tenant, file=upload)
            except ApplicationError as exc:
                got.add_error("audience", exc.message)
            if hasattr(upload, "seek"):
                upload.seek(0)
        got.audience_words.append(f"numbers from {got.csv_name}" if got.csv_name else "a CSV upload")

    got.schedule = "later" if data.get("schedule") == "later" else "now"
    got.scheduled_at_text = data.get("scheduled_at", "").strip()
    if got.schedule == "later":
        if not got.scheduled_at_text:
            got.add_error("schedule", "Pick the date and time to send at.")
        else:
            try:
                # Naive on purpose: the service reads it in the workspace's time zone.
                got.scheduled_at = datetime.strptime(got.scheduled_at_text[:16], SCHEDULE_FORMAT)
            except ValueError:
                got.add_error("schedule", "That is not a date and time (YYYY-MM-DD HH:MM).")

    pace = data.get("messages_per_second", "").strip()
    if pace:
        if pace.isdigit() and len(pace) < 7:
            got.messages_per_second = int(pace)
        else:
            got.add_error("pace", "The pace is a whole number of messages per second.")
    got.quiet = data.get("quiet") in ("on", "1", "true")
    if got.quiet:
        got.quiet_hours = {"start": data.get("quiet_start", "").strip(), "end": data.get("quiet_end", "").strip()}
    return got
