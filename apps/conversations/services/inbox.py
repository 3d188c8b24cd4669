"""What an agent does in the inbox: reply, send a template, assign, label, set the status,
mark read or unread, write a private note, change the contact's opt-in.

Every action that changes the conversation bumps its ``updated_at`` (``update()`` does not
touch auto_now fields), which is what other agents' inboxes poll for, and records what
happened in the thread as an activity line (direction internal, type activity). Tenant
events (``conversation.assigned``, ``conversation.resolved`` ...) are written in the same
transaction, so an event exists exactly when its change committed.
"""

from __future__ import annotations

import re
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from apps.contacts.models import Contact
from apps.contacts.services import contact_opt_set
from apps.conversations.models import Conversation, ConversationLabel, Label, Media, Message
from apps.core.exceptions import ApplicationError, PolicyError
from apps.message_templates.models import MessageTemplate
from apps.message_templates.rendering import template_shape
from apps.tenants.models import Membership, Tenant
from apps.tenants.roles import SECTION_ROLES

from .events import conversation_event_data
from .media import media_kind, media_upload
from .send import message_send

# WhatsApp's limits: a text body, and a media caption.
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_NOTE_LENGTH = 4096
CAPTIONED_KINDS = ("image", "video", "document")
URL_IN_TEXT = re.compile(r"https?://", re.IGNORECASE)


def person_name(user: AbstractBaseUser | None) -> str:
    if user is None:
        return "Someone"
    return user.get_full_name() or user.email or user.get_username()


def _locked(*, tenant: Tenant, conversation: Conversation) -> Conversation:
    """The conversation's current row, locked until the end of the transaction, so two agents
    acting at once apply one after the other and each activity line tells the truth."""
    return (Conversation.objects.for_tenant(tenant).select_for_update(of=("self",))
            .select_related("contact", "assignee").get(pk=conversation.pk))


def _touch(*, tenant: Tenant, conversation: Conversation, **fields: Any) -> None:
    fields["updated_at"] = timezone.now()
    Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk).update(**fields)
    for name, value in fields.items():
        setattr(conversation, name, value)


def _activity(*, tenant: Tenant, conversation: Conversation, kind: str, text: str,
              by: AbstractBaseUser | None, **extra: Any) -> Message:
    now = timezone.now()
    return Message.objects.for_tenant(tenant).create(
        tenant=tenant, conversation=conversation, phone_number_id=conversation.phone_number_id,
        contact_id=conversation.contact_id, direction=Message.Direction.INTERNAL, type=Message.Type.ACTIVITY,
        content={"kind": kind, "text": text, "by_id": getattr(by, "pk", None), **extra}, text_preview=text[:255],
        status=Message.Status.RECEIVED, status_updated_at=now, occurred_at=now,
        sent_by=by if getattr(by, "pk", None) else None,
    )


def conversation_activity_add(*, tenant: Tenant, conversation: Conversation, kind: str, text: str,
                              by: AbstractBaseUser | None = None) -> Message:
    """Record in the thread something that happened outside it (an opt-out by keyword, ...),
    and let open inboxes know."""
    message = _activity(tenant=tenant, conversation=conversation, kind=kind, text=text, by=by)
    _touch(tenant=tenant, conversation=conversation)
    return message


def _emit(*, tenant: Tenant, type: str, conversation: Conversation, by: AbstractBaseUser | None) -> None:
    from apps.webhooks.services import event_emit

    event_emit(tenant=tenant, type=type, data={**conversation_event_data(conversation),
                                               "changed_by_id": getattr(by, "pk", None)})


def member_may_work_inbox(*, tenant: Tenant, user: AbstractBaseUser) -> bool:
    return Membership.objects.for_tenant(tenant).filter(user=user, role__in=SECTION_ROLES["inbox"]).exists()


# --- assignment, status, labels, read state -----------------------------------------------

@transaction.atomic
def conversation_assign(*, tenant: Tenant, conversation: Conversation, assignee: AbstractBaseUser | None,
                        by: AbstractBaseUser | None) -> Conversation:
    """Give the conversation to ``assignee`` (a member with inbox access), or to nobody."""
    if assignee is not None and not member_may_work_inbox(tenant=tenant, user=assignee):
        raise ApplicationError(f"{person_name(assignee)} is not a member of this workspace with inbox access.",
                               code="invalid_assignee")
    current = _locked(tenant=tenant, conversation=conversation)
    if current.assignee_id == getattr(assignee, "pk", None):
        return current
    previous = current.assignee
    _touch(tenant=tenant, conversation=current, assignee=assignee)
    if assignee is None:
        text = f"{person_name(by)} unassigned {person_name(previous)}"
    elif by is not None and assignee.pk == by.pk:
        text = f"{person_name(by)} self-assigned this conversation"
    else:
        text = f"{person_name(by)} assigned this conversation to {person_name(assignee)}"
    _activity(tenant=tenant, conversation=current, kind="assigned", text=text, by=by,
              assignee_id=getattr(assignee, "pk", None))
    _emit(tenant=tenant, type="conversation.assigned", conversation=current, by=by)
    return current


