"""message_send: validate, apply the send-time policies, write Message(queued), ring the bell.

Policy errors are synchronous (design.md): window_closed, contact_opted_out,
template_not_approved, template_parameters_mismatch, phone_number_not_found,
invalid_recipient. Delivery is asynchronous: the row is the record, the task only rings.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.contacts.models import Contact
from apps.contacts.services import contact_get_or_create
from apps.conversations.models import Conversation, Message
from apps.core.exceptions import ApplicationError, PolicyError
from apps.core.phone import normalize_wa_id
from apps.core.rows import (
    insert_from,
    models_from_row,
    row_insert_with_update,
    select_columns,
    statement_cursor,
    update_of,
)
from apps.message_templates.models import MessageTemplate
from apps.message_templates.rendering import parameter_problems, render_body
from apps.phone_numbers.models import PhoneNumber
from apps.phone_numbers.numbercache import tenant_numbers
from apps.providers.outbound import MEDIA_TYPES, OutboundMessage
from apps.tenants.models import Tenant

from .dispatch import ring_dispatch
from .media import check_media_for_send

# What a person or program may send; mark_read is an action, not a message.
SENDABLE_TYPES = ("text", "template", "image", "video", "audio", "document", "sticker", "location", "contacts",
                  "interactive", "reaction")
MEDIA_LABELS = {"image": "📷 Photo", "video": "🎬 Video", "audio": "🎵 Audio", "document": "📄 Document",
                "sticker": "Sticker"}


def resolve_phone_number(*, tenant: Tenant, phone_number: PhoneNumber | int | str | None) -> PhoneNumber:
    """The number to send from: the given one (object or id), or the tenant's only number.
    Numbers looked up come from a per-process cache (``tenant_numbers``); the dispatcher reads
    the number again before it sends."""
    if isinstance(phone_number, PhoneNumber):
        number = phone_number if phone_number.tenant_id == tenant.pk else None
    elif phone_number in (None, ""):
        candidates = [n for n in tenant_numbers(tenant.pk) if n.status != PhoneNumber.Status.DISABLED][:2]
        if len(candidates) != 1:
            raise PolicyError(
                "Say which phone number to send from (phone_number_id): this workspace has "
                + ("no connected number." if not candidates else "several."),
                code="phone_number_not_found",
            )
        number = copy.copy(candidates[0])
    else:
        wanted = int(phone_number) if str(phone_number).isdigit() else None
        number = next((copy.copy(n) for n in tenant_numbers(tenant.pk) if n.pk == wanted), None)
    if number is None:
        raise PolicyError(f"No phone number {phone_number} in this workspace.", code="phone_number_not_found",
                          http_status=404 if phone_number not in (None, "") else None)
    if number.status == PhoneNumber.Status.DISABLED:
        raise PolicyError(f"The number {number} is disabled.", code="phone_number_not_found")
    return number


def text_preview(*, type: str, content: Any) -> str:
    if type == "text":
        return str(content.get("body", ""))[:255]
    if type in MEDIA_LABELS:
        caption = content.get("caption") or content.get("filename") or ""
        return f"{MEDIA_LABELS[type]} {caption}".strip()[:255]
    if type == "location":
        return f"📍 {content.get('name') or content.get('address') or 'Location'}"[:255]
    if type == "contacts":
        cards = content if isinstance(content, list) else []
        names = ", ".join(str((c.get("name") or {}).get("formatted_name", "")) for c in cards)
        return f"👤 {names}".strip()[:255]
    if type == "interactive":
        return str((content.get("body") or {}).get("text", "Interactive message"))[:255]
    if type == "reaction":
        return f"Reacted {content.get('emoji', '')}".strip()[:255]
    return type


_CONVERSATION_PARTS = ((Conversation, "c"), (Contact, "ct"))


@functools.cache
def _conversation_statement(vendor: str) -> str:
    quote = connection.ops.quote_name
    contacts = quote(Contact._meta.db_table)
    # The contact's id by its (tenant, wa_id) key first, then the conversation by its (tenant,
    # number, contact) key: two unique lookups, whatever the planner knows of the tables.
    return (f"SELECT {select_columns(Conversation, 'c')}, {select_columns(Contact, 'ct')} "
            f"FROM {quote(Conversation._meta.db_table)} c "
            f"JOIN {contacts} ct ON ct.id = c.contact_id "
            "WHERE c.tenant_id = %s AND c.phone_number_id = %s "
            f"AND c.contact_id = (SELECT id FROM {contacts} WHERE tenant_id = %s AND wa_id = %s)")


@functools.cache
def _queue_target_statement(vendor: str) -> str:
    """The lookup of ``_conversation_statement`` with the two ids up front, and only when the
    window is open (at the time given) and the contact has not opted out (or may be told so)."""
    return (_conversation_statement(vendor)
            .replace("SELECT ", "SELECT c.id AS queue_conversation_id, ct.id AS queue_contact_id, ", 1)
            + " AND c.window_expires_at > %s AND (ct.opt_in_status <> %s OR %s)")


def _conversation_with_contact(*, tenant_id: int, phone_number_id: int, wa_id: str) -> Conversation | None:
    """The conversation of ``wa_id`` on the number, with its contact, in one fixed statement.
    The contact is found by its tenant and wa_id, the conversation's own tenant: only then is it
    found through its (tenant, wa_id) key instead of a scan of every contact."""
    with statement_cursor() as cursor:
        cursor.execute(_conversation_statement(connection.vendor), [tenant_id, phone_number_id, tenant_id, wa_id])
        row = cursor.fetchone()
    if row is None:
        return None
    conversation, contact = models_from_row(row, _CONVERSATION_PARTS)
    conversation.contact = contact
    return conversation


def find_template(*, tenant: Tenant, number: PhoneNumber, name: str, language: str) -> MessageTemplate | None:
    templates = MessageTemplate.objects.for_tenant(tenant).filter(waba_id=number.waba_id, name=name)
    exact = templates.filter(language=language).first()
    if exact is not None:
        return exact
    # "en" finds "en_US" when that is the only English variant, and the other way round.
    base = language.split("_")[0]
    candidates = [t for t in templates if t.language.split("_")[0] == base]
    return candidates[0] if len(candidates) == 1 else None


def check_template(*, tenant: Tenant, number: PhoneNumber, content: dict) -> tuple[MessageTemplate, dict, str]:
    """The stored template a send names, with the language code normalized to the stored one
    and the body as the customer will read it."""
    name = str(content.get("name") or "")
    language = content.get("language")
    code = str(language.get("code") if isinstance(language, dict) else language or "")
    if not name or not code:
        raise PolicyError("A template message needs template.name and template.language.code.",
                          code="template_parameters_mismatch")
    template = find_template(tenant=tenant, number=number, name=name, language=code)
    if template is None:
        raise PolicyError(f"There is no template {name!r} in language {code!r} for this number's account.",
                          code="template_not_approved", details={"name": name, "language": code})
    if template.status != MessageTemplate.Status.APPROVED:
        raise PolicyError(f"Template {name!r} ({template.language}) is {template.get_status_display().lower()}, "
                          "not approved.", code="template_not_approved",
                          details={"name": name, "language": template.language, "status": template.status})
    components = content.get("components") or []
    problems = parameter_problems(stored=template.components, parameter_format=template.parameter_format,
                                  send_components=components)
    if problems:
        raise PolicyError(f"Template {name!r} parameters do not match: {'; '.join(problems)}.",
                          code="template_parameters_mismatch", details={"problems": problems})
    normalized = {**content, "language": {**(language if isinstance(language, dict) else {}), "code": template.language}}
    body = render_body(stored=template.components, parameter_format=template.parameter_format,
                       send_components=components)
    return template, normalized, body


def window_is_open(conversation: Conversation, *, now=None) -> bool:
    now = now or timezone.now()
    return bool(conversation.window_expires_at and conversation.window_expires_at > now)


def message_send(
    *,
    tenant: Tenant,
    to: str,
    type: str,
    content: Any,
    phone_number: PhoneNumber | int | str | None = None,
    reply_to: Message | None = None,
    idempotency_key: str | None = None,
    sent_by: Any = None,
    campaign_recipient_id: int | None = None,
    contact: Contact | None = None,
    dispatch: bool = True,
    opt_out_confirmation: bool = False,
) -> Message:
    """Queue one message. ``opt_out_confirmation`` lets the single "you are unsubscribed" reply
    reach a contact who has just opted out."""
    if type not in SENDABLE_TYPES:
        raise ApplicationError(f"Unknown message type {type!r}; use one of {', '.join(SENDABLE_TYPES)}.",
                               code="invalid_message", http_status=422)
    if idempotency_key:
        existing = Message.objects.for_tenant(tenant).filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    number = resolve_phone_number(tenant=tenant, phone_number=phone_number)
    wa_id = contact.wa_id if contact is not None else normalize_wa_id(to)
    try:
        OutboundMessage(to=wa_id, type=type, content=content)
    except ValueError as exc:
        raise ApplicationError(str(exc), code="invalid_message", http_status=422) from exc
    if "\\u0000" in json.dumps(content):
        # PostgreSQL's JSON cannot hold NUL characters, and WhatsApp has no use for them.
        raise ApplicationError("The message contains a NUL character (\\u0000).", code="invalid_message",
                               http_status=422)
    media = None
    if type in MEDIA_TYPES and content.get("id") not in (None, ""):
        # {"id": "<Parley Media id>"} names a stored file, uploaded to the provider when sent;
        # any other id is the provider's own media id.
        media = check_media_for_send(tenant=tenant, type=type, media_id=content["id"])
        if media is not None:
            content = {**content, "id": str(media.pk)}
    queued = dict(type=type, content=content, media=media, reply_to=reply_to, idempotency_key=idempotency_key,
                  sent_by=sent_by, campaign_recipient_id=campaign_recipient_id, dispatch=dispatch)
    if contact is None and reply_to is None and type != "template" and connection.vendor == "postgresql":
        # The common case -- a customer with an open window who has not opted out -- in one
        # statement; when any of that does not hold, nothing is written and the general path
        # below finds out which and says so.
        message = _queue_in_one_statement(tenant=tenant, number=number, wa_id=wa_id,
                                          opt_out_confirmation=opt_out_confirmation, **queued)
        if message is not None:
            return message
    if contact is None:
        # Usually the conversation exists: one statement finds it and its contact together, and
        # one statement queues the message (below), so no transaction is needed.
        conversation = _conversation_with_contact(tenant_id=tenant.pk, phone_number_id=number.pk, wa_id=wa_id)
        if conversation is not None:
            _check_opt_in(conversation.contact, wa_id=wa_id, opt_out_confirmation=opt_out_confirmation)
            return _queue(tenant=tenant, number=number, conversation=conversation, contact=conversation.contact,
                          **queued)
    # A new customer, or one the caller named: what is created is rolled back with a refusal.
    with transaction.atomic():
        if contact is None:
            contact, _ = contact_get_or_create(tenant=tenant, wa_id=wa_id)
        _check_opt_in(contact, wa_id=wa_id, opt_out_confirmation=opt_out_confirmation)
        conversation, _ = Conversation.objects.for_tenant(tenant).get_or_create(
            tenant=tenant, phone_number=number, contact=contact,
        )
        return _queue(tenant=tenant, number=number, conversation=conversation, contact=contact, **queued)


def _check_opt_in(contact: Contact, *, wa_id: str, opt_out_confirmation: bool) -> None:
    if contact.opt_in_status == Contact.OptIn.OPTED_OUT and not opt_out_confirmation:
        raise PolicyError(f"+{wa_id} has opted out of messages from this workspace.", code="contact_opted_out")


def _queue(*, tenant: Tenant, number: PhoneNumber, conversation: Conversation, contact: Contact,
           type: str, content: Any, media: Any, reply_to: Message | None, idempotency_key: str | None,
           sent_by: Any, campaign_recipient_id: int | None, dispatch: bool) -> Message:
    """The send-time policies that need the conversation (the contact's opt-in is checked
    before), then the message row and the conversation's last-message columns, written together."""
    now = timezone.now()
    if type == "template":
        template, content, preview = check_template(tenant=tenant, number=number, content=content)
    else:
        if not window_is_open(conversation, now=now):
            raise PolicyError(
                "The 24-hour customer service window is closed: the customer has not written in the last 24 "
                "hours, so only an approved template can be sent.",
                code="window_closed",
                details={"window_expires_at": conversation.window_expires_at.isoformat()
                         if conversation.window_expires_at else None},
            )
        preview = text_preview(type=type, content=content)
    if reply_to is not None and reply_to.conversation_id != conversation.pk:
        raise ApplicationError("A reply must quote a message of the same conversation.", code="invalid_message",
                               http_status=422)
    # Through statements built once (apps/core/rows.py), not the ORM's compiler: this is the API
    # send's request path.
    message = row_insert_with_update(
        _new_message(tenant=tenant, number=number, conversation=conversation, contact=contact, type=type,
                     content=content, preview=preview, media=media, reply_to=reply_to,
                     idempotency_key=idempotency_key, sent_by=sent_by, campaign_recipient_id=campaign_recipient_id,
                     now=now),
        Conversation, pk=conversation.pk, tenant_id=tenant.pk, values=_last_message(type=type, preview=preview, now=now))
    if dispatch:
        ring_dispatch(tenant_id=tenant.pk, phone_number_id=number.pk, gathered=True)
    return message


