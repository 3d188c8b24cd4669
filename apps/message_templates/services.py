from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.phone_numbers.models import PhoneNumber
from apps.providers.events import TemplateStatusUpdate

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