STATUS_SENTENCES = {
    Conversation.Status.RESOLVED: "{who} resolved the conversation",
    Conversation.Status.PENDING: "{who} marked the conversation as pending",
    Conversation.Status.OPEN: "{who} reopened the conversation",
}


@transaction.atomic
def conversation_status_set(*, tenant: Tenant, conversation: Conversation, status: str,
                            by: AbstractBaseUser | None) -> Conversation:
    if status not in Conversation.Status.values:
        raise ApplicationError(f"Unknown status {status!r}; use open, pending or resolved.", code="invalid_status")
    current = _locked(tenant=tenant, conversation=conversation)
    if current.status == status:
        return current
    _touch(tenant=tenant, conversation=current, status=status)
    _activity(tenant=tenant, conversation=current, kind="status",
              text=STATUS_SENTENCES[status].format(who=person_name(by)), by=by, status=status)
    if status == Conversation.Status.RESOLVED:
        _emit(tenant=tenant, type="conversation.resolved", conversation=current, by=by)
    elif status == Conversation.Status.OPEN:
        _emit(tenant=tenant, type="conversation.opened", conversation=current, by=by)
    return current


@transaction.atomic
def conversation_label_toggle(*, tenant: Tenant, conversation: Conversation, label: Label,
                              by: AbstractBaseUser | None) -> bool:
    """Add the label, or remove it when the conversation has it. Returns whether it is on now."""
    if label.tenant_id != tenant.pk:
        raise ApplicationError("No such label in this workspace.", code="invalid_label", http_status=404)
    current = _locked(tenant=tenant, conversation=conversation)
    links = ConversationLabel.objects.for_tenant(tenant).filter(conversation=current, label=label)
    removed, _ = links.delete()
    if not removed:
        ConversationLabel.objects.for_tenant(tenant).create(tenant=tenant, conversation=current, label=label)
    _touch(tenant=tenant, conversation=current)
    verb = "removed the label" if removed else "added the label"
    _activity(tenant=tenant, conversation=current, kind="label", text=f"{person_name(by)} {verb} “{label.name}”",
              by=by, label_id=label.pk, added=not removed)
    return not removed


@transaction.atomic
def conversation_mark_read(*, tenant: Tenant, conversation: Conversation) -> bool:
    """Whether there was anything unread."""
    now = timezone.now()
    changed = Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk, unread_count__gt=0).update(
        unread_count=0, updated_at=now)
    if changed:
        conversation.unread_count, conversation.updated_at = 0, now
    return bool(changed)


@transaction.atomic
def conversation_mark_unread(*, tenant: Tenant, conversation: Conversation) -> None:
    now = timezone.now()
    Conversation.objects.for_tenant(tenant).filter(pk=conversation.pk, unread_count=0).update(
        unread_count=1, updated_at=now)
    conversation.unread_count = max(conversation.unread_count, 1)
    conversation.updated_at = now


# --- notes and the contact's consent ------------------------------------------------------

@transaction.atomic
def note_add(*, tenant: Tenant, conversation: Conversation, body: str, by: AbstractBaseUser | None) -> Message:
    """A private note: kept in the thread for the team, never sent to the customer."""
    body = (body or "").strip()
    if not body:
        raise ApplicationError("Write something before adding a note.", code="invalid_note")
    if len(body) > MAX_NOTE_LENGTH:
        raise ApplicationError(f"A note may be at most {MAX_NOTE_LENGTH} characters; this one has {len(body)}.",
                               code="invalid_note")
    current = _locked(tenant=tenant, conversation=conversation)
    now = timezone.now()
    note = Message.objects.for_tenant(tenant).create(
        tenant=tenant, conversation=current, phone_number_id=current.phone_number_id, contact_id=current.contact_id,
        direction=Message.Direction.INTERNAL, type=Message.Type.NOTE, content={"body": body},
        text_preview=body[:255], status=Message.Status.RECEIVED, status_updated_at=now, occurred_at=now,
        sent_by=by if getattr(by, "pk", None) else None,
    )
    _touch(tenant=tenant, conversation=current)
    return note