def _new_message(*, tenant: Tenant, number: PhoneNumber, conversation: Conversation | None, contact: Contact | None,
                 type: str, content: Any, preview: str, media: Any, reply_to: Message | None,
                 idempotency_key: str | None, sent_by: Any, campaign_recipient_id: int | None, now) -> Message:
    return Message(
        tenant=tenant, conversation=conversation, phone_number=number, contact=contact,
        direction=Message.Direction.OUTBOUND, type=type, content=content, text_preview=preview[:255], media=media,
        status=Message.Status.QUEUED, status_updated_at=now, occurred_at=now, reply_to=reply_to,
        reply_to_provider_id=(reply_to.wa_message_id or reply_to.provider_message_id or "") if reply_to else "",
        idempotency_key=idempotency_key or None, sent_by=sent_by if getattr(sent_by, "pk", None) else None,
        campaign_recipient_id=campaign_recipient_id, next_attempt_at=now,
    )


def _last_message(*, type: str, preview: str, now) -> dict[str, Any]:
    """The conversation's columns a queued message rewrites."""
    return {"last_message_at": now, "last_message_preview": preview[:255], "last_message_type": type,
            "last_message_direction": Message.Direction.OUTBOUND, "updated_at": now}


def _queue_in_one_statement(*, tenant: Tenant, number: PhoneNumber, wa_id: str, type: str, content: Any, media: Any,
                            reply_to: None, idempotency_key: str | None, sent_by: Any,
                            campaign_recipient_id: int | None, dispatch: bool,
                            opt_out_confirmation: bool) -> Message | None:
    """What ``_conversation_with_contact`` and ``_queue`` do for a non-template message, as one
    statement on PostgreSQL: the conversation and contact are found by their keys *and* only
    if the window is open and the contact may be written to; the conversation's last-message
    columns are updated and the message inserted from that row. None, with nothing written,
    when there is no such row: no conversation yet, window closed, or opted out."""
    now = timezone.now()
    preview = text_preview(type=type, content=content)
    message = _new_message(tenant=tenant, number=number, conversation=None, contact=None, type=type, content=content,
                           preview=preview, media=media, reply_to=None, idempotency_key=idempotency_key,
                           sent_by=sent_by, campaign_recipient_id=campaign_recipient_id, now=now)
    update, update_params = update_of(Conversation, pk_expression="(SELECT queue_conversation_id FROM target)",
                                      tenant_id=tenant.pk, values=_last_message(type=type, preview=preview, now=now))
    insert, insert_params = insert_from(message, source="target", columns={
        "conversation_id": "target.queue_conversation_id", "contact_id": "target.queue_contact_id"})
    with statement_cursor() as cursor:
        cursor.execute(
            f"WITH target AS ({_queue_target_statement(connection.vendor)}), updated AS ({update}), "
            f"inserted AS ({insert}) SELECT inserted.id, target.* FROM inserted CROSS JOIN target",
            [tenant.pk, number.pk, tenant.pk, wa_id, now, Contact.OptIn.OPTED_OUT, opt_out_confirmation,
             *update_params, *insert_params])
        row = cursor.fetchone()
    if row is None:
        return None
    conversation, contact = models_from_row(row[3:], _CONVERSATION_PARTS)
    conversation.contact = contact
    message.pk, message.conversation, message.contact = row[0], conversation, contact
    message._state.adding, message._state.db = False, "default"
    if dispatch:
        ring_dispatch(tenant_id=tenant.pk, phone_number_id=number.pk, gathered=True)
    return message
