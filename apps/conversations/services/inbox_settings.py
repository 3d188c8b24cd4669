"""Canned responses and labels: the inbox's shared vocabulary, managed by owners and admins."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.conversations.models import CannedResponse, Conversation, Label
from apps.core.exceptions import ApplicationError
from apps.tenants.models import Tenant

SHORTCUT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
COLOR = re.compile(r"#[0-9a-fA-F]{6}")
MAX_CANNED_LENGTH = 4096
MAX_LABEL_LENGTH = Label._meta.get_field("name").max_length


@transaction.atomic
def canned_response_save(*, tenant: Tenant, canned: CannedResponse | None, shortcut: str,
                         content: str) -> CannedResponse:
    """Create (``canned`` None) or update a canned response."""
    shortcut = (shortcut or "").strip().lstrip("/").lower()
    content = (content or "").strip()
    if not SHORTCUT.fullmatch(shortcut):
        raise ApplicationError("A shortcut is 1 to 64 lowercase letters, digits, - or _, like “shipping”.",
                               code="invalid_shortcut")
    if not content:
        raise ApplicationError("Write the reply this shortcut inserts.", code="invalid_content")
    if len(content) > MAX_CANNED_LENGTH:
        raise ApplicationError(f"A canned response may be at most {MAX_CANNED_LENGTH} characters.",
                               code="invalid_content")
    if canned is not None and canned.tenant_id != tenant.pk:
        raise ApplicationError("No such canned response.", code="not_found", http_status=404)
    taken = CannedResponse.objects.for_tenant(tenant).filter(shortcut=shortcut)
    if canned is not None:
        taken = taken.exclude(pk=canned.pk)
    if taken.exists():
        raise ApplicationError(f"/{shortcut} is already used by another canned response.", code="duplicate_shortcut")
    canned = canned or CannedResponse(tenant=tenant)
    canned.shortcut, canned.content = shortcut, content
    try:
        with transaction.atomic():
            canned.save()
    except IntegrityError as exc:
        raise ApplicationError(f"/{shortcut} is already used by another canned response.",
                               code="duplicate_shortcut") from exc
    return canned


@transaction.atomic
def canned_response_delete(*, tenant: Tenant, canned: CannedResponse) -> None:
    CannedResponse.objects.for_tenant(tenant).filter(pk=canned.pk).delete()


@transaction.atomic
def label_save(*, tenant: Tenant, label: Label | None, name: str, color: str) -> Label:
    """Create (``label`` None) or update a label."""
    name = " ".join((name or "").split())
    color = (color or "").strip()
    if not name:
        raise ApplicationError("Give the label a name.", code="invalid_label")
    if len(name) > MAX_LABEL_LENGTH:
        raise ApplicationError(f"A label name may be at most {MAX_LABEL_LENGTH} characters.", code="invalid_label")
    if color and not COLOR.fullmatch(color):
        raise ApplicationError("A colour is written like #2f6fd6.", code="invalid_color")
    if label is not None and label.tenant_id != tenant.pk:
        raise ApplicationError("No such label.", code="not_found", http_status=404)
    taken = Label.objects.for_tenant(tenant).filter(name__iexact=name)
    if label is not None:
        taken = taken.exclude(pk=label.pk)
    if taken.exists():
        raise ApplicationError(f"There is already a label called “{name}”.", code="duplicate_label")
    label = label or Label(tenant=tenant)
    label.name, label.color = name, color.lower()
    try:
        with transaction.atomic():
            label.save()
    except IntegrityError as exc:
        raise ApplicationError(f"There is already a label called “{name}”.", code="duplicate_label") from exc
    _touch_labelled(tenant=tenant, label=label)
    return label


def _touch_labelled(*, tenant: Tenant, label: Label) -> None:
    """The conversations showing this label look different now: open inboxes re-read them."""
    Conversation.objects.for_tenant(tenant).filter(conversation_labels__label_id=label.pk).update(
        updated_at=timezone.now())


@transaction.atomic
def label_delete(*, tenant: Tenant, label: Label) -> None:
    """Remove the label everywhere it is used."""
    _touch_labelled(tenant=tenant, label=label)
    Label.objects.for_tenant(tenant).filter(pk=label.pk).delete()