@transaction.atomic
def conversation_contact_opt_set(*, tenant: Tenant, conversation: Conversation, opted_in: bool,
                                 by: AbstractBaseUser | None) -> bool:
    """Record the contact's consent as an agent reports it. Returns whether it changed."""
    from apps.webhooks.services import event_emit

    current = _locked(tenant=tenant, conversation=conversation)
    contact = Contact.objects.for_tenant(tenant).select_for_update().get(pk=current.contact_id)
    if not contact_opt_set(contact=contact, opted_in=opted_in, source="inbox"):
        return False
    current.contact = contact
    _touch(tenant=tenant, conversation=current)
    if opted_in:
        text = f"{person_name(by)} opted {contact.display_name} back in to messages"
    else:
        text = f"{person_name(by)} opted {contact.display_name} out of messages"
    _activity(tenant=tenant, conversation=current, kind="opted_in" if opted_in else "opted_out", text=text, by=by)
    if not opted_in:
        event_emit(tenant=tenant, type="contact.opted_out",
                   data={"contact_id": contact.pk, "wa_id": contact.wa_id, "source": "inbox"})
    return True


# --- replies ------------------------------------------------------------------------------

def _reply_target(*, tenant: Tenant, conversation: Conversation, reply_to_id: Any) -> Message | None:
    if reply_to_id in (None, ""):
        return None
    reference = str(reply_to_id)
    target = None
    if reference.isdigit():
        target = (Message.objects.for_tenant(tenant)
                  .filter(pk=int(reference), conversation=conversation,
                          direction__in=(Message.Direction.INBOUND, Message.Direction.OUTBOUND)).first())
    if target is None:
        raise ApplicationError("The message you are replying to is not in this conversation.",
                               code="invalid_message")
    return target


@transaction.atomic
def conversation_reply_send(*, tenant: Tenant, conversation: Conversation, body: str, by: AbstractBaseUser | None,
                            reply_to_id: Any = None, upload: IO[bytes] | None = None,
                            upload_name: str = "", upload_type: str | None = None) -> list[Message]:
    """Send the agent's reply: text, or a file with the text as its caption (audio and stickers
    take no caption, so the text follows as its own message). Raises ``PolicyError`` (window
    closed, opted out ...) or ``ApplicationError`` with a message meant for the agent."""
    body = (body or "").strip()
    reply_to = _reply_target(tenant=tenant, conversation=conversation, reply_to_id=reply_to_id)
    contact = conversation.contact
    common = {"tenant": tenant, "to": contact.wa_id, "contact": contact, "phone_number": conversation.phone_number,
              "sent_by": by}
    if upload is None:
        if not body:
            raise ApplicationError("Type a message or attach a file first.", code="invalid_message")
        if len(body) > MAX_TEXT_LENGTH:
            raise ApplicationError(f"WhatsApp messages may be at most {MAX_TEXT_LENGTH} characters; this one has "
                                   f"{len(body)}.", code="invalid_message")
        content = {"body": body, "preview_url": bool(URL_IN_TEXT.search(body))}
        return [message_send(type="text", content=content, reply_to=reply_to, **common)]

    media: Media | None = None
    try:
        media = media_upload(tenant=tenant, file=upload, filename=upload_name, mime_type=upload_type,
                             phone_number=conversation.phone_number)
        kind = media_kind(media.mime_type) or "document"
        content: dict[str, Any] = {"id": str(media.pk)}
        if kind == "document" and media.filename:
            content["filename"] = media.filename
        captioned = bool(body) and kind in CAPTIONED_KINDS and len(body) <= MAX_CAPTION_LENGTH
        if captioned:
            content["caption"] = body
        sent = [message_send(type=kind, content=content, reply_to=reply_to, **common)]
        if body and not captioned:
            sent.append(message_send(type="text", content={"body": body[:MAX_TEXT_LENGTH]}, **common))
        return sent
    except Exception:
        # The rows roll back with the transaction; the stored file has to go by hand.
        if media is not None and media.file:
            media.file.delete(save=False)
        raise


# --- templates ----------------------------------------------------------------------------

