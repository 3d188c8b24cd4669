from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.exceptions import ApplicationError
from apps.phone_numbers.models import PhoneNumber
from apps.providers.backends import get_backend
from apps.providers.events import TemplateStatusUpdate
from apps.providers.exceptions import ProviderError, UnsupportedFeature
from apps.tenants.models import Tenant

from .models import MessageTemplate


@transaction.atomic
def template_status_apply(*, phone_number: PhoneNumber, update: TemplateStatusUpdate) -> MessageTemplate | None:
    """A provider says a template's status changed (approved, rejected, paused, ...)."""
    from apps.webhooks.services import event_emit

    templates = MessageTemplate.objects.for_tenant(phone_number.tenant_id).filter(waba_id=phone_number.waba_id)
    template = None
    if update.template_id:
        template = templates.filter(provider_template_id=update.template_id).first()
    if template is None and update.name:
        template = templates.filter(name=update.name, language=update.language).first()
    if template is None:
        return None
    status = update.status.upper()
    if status not in MessageTemplate.Status.values or status == template.status:
        return template
    previous = template.status
    template.status = status
    template.rejected_reason = (update.reason or "") if status == MessageTemplate.Status.REJECTED else ""
    if update.template_id and not template.provider_template_id:
        template.provider_template_id = update.template_id
    template.last_synced_at = timezone.now()
    template.save(update_fields=["status", "rejected_reason", "provider_template_id", "last_synced_at", "updated_at"])
    event_emit(tenant=phone_number.tenant, type="template.status_changed", data={
        "id": template.pk, "name": template.name, "language": template.language, "status": status,
        "previous_status": previous, "reason": update.reason,
    })
    return template


# --- sync from the provider ------------------------------------------------------------------

@dataclass
class TemplateSyncReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0  # entries without a name or language


@dataclass(frozen=True)
class _Remote:
    name: str
    language: str
    status: str | None
    category: str | None
    parameter_format: str | None
    components: list[dict[str, Any]]
    provider_template_id: str
    quality_rating: str | None
    rejected_reason: str | None


def _upper(value: Any) -> str:
    return str(value or "").strip().upper()