def template_fields(template: MessageTemplate) -> list[dict[str, str]]:
    """The inputs a template needs, in the order the customer reads them: header, body, buttons.
    Each is ``{"name": <form field>, "label": <what to show>, "placeholder": <"{{1}}">}``."""
    shape = template_shape(template.components)
    examples = _examples(template)
    fields: list[dict[str, str]] = []
    if shape.header_media:
        fields.append({"name": "header_media", "label": f"Header {shape.header_media} (a public https:// link)",
                       "kind": "url", "example": "https://example.com/file"})
    for name in shape.header_text:
        fields.append({"name": f"header.{name}", "label": f"Header {{{{{name}}}}}", "kind": "text",
                       "example": examples.get(("header", name), "")})
    for name in shape.body:
        fields.append({"name": f"body.{name}", "label": f"{{{{{name}}}}}", "kind": "text",
                       "example": examples.get(("body", name), "")})
    for index, count in sorted(shape.url_buttons.items()):
        for position in range(count):
            fields.append({"name": f"button.{index}.{position}", "label": f"Button {index + 1}: end of its link",
                           "kind": "text", "example": ""})
    return fields


def _examples(template: MessageTemplate) -> dict[tuple[str, str], str]:
    """The sample values the template was submitted with, keyed by (part, placeholder)."""
    found: dict[tuple[str, str], str] = {}
    for component in template.components or []:
        if not isinstance(component, dict):
            continue
        part = str(component.get("type", "")).lower()
        example = component.get("example") if isinstance(component.get("example"), dict) else {}
        for item in example.get(f"{part}_text_named_params") or []:
            if isinstance(item, dict):
                found[(part, str(item.get("param_name", "")))] = str(item.get("example", ""))
        positional = example.get(f"{part}_text") or []
        values = positional[0] if positional and isinstance(positional[0], list) else positional
        for number, value in enumerate(values, start=1):
            if isinstance(value, str | int | float):
                found.setdefault((part, str(number)), str(value))
    return found


def template_send_content(*, template: MessageTemplate, values: dict[str, str]) -> dict[str, Any]:
    """Meta's send-shape ``template`` object for ``template`` filled with the form's ``values``
    (keyed like ``template_fields``). Raises ``ApplicationError`` naming the empty fields."""
    shape = template_shape(template.components)
    fields = template_fields(template)
    missing = [f["label"] for f in fields if not str(values.get(f["name"], "")).strip()]
    if missing:
        raise ApplicationError(f"Fill in every variable of “{template.name}”: {', '.join(missing)}.",
                               code="template_parameters_mismatch")
    named = template.parameter_format == MessageTemplate.ParameterFormat.NAMED

    def text(name: str, value: str) -> dict[str, str]:
        parameter = {"type": "text", "text": value.strip()}
        if named:
            parameter["parameter_name"] = name
        return parameter

    components: list[dict[str, Any]] = []
    if shape.header_media:
        if shape.header_media == "location":
            raise ApplicationError("Templates with a location header cannot be sent from the inbox yet; use the API.",
                                   code="template_parameters_mismatch")
        link = values["header_media"].strip()
        try:
            URLValidator(schemes=["https"])(link)
        except ValidationError as exc:
            raise ApplicationError("The header needs a public https:// link to the file.",
                                   code="template_parameters_mismatch") from exc
        components.append({"type": "header", "parameters": [{"type": shape.header_media,
                                                              shape.header_media: {"link": link}}]})
    if shape.header_text:
        components.append({"type": "header",
                           "parameters": [text(n, values[f"header.{n}"]) for n in shape.header_text]})
    if shape.body:
        components.append({"type": "body", "parameters": [text(n, values[f"body.{n}"]) for n in shape.body]})
    for index, count in sorted(shape.url_buttons.items()):
        components.append({"type": "button", "sub_type": "url", "index": str(index),
                           "parameters": [{"type": "text", "text": values[f"button.{index}.{p}"].strip()}
                                          for p in range(count)]})
    return {"name": template.name, "language": {"code": template.language}, "components": components}


@transaction.atomic
def conversation_template_send(*, tenant: Tenant, conversation: Conversation, template: MessageTemplate,
                               values: dict[str, str], by: AbstractBaseUser | None) -> Message:
    if template.tenant_id != tenant.pk:
        raise ApplicationError("No such template in this workspace.", code="template_not_approved", http_status=404)
    if template.waba_id != conversation.phone_number.waba_id:
        raise PolicyError(f"“{template.name}” belongs to another WhatsApp account than {conversation.phone_number}.",
                          code="template_not_approved")
    content = template_send_content(template=template, values=values)
    return message_send(tenant=tenant, to=conversation.contact.wa_id, contact=conversation.contact,
                        phone_number=conversation.phone_number, type="template", content=content, sent_by=by)