def _gupshup_components(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Meta-shaped components from a Gupshup template (``containerMeta`` when present, else
    the body text in ``data``)."""
    meta = item.get("containerMeta")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            meta = None
    body = (meta or {}).get("data") if isinstance(meta, dict) else None
    components: list[dict[str, Any]] = []
    if isinstance(meta, dict) and meta.get("header"):
        components.append({"type": "HEADER", "format": "TEXT", "text": str(meta["header"])})
    components.append({"type": "BODY", "text": str(body if body is not None else item.get("data") or "")})
    if isinstance(meta, dict) and meta.get("footer"):
        components.append({"type": "FOOTER", "text": str(meta["footer"])})
    if isinstance(meta, dict) and isinstance(meta.get("buttons"), list) and meta["buttons"]:
        components.append({"type": "BUTTONS", "buttons": [b for b in meta["buttons"] if isinstance(b, dict)]})
    return components


def _remote(item: dict[str, Any]) -> _Remote | None:
    """One provider template in Parley's terms: Meta's fields (name, language, status,
    category, components, id, parameter_format, quality_score, rejected_reason) or Gupshup's
    (elementName, languageCode, status, category, id, containerMeta/data)."""
    if "elementName" in item:
        name, language = item.get("elementName"), item.get("languageCode")
        components = _gupshup_components(item)
        quality = None
        reason = item.get("reason")
    else:
        name, language = item.get("name"), item.get("language")
        components = [c for c in item.get("components") or [] if isinstance(c, dict)]
        score = item.get("quality_score")
        quality = _upper(score.get("score")) if isinstance(score, dict) and score.get("score") else None
        reason = item.get("rejected_reason")
    if not isinstance(name, str) or not name or not isinstance(language, str) or not language:
        return None
    status = _upper(item.get("status"))
    category = _upper(item.get("category"))
    parameter_format = str(item.get("parameter_format") or "").strip().lower()
    reason_text = str(reason).strip() if reason not in (None, "") else None
    return _Remote(
        name=name[:512],
        language=language[:16],
        status=status if status in MessageTemplate.Status.values else None,
        category=category if category in MessageTemplate.Category.values else None,
        parameter_format=parameter_format if parameter_format in MessageTemplate.ParameterFormat.values else None,
        components=components,
        provider_template_id=str(item.get("id") or "")[:128],
        quality_rating=quality[:16] if quality else None,
        rejected_reason=None if reason_text in (None, "NONE") else reason_text,
    )


SYNC_FIELDS = ("status", "category", "parameter_format", "components", "provider_template_id", "quality_rating",
               "rejected_reason")


def template_sync(*, tenant: Tenant, phone_number: PhoneNumber) -> TemplateSyncReport:
    """Bring the templates of ``phone_number``'s WABA (Gupshup: its app) in line with the
    provider: insert the new ones, update the changed ones, and mark the ones the provider no
    longer returns as DELETED. Every status change is reported as ``template.status_changed``.

    The provider is read to the end before anything is written, so a failure half-way (a
    ProviderError) changes nothing.
    """
    if phone_number.tenant_id != tenant.pk:
        raise ApplicationError("The phone number belongs to another workspace.", code="phone_number_not_found",
                               http_status=404)
    remote: dict[tuple[str, str], _Remote] = {}
    report = TemplateSyncReport()
    for item in get_backend(phone_number).list_templates():
        parsed = _remote(item) if isinstance(item, dict) else None
        if parsed is None:
            report.skipped += 1
            continue
        remote[(parsed.name, parsed.language)] = parsed
    _sync_apply(tenant=tenant, phone_number=phone_number, remote=remote, report=report)
    return report


@transaction.atomic
def _sync_apply(*, tenant: Tenant, phone_number: PhoneNumber, remote: dict[tuple[str, str], _Remote],
                report: TemplateSyncReport) -> None:
    from apps.webhooks.services import event_emit_many

    now = timezone.now()
    templates = MessageTemplate.objects.for_tenant(tenant)
    existing = {(t.name, t.language): t for t in templates.select_for_update().filter(waba_id=phone_number.waba_id)}
    to_create: list[MessageTemplate] = []
    to_update: list[MessageTemplate] = []
    events: list[tuple[str, dict[str, Any]]] = []
    for key, item in remote.items():
        template = existing.get(key)
        if template is None:
            to_create.append(MessageTemplate(
                tenant=tenant, phone_number=phone_number, waba_id=phone_number.waba_id, name=item.name,
                language=item.language, status=item.status or MessageTemplate.Status.PENDING,
                category=item.category or MessageTemplate.Category.UTILITY,
                parameter_format=item.parameter_format or MessageTemplate.ParameterFormat.POSITIONAL,
                components=item.components, provider_template_id=item.provider_template_id,
                quality_rating=item.quality_rating or "", rejected_reason=item.rejected_reason or "",
                last_synced_at=now,
            ))
            continue
        previous = template.status
        status = item.status or previous
        wanted = {
            "status": status,
            "category": item.category or template.category,
            "parameter_format": item.parameter_format or MessageTemplate.ParameterFormat.POSITIONAL,
            "components": item.components,
            "provider_template_id": item.provider_template_id or template.provider_template_id,
            "quality_rating": item.quality_rating if item.quality_rating is not None else template.quality_rating,
            "rejected_reason": (item.rejected_reason or "") if status == MessageTemplate.Status.REJECTED else "",
        }
        if all(getattr(template, name) == value for name, value in wanted.items()):
            report.unchanged += 1
        else:
            report.updated += 1
        for name, value in wanted.items():
            setattr(template, name, value)
        template.last_synced_at = now
        template.updated_at = now
        to_update.append(template)
        if template.status != previous:
            events.append(_status_event(template, previous, reason=item.rejected_reason))
    for key, template in existing.items():
        if key in remote or template.status == MessageTemplate.Status.DELETED:
            continue
        previous = template.status
        template.status = MessageTemplate.Status.DELETED
        template.last_synced_at = now
        template.updated_at = now
        to_update.append(template)
        report.deleted += 1
        events.append(_status_event(template, previous, reason="No longer returned by the provider."))
    if to_create:
        templates.bulk_create(to_create)
        report.created = len(to_create)
    if to_update:
        templates.bulk_update(to_update, fields=[*SYNC_FIELDS, "last_synced_at", "updated_at"])
    if events:
        event_emit_many(tenant=tenant, events=events)


def _status_event(template: MessageTemplate, previous: str, *, reason: str | None) -> tuple[str, dict[str, Any]]:
    return ("template.status_changed", {
        "id": template.pk, "name": template.name, "language": template.language, "status": template.status,
        "previous_status": previous, "reason": reason,
    })


def templates_sync_request(*, tenant: Tenant, phone_number: PhoneNumber | None = None) -> list[PhoneNumber]:
    """Queue a sync for ``phone_number``, or for every enabled number of the tenant (one per
    WABA / Gupshup app), after the current transaction commits. Returns the numbers queued."""
    from .tasks import template_sync_task

    if phone_number is not None:
        if phone_number.tenant_id != tenant.pk:
            raise ApplicationError("The phone number belongs to another workspace.",
                                   code="phone_number_not_found", http_status=404)
        numbers = [phone_number]
    else:
        numbers = []
        seen: set[tuple[str, str]] = set()
        enabled = (PhoneNumber.objects.for_tenant(tenant).exclude(status=PhoneNumber.Status.DISABLED)
                   .order_by("id"))
        for number in enabled:
            account = (number.provider, number.waba_id)
            if account not in seen:
                seen.add(account)
                numbers.append(number)
        if not numbers:
            raise ApplicationError("This workspace has no enabled phone number to sync templates from.",
                                   code="no_phone_numbers", http_status=409)
    for number in numbers:
        transaction.on_commit(functools.partial(template_sync_task.delay, tenant_id=tenant.pk,
                                                phone_number_id=number.pk))
    return numbers


# --- create and delete (the builder and the template pages) -------------------------------------

def _provider_error(exc: ProviderError, *, doing: str) -> ApplicationError:
    """A provider's refusal in words: Meta's title and explanation (its error_user_msg when it
    sent one), with the raw details kept for the API."""
    if isinstance(exc, UnsupportedFeature):
        return ApplicationError(exc.explanation or str(exc), code="unsupported_by_provider", http_status=422)
    # Meta's own words first (error_user_msg, or its message), then Parley's explanation.
    raw = str(exc)
    said = exc.details or (raw.split(" - ", 1)[1] if " - " in raw else "")
    code = f" (error {exc.code})" if exc.code else ""
    if said:
        message = f"The provider refused to {doing}{code}: {said}"
        if exc.title and exc.title not in said:
            message += f" — {exc.title}."
    else:
        message = f"The provider refused to {doing}{code}: {exc.explanation or exc.title or raw}"
    return ApplicationError(message, code="provider_error", http_status=502 if exc.transient else 422,
                            details=exc.as_dict())


def template_create(*, tenant: Tenant, phone_number: PhoneNumber, draft: Any) -> MessageTemplate:
    """Submit a builder draft (``apps.message_templates.builder.TemplateDraft``) to the provider
    of ``phone_number`` with that number's credentials, and store the template as the provider
    answered (PENDING until the review webhook arrives).

    The POST happens outside any transaction; a refusal raises ``ApplicationError`` with the
    provider's reason in words and stores nothing."""
    from . import builder

    if phone_number.tenant_id != tenant.pk:
        raise ApplicationError("The phone number belongs to another workspace.", code="phone_number_not_found",
                               http_status=404)
    problems = builder.draft_problems(draft)
    if problems:
        first = next(iter(problems.values()))[0]
        raise ApplicationError(first, code="invalid_template", http_status=422, details={"fields": problems})
    existing = (MessageTemplate.objects.for_tenant(tenant)
                .filter(waba_id=phone_number.waba_id, name=draft.name, language=draft.language)
                .exclude(status=MessageTemplate.Status.DELETED).first())
    if existing is not None:
        raise ApplicationError(
            f"A template named {draft.name} already exists in {draft.language} for this account "
            f"({existing.get_status_display().lower()}). Choose another name or language.",
            code="template_exists", http_status=409)
    payload = builder.build_payload(draft)
    try:
        answer = get_backend(phone_number).create_template(payload)
    except ProviderError as exc:
        raise _provider_error(exc, doing="create the template") from exc
    status = _upper(answer.get("status")) or MessageTemplate.Status.PENDING
    category = _upper(answer.get("category")) or draft.category
    return _template_store(
        tenant=tenant, phone_number=phone_number, draft=draft,
        status=status if status in MessageTemplate.Status.values else MessageTemplate.Status.PENDING,
        category=category if category in MessageTemplate.Category.values else draft.category,
        provider_template_id=str(answer.get("id") or "")[:128],
        components=builder.draft_components(draft, for_meta=False),
    )


@transaction.atomic
def _template_store(*, tenant: Tenant, phone_number: PhoneNumber, draft: Any, status: str, category: str,
                    provider_template_id: str, components: list[dict[str, Any]]) -> MessageTemplate:
    """Insert the new template, or reuse the row of a deleted one with the same name and language."""
    now = timezone.now()
    values = {
        "phone_number": phone_number, "status": status, "category": category,
        "parameter_format": (MessageTemplate.ParameterFormat.NAMED if draft.parameter_format == "named"
                             and not draft.is_authentication else MessageTemplate.ParameterFormat.POSITIONAL),
        "components": components, "provider_template_id": provider_template_id, "quality_rating": "",
        "rejected_reason": "", "last_synced_at": now,
    }
    template = (MessageTemplate.objects.for_tenant(tenant).select_for_update()
                .filter(waba_id=phone_number.waba_id, name=draft.name, language=draft.language).first())
    if template is None:
        return MessageTemplate.objects.for_tenant(tenant).create(
            tenant=tenant, waba_id=phone_number.waba_id, name=draft.name, language=draft.language, **values)
    for name, value in values.items():
        setattr(template, name, value)
    template.save()
    return template


def template_delete(*, tenant: Tenant, template_id: Any) -> MessageTemplate:
    """Delete a template at the provider (Meta: ``DELETE /<WABA_ID>/message_templates?name=…``,
    narrowed to this language with ``hsm_id`` when its id is known) and mark it DELETED here.
    A provider that cannot delete templates (Gupshup) raises an ``ApplicationError`` saying so,
    and nothing changes."""
    from .selectors import access_template

    template = access_template(tenant=tenant, template_id=template_id)
    if template.status == MessageTemplate.Status.DELETED:
        return template
    if template.phone_number is None:
        raise ApplicationError("This template's phone number was removed, so there is no account to delete it "
                               "from.", code="phone_number_not_found", http_status=409)
    try:
        get_backend(template.phone_number).delete_template(name=template.name,
                                                           template_id=template.provider_template_id)
    except ProviderError as exc:
        raise _provider_error(exc, doing="delete the template") from exc
    return _template_mark_deleted(tenant=tenant, template_id=template.pk)


@transaction.atomic
def _template_mark_deleted(*, tenant: Tenant, template_id: int) -> MessageTemplate:
    from apps.webhooks.services import event_emit

    template = MessageTemplate.objects.for_tenant(tenant).select_for_update().get(pk=template_id)
    previous = template.status
    template.status = MessageTemplate.Status.DELETED
    template.last_synced_at = timezone.now()
    template.save(update_fields=["status", "last_synced_at", "updated_at"])
    event_emit(tenant=tenant, type="template.status_changed", data={
        "id": template.pk, "name": template.name, "language": template.language, "status": template.status,
        "previous_status": previous, "reason": "Deleted from Parley.",
    })
    return template
