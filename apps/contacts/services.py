from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.exceptions import ApplicationError
from apps.core.phone import InvalidPhoneNumber, normalize_wa_id
from apps.tenants.models import Tenant

from .models import AttributeDefinition, Contact, ContactImport, ContactTag, Segment, Tag


def contact_get_or_create(*, tenant: Tenant, wa_id: str, profile_name: str = "") -> tuple[Contact, bool]:
    """The tenant's contact for ``wa_id`` (already normalized), created on first sight.
    A WhatsApp profile name is kept up to date; the name an agent typed is never overwritten."""
    contact, created = Contact.objects.for_tenant(tenant).get_or_create(
        tenant=tenant, wa_id=wa_id, defaults={"profile_name": profile_name[:200]},
    )
    if not created and profile_name and contact.profile_name != profile_name[:200]:
        contact.profile_name = profile_name[:200]
        contact.save(update_fields=["profile_name", "updated_at"])
    return contact, created


@transaction.atomic
def contact_opt_set(*, contact: Contact, opted_in: bool, source: str, at: datetime | None = None) -> bool:
    """Record an opt-in or opt-out. Returns whether the state changed."""
    at = at or timezone.now()
    new_state = Contact.OptIn.OPTED_IN if opted_in else Contact.OptIn.OPTED_OUT
    if contact.opt_in_status == new_state:
        return False
    contact.opt_in_status = new_state
    contact.opt_in_source = source[:64]
    if opted_in:
        contact.opted_in_at = at
    else:
        contact.opted_out_at = at
    contact.save(update_fields=["opt_in_status", "opt_in_source", "opted_in_at", "opted_out_at", "updated_at"])
    return True


# --- validation shared by the single-contact services and the bulk upsert ------------------

MAX_NAME_LENGTH = Contact._meta.get_field("name").max_length
MAX_SOURCE_LENGTH = Contact._meta.get_field("opt_in_source").max_length
MAX_TAG_LENGTH = Tag._meta.get_field("name").max_length
MAX_TAGS_PER_CONTACT = 50
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_KEY_LENGTH = 64
MAX_ATTRIBUTES_BYTES = 16 * 1024
MAX_BULK_ROWS = 1000
ATTRIBUTE_MODES = ("merge", "replace")
DEFAULT_SOURCE = "api"


def _clean_name(name: Any) -> str:
    if name is None:
        return ""
    if not isinstance(name, str):
        raise ApplicationError("name must be a string.", code="invalid_name")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise ApplicationError(f"name is longer than {MAX_NAME_LENGTH} characters.", code="invalid_name")
    return name


def _clean_attributes(attributes: Any) -> dict[str, Any]:
    """A flat JSON object: at most MAX_ATTRIBUTES keys of at most MAX_ATTRIBUTE_KEY_LENGTH
    characters, MAX_ATTRIBUTES_BYTES of JSON in all. ``None`` values are kept (they remove the
    key when merged)."""
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise ApplicationError("attributes must be a JSON object.", code="invalid_attributes")
    if len(attributes) > MAX_ATTRIBUTES:
        raise ApplicationError(f"attributes has more than {MAX_ATTRIBUTES} keys.", code="invalid_attributes")
    for key in attributes:
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_ATTRIBUTE_KEY_LENGTH:
            raise ApplicationError(f"attribute names must be 1 to {MAX_ATTRIBUTE_KEY_LENGTH} characters.",
                                   code="invalid_attributes")
    try:
        size = len(json.dumps(attributes, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError) as exc:
        raise ApplicationError(f"attributes must be plain JSON ({exc}).", code="invalid_attributes") from exc
    if size > MAX_ATTRIBUTES_BYTES:
        raise ApplicationError(f"attributes take more than {MAX_ATTRIBUTES_BYTES} bytes of JSON.",
                               code="invalid_attributes")
    return dict(attributes)


def _clean_attributes_mode(mode: str) -> str:
    if mode not in ATTRIBUTE_MODES:
        raise ApplicationError(f"attributes_mode must be one of {', '.join(ATTRIBUTE_MODES)}.",
                               code="invalid_attributes_mode")
    return mode


def _clean_tag_names(names: Any) -> list[str]:
    """Distinct, stripped tag names in the order given."""
    if names is None:
        return []
    if isinstance(names, str | bytes | dict) or not isinstance(names, list | tuple):
        raise ApplicationError("tags must be a list of tag names.", code="invalid_tags")
    cleaned: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ApplicationError("tags must be non-empty strings.", code="invalid_tags")
        name = name.strip()
        if len(name) > MAX_TAG_LENGTH:
            raise ApplicationError(f"tag {name[:20]!r}… is longer than {MAX_TAG_LENGTH} characters.",
                                   code="invalid_tags")
        if name not in cleaned:
            cleaned.append(name)
    if len(cleaned) > MAX_TAGS_PER_CONTACT:
        raise ApplicationError(f"a contact can have at most {MAX_TAGS_PER_CONTACT} tags.", code="invalid_tags")
    return cleaned


def _clean_opt_in_status(status: Any) -> str:
    if status not in Contact.OptIn.values:
        raise ApplicationError(f"opt_in_status must be one of {', '.join(Contact.OptIn.values)}.",
                               code="invalid_opt_in_status")
    return status


def _clean_source(source: Any) -> str:
    if source is None or source == "":
        return DEFAULT_SOURCE
    if not isinstance(source, str):
        raise ApplicationError("opt_in_source must be a string.", code="invalid_opt_in_source")
    source = source.strip()
    if len(source) > MAX_SOURCE_LENGTH:
        raise ApplicationError(f"opt_in_source is longer than {MAX_SOURCE_LENGTH} characters.",
                               code="invalid_opt_in_source")
    return source or DEFAULT_SOURCE


def _merged(current: dict[str, Any], given: dict[str, Any], mode: str) -> dict[str, Any]:
    """``merge``: RFC 7386-style, shallow -- given keys overwrite, ``null`` removes a key.
    ``replace``: the given object, without its ``null`` values."""
    result = dict(current or {}) if mode == "merge" else {}
    for key, value in given.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def _apply_opt_in(contact: Contact, *, status: str, source: str, at: datetime) -> bool:
    """Move ``contact`` (unsaved) to opt-in ``status``; returns whether it changed."""
    if contact.opt_in_status == status:
        return False
    contact.opt_in_status = status
    contact.opt_in_source = source[:MAX_SOURCE_LENGTH]
    if status == Contact.OptIn.OPTED_IN:
        contact.opted_in_at = at
    elif status == Contact.OptIn.OPTED_OUT:
        contact.opted_out_at = at
    return True


def _opted_out_event(contact: Contact) -> tuple[str, dict[str, Any]]:
    return ("contact.opted_out", {"contact_id": contact.pk, "wa_id": contact.wa_id, "source": contact.opt_in_source})


# --- tags ---------------------------------------------------------------------------------

def tags_ensure(*, tenant: Tenant, names: Iterable[str]) -> dict[str, Tag]:
    """The tenant's tags named ``names``, creating the missing ones: one SELECT, and one
    INSERT when some are new (a tag created concurrently is picked up, not duplicated)."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    tags = Tag.objects.for_tenant(tenant)
    found = {tag.name: tag for tag in tags.filter(name__in=wanted)}
    missing = [name for name in wanted if name not in found]
    if missing:
        tags.bulk_create([Tag(tenant=tenant, name=name) for name in missing], ignore_conflicts=True)
        found.update({tag.name: tag for tag in tags.filter(name__in=missing)})
    return found


def contacts_tags_set(*, tenant: Tenant, assignments: dict[int, list[str]]) -> set[int]:
    """Make each contact's tags exactly the given names (``{contact_id: [names]}``), for any
    number of contacts in a bounded number of queries: tags, current links, one DELETE, one
    batched INSERT. Returns the ids of the contacts whose tags changed."""
    if not assignments:
        return set()
    by_name = tags_ensure(tenant=tenant, names=[name for names in assignments.values() for name in names])
    wanted = {(contact_id, by_name[name].pk) for contact_id, names in assignments.items() for name in names}
    links = ContactTag.objects.for_tenant(tenant)
    current = {(contact_id, tag_id): pk for pk, contact_id, tag_id in
               links.filter(contact_id__in=list(assignments)).values_list("pk", "contact_id", "tag_id")}
    stale = {pair: pk for pair, pk in current.items() if pair not in wanted}
    if stale:
        links.filter(pk__in=list(stale.values())).delete()
    new = sorted(wanted - set(current))
    if new:
        links.bulk_create([ContactTag(tenant=tenant, contact_id=contact_id, tag_id=tag_id) for contact_id, tag_id in new])
    return {contact_id for contact_id, _ in [*stale, *new]}


@transaction.atomic
def contact_tags_set(*, tenant: Tenant, contact: Contact, names: Iterable[str]) -> None:
    contacts_tags_set(tenant=tenant, assignments={contact.pk: _clean_tag_names(list(names))})


# --- single contacts -----------------------------------------------------------------------

def _emit_opted_out(*, tenant: Tenant, contact: Contact) -> None:
    from apps.webhooks.services import event_emit

    type, data = _opted_out_event(contact)
    event_emit(tenant=tenant, type=type, data=data)


@transaction.atomic
def contact_create(
    *,
    tenant: Tenant,
    wa_id: str,
    name: str = "",
    attributes: dict[str, Any] | None = None,
    tags: Iterable[str] | None = None,
    opt_in_status: str = Contact.OptIn.UNKNOWN,
    opt_in_source: str = DEFAULT_SOURCE,
    opt_in_at: datetime | None = None,
) -> Contact:
    """A new contact for ``wa_id`` (international digits or +E.164). 409 ``contact_exists``
    when the tenant already has that number."""
    wa_id = normalize_wa_id(wa_id)
    contacts = Contact.objects.for_tenant(tenant)
    existing = contacts.filter(wa_id=wa_id).values_list("pk", flat=True).first()
    if existing is not None:
        raise _exists(wa_id, existing)
    contact = Contact(tenant=tenant, wa_id=wa_id, name=_clean_name(name),
                      attributes=_merged({}, _clean_attributes(attributes), "replace"))
    opted_out = False
    status = _clean_opt_in_status(opt_in_status)
    if status != Contact.OptIn.UNKNOWN:
        _apply_opt_in(contact, status=status, source=_clean_source(opt_in_source), at=opt_in_at or timezone.now())
        opted_out = status == Contact.OptIn.OPTED_OUT
    tag_names = _clean_tag_names(tags)
    try:
        with transaction.atomic():
            contact.save()
    except IntegrityError as exc:  # created concurrently between the check and the INSERT
        existing = contacts.filter(wa_id=wa_id).values_list("pk", flat=True).first()
        raise _exists(wa_id, existing) from exc
    if tag_names:
        contacts_tags_set(tenant=tenant, assignments={contact.pk: tag_names})
    if opted_out:
        _emit_opted_out(tenant=tenant, contact=contact)
    return contact


def _exists(wa_id: str, contact_id: int | None) -> ApplicationError:
    return ApplicationError(f"A contact with the number +{wa_id} already exists.", code="contact_exists",
                            http_status=409, details={"wa_id": wa_id, "contact_id": contact_id})


@transaction.atomic
def contact_update(
    *,
    tenant: Tenant,
    contact: Contact,
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
    attributes_mode: str = "merge",
    tags: Iterable[str] | None = None,
    opt_in_status: str | None = None,
    opt_in_source: str | None = None,
    opt_in_at: datetime | None = None,
) -> Contact:
    """Change what is given (None: unchanged). ``attributes`` merge into the current ones
    (a ``null`` value removes a key) or, with ``attributes_mode="replace"``, replace them;
    ``tags`` become exactly the given list; an opt-in change records its source and time."""
    if contact.tenant_id != tenant.pk:
        raise ApplicationError("The contact belongs to another workspace.", code="not_found", http_status=404)
    changed: list[str] = []
    if name is not None:
        contact.name = _clean_name(name)
        changed.append("name")
    if attributes is not None:
        contact.attributes = _merged(contact.attributes, _clean_attributes(attributes),
                                     _clean_attributes_mode(attributes_mode))
        changed.append("attributes")
    opted_out = False
    if opt_in_status is not None:
        status = _clean_opt_in_status(opt_in_status)
        if _apply_opt_in(contact, status=status, source=_clean_source(opt_in_source), at=opt_in_at or timezone.now()):
            changed += ["opt_in_status", "opt_in_source", "opted_in_at", "opted_out_at"]
            opted_out = status == Contact.OptIn.OPTED_OUT
    tag_names = None if tags is None else _clean_tag_names(list(tags))
    if changed or tag_names is not None:
        contact.save(update_fields=[*changed, "updated_at"])
    if tag_names is not None:
        contacts_tags_set(tenant=tenant, assignments={contact.pk: tag_names})
    if opted_out:
        _emit_opted_out(tenant=tenant, contact=contact)
    return contact


@transaction.atomic
def contact_delete(*, tenant: Tenant, contact: Contact) -> None:
    """Delete the contact with its tags links, conversations and messages."""
    if contact.tenant_id != tenant.pk:
        raise ApplicationError("The contact belongs to another workspace.", code="not_found", http_status=404)
    contact.delete()


# --- bulk upsert ---------------------------------------------------------------------------

@dataclass
class BulkRowError:
    index: int
    code: str
    message: str


@dataclass
class BulkUpsertReport:
    created: int = 0
    updated: int = 0
    errors: list[BulkRowError] = field(default_factory=list)
    # wa_id -> contact id, for every row applied
    contact_ids: dict[str, int] = field(default_factory=dict)


@dataclass
class _Row:
    index: int
    wa_id: str
    name: str | None
    attributes: dict[str, Any] | None
    tags: list[str] | None
    opt_in_status: str | None
    opt_in_source: str


_ROW_ERROR_CODES = {"invalid_recipient": "invalid_phone_number"}


def _parse_row(index: int, row: Any, *, default_country: str | None) -> _Row:
    if not isinstance(row, dict):
        raise ApplicationError("Each contact must be a JSON object.", code="invalid_row")
    wa_id, phone = row.get("wa_id"), row.get("phone")
    if wa_id not in (None, "") and phone not in (None, ""):
        raise ApplicationError("Give wa_id or phone, not both.", code="invalid_phone_number")
    national_allowed = wa_id in (None, "")
    raw_number = phone if national_allowed else wa_id
    if raw_number in (None, ""):
        raise ApplicationError("The contact has no wa_id or phone.", code="missing_phone_number")
    if not isinstance(raw_number, str | int) or isinstance(raw_number, bool):
        raise ApplicationError("wa_id / phone must be a string.", code="invalid_phone_number")
    try:
        # A wa_id is international by definition; only a phone may be national.
        wa_id = normalize_wa_id(raw_number, default_region=default_country if national_allowed else None)
    except InvalidPhoneNumber as exc:
        raise ApplicationError(exc.message, code="invalid_phone_number") from exc
    status = row.get("opt_in_status")
    return _Row(
        index=index,
        wa_id=wa_id,
        name=_clean_name(row["name"]) if "name" in row else None,
        attributes=_clean_attributes(row["attributes"]) if row.get("attributes") is not None else None,
        tags=_clean_tag_names(row["tags"]) if row.get("tags") is not None else None,
        opt_in_status=_clean_opt_in_status(status) if status is not None else None,
        opt_in_source=_clean_source(row.get("opt_in_source")),
    )


def _clean_country(default_country: str | None) -> str | None:
    if default_country in (None, ""):
        return None
    if not isinstance(default_country, str) or len(default_country) != 2 or not default_country.isalpha():
        raise ApplicationError("default_country must be an ISO 3166 alpha-2 code such as 'US' or 'IN'.",
                               code="invalid_default_country")
    return default_country.upper()


@transaction.atomic
def contacts_bulk_upsert(
    *,
    tenant: Tenant,
    rows: list[Any],
    default_country: str | None = None,
    attributes_mode: str = "merge",
) -> BulkUpsertReport:
    """Create or update up to MAX_BULK_ROWS contacts by number, in a bounded number of queries
    whatever the batch size: one SELECT for the numbers that exist, batched INSERTs and UPDATEs,
    tags in bulk.

    A row is an object with ``wa_id`` (international) or ``phone`` (national numbers read
    with ``default_country``) and optionally ``name``, ``attributes``,
    ``tags`` (the contact's tags become exactly these), ``opt_in_status`` and ``opt_in_source``.
    Fields a row leaves out are not touched on an existing contact. A bad row is reported with
    its index and skipped; the others are applied. When a number appears twice, the first row
    is applied and the later ones are reported as ``duplicate_in_batch``.
    """
    if not isinstance(rows, list):
        raise ApplicationError("contacts must be a list.", code="invalid_request")
    if len(rows) > MAX_BULK_ROWS:
        raise ApplicationError(f"At most {MAX_BULK_ROWS} contacts per call; got {len(rows)}.",
                               code="too_many_contacts", details={"max": MAX_BULK_ROWS, "given": len(rows)})
    country = _clean_country(default_country)
    mode = _clean_attributes_mode(attributes_mode)
    report = BulkUpsertReport()
    parsed: dict[str, _Row] = {}
    for index, raw in enumerate(rows):
        try:
            row = _parse_row(index, raw, default_country=country)
        except ApplicationError as exc:
            report.errors.append(BulkRowError(index, _ROW_ERROR_CODES.get(exc.code, exc.code), exc.message))
            continue
        first = parsed.get(row.wa_id)
        if first is not None:
            report.errors.append(BulkRowError(
                index, "duplicate_in_batch", f"+{row.wa_id} already appears at index {first.index}; this row is skipped."))
            continue
        parsed[row.wa_id] = row
    if parsed:
        try:
            with transaction.atomic():
                _bulk_apply(tenant=tenant, rows=parsed, mode=mode, report=report)
        except IntegrityError:
            # Another request created some of these numbers since we looked: look again, once.
            report.created = report.updated = 0
            report.contact_ids = {}
            try:
                with transaction.atomic():
                    _bulk_apply(tenant=tenant, rows=parsed, mode=mode, report=report)
            except IntegrityError as exc:
                raise ApplicationError("Other requests are changing these contacts right now; send the batch again.",
                                       code="concurrent_update", http_status=409) from exc
    report.errors.sort(key=lambda error: error.index)
    return report


def _bulk_apply(*, tenant: Tenant, rows: dict[str, _Row], mode: str, report: BulkUpsertReport) -> None:
    from apps.webhooks.services import event_emit_many

    now = timezone.now()
    contacts = Contact.objects.for_tenant(tenant)
    existing = {contact.wa_id: contact for contact in contacts.filter(wa_id__in=list(rows))}
    to_create: list[Contact] = []
    to_update: list[Contact] = []
    update_fields: set[str] = set()
    opted_out: list[Contact] = []
    for wa_id, row in rows.items():
        contact = existing.get(wa_id)
        is_new = contact is None
        if contact is None:
            contact = Contact(tenant=tenant, wa_id=wa_id, attributes={})
        changed: set[str] = set()
        if row.name is not None and row.name != contact.name:
            contact.name = row.name
            changed.add("name")
        if row.attributes is not None:
            merged = _merged(contact.attributes, row.attributes, mode)
            if merged != contact.attributes:
                contact.attributes = merged
                changed.add("attributes")
        if row.opt_in_status is not None and _apply_opt_in(contact, status=row.opt_in_status,
                                                           source=row.opt_in_source, at=now):
            changed |= {"opt_in_status", "opt_in_source", "opted_in_at", "opted_out_at"}
            if row.opt_in_status == Contact.OptIn.OPTED_OUT:
                opted_out.append(contact)
        if is_new:
            to_create.append(contact)
        else:
            report.updated += 1
            if changed:
                contact.updated_at = now
                update_fields |= changed
                to_update.append(contact)
    if to_create:
        contacts.bulk_create(to_create)
        report.created = len(to_create)
        if any(contact.pk is None for contact in to_create):  # a database without INSERT … RETURNING
            ids = dict(contacts.filter(wa_id__in=[c.wa_id for c in to_create]).values_list("wa_id", "pk"))
            for contact in to_create:
                contact.pk = ids[contact.wa_id]
    if to_update:
        contacts.bulk_update(to_update, fields=sorted(update_fields | {"updated_at"}))
    everyone = {**existing, **{contact.wa_id: contact for contact in to_create}}
    report.contact_ids = {wa_id: everyone[wa_id].pk for wa_id in rows}
    assignments = {everyone[wa_id].pk: row.tags for wa_id, row in rows.items() if row.tags is not None}
    retagged = contacts_tags_set(tenant=tenant, assignments=assignments)
    # A contact whose only change is its tags is still "updated" for updated_since readers.
    retagged -= {contact.pk for contact in [*to_create, *to_update]}
    if retagged:
        contacts.filter(pk__in=sorted(retagged)).update(updated_at=now)
    if opted_out:
        event_emit_many(tenant=tenant, events=[_opted_out_event(contact) for contact in opted_out])


# --- the contacts page: typed attributes, bulk actions, segments, imports --------------------

def attribute_definition_create(*, tenant: Tenant, label: str, type: str, key: str = "") -> AttributeDefinition:
    """A new typed attribute. ``key`` (how it is stored and filtered) defaults to the label in
    snake_case and cannot change later; the label can."""
    from .attributes import KEY_RE, key_from_label

    label = (label or "").strip()
    if not label:
        raise ApplicationError("Give the attribute a name.", code="invalid_attribute")
    if len(label) > 100:
        raise ApplicationError("The name is longer than 100 characters.", code="invalid_attribute")
    if type not in AttributeDefinition.Type.values:
        raise ApplicationError("Choose the attribute's type.", code="invalid_attribute")
    key = (key or "").strip() or key_from_label(label)
    if not KEY_RE.match(key):
        raise ApplicationError("The key must start with a letter and use only a-z, 0-9 and _ (at most 64).",
                               code="invalid_attribute")
    definitions = AttributeDefinition.objects.for_tenant(tenant)
    if definitions.filter(key=key).exists():
        raise ApplicationError(f"An attribute with the key “{key}” already exists.", code="attribute_exists",
                               http_status=409)
    try:
        with transaction.atomic():
            return definitions.create(tenant=tenant, key=key, label=label, type=type)
    except IntegrityError as exc:
        raise ApplicationError(f"An attribute with the key “{key}” already exists.", code="attribute_exists",
                               http_status=409) from exc


@transaction.atomic
def attribute_definition_delete(*, tenant: Tenant, definition: AttributeDefinition) -> None:
    """Forget the definition; values already stored on contacts are kept (they show as plain
    attributes and still filter and export)."""
    definition.delete()


def contact_attributes_from_form(*, definitions: Iterable[AttributeDefinition], data: dict[str, Any]) -> tuple[
        dict[str, Any], dict[str, str]]:
    """Typed values for the defined attributes from a form (``attr_<key>`` fields): a blank
    field becomes ``None`` (removes the key when merged). Returns (values, errors by key)."""
    from .attributes import InvalidAttributeValue, parse_value

    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for definition in definitions:
        raw = data.get(f"attr_{definition.key}")
        if definition.type == AttributeDefinition.Type.BOOLEAN and raw in (None, ""):
            values[definition.key] = None
            continue
        try:
            values[definition.key] = parse_value(definition.type, raw)
        except InvalidAttributeValue as exc:
            errors[definition.key] = exc.message
    return values, errors


@transaction.atomic
def contacts_tag_add(*, tenant: Tenant, contact_ids: Iterable[int], name: str) -> int:
    """Put the tag ``name`` (created when new) on the contacts; returns how many gained it."""
    (name,) = _clean_tag_names([name])
    tag = tags_ensure(tenant=tenant, names=[name])[name]
    ids = set(contact_ids)
    links = ContactTag.objects.for_tenant(tenant)
    have = set(links.filter(tag=tag, contact_id__in=ids).values_list("contact_id", flat=True))
    new = sorted(ids - have)
    links.bulk_create([ContactTag(tenant=tenant, contact_id=pk, tag=tag) for pk in new], batch_size=500,
                      ignore_conflicts=True)
    if new:
        Contact.objects.for_tenant(tenant).filter(pk__in=new).update(updated_at=timezone.now())
    return len(new)


@transaction.atomic
def contacts_tag_remove(*, tenant: Tenant, contact_ids: Iterable[int], name: str) -> int:
    tag = Tag.objects.for_tenant(tenant).filter(name=name.strip()).first()
    if tag is None:
        return 0
    ids = list(contact_ids)
    links = ContactTag.objects.for_tenant(tenant).filter(tag=tag, contact_id__in=ids)
    touched = list(links.values_list("contact_id", flat=True))
    links.delete()
    if touched:
        Contact.objects.for_tenant(tenant).filter(pk__in=touched).update(updated_at=timezone.now())
    return len(touched)


@transaction.atomic
def contacts_delete(*, tenant: Tenant, contact_ids: Iterable[int]) -> int:
    """Delete the tenant's contacts among ``contact_ids`` (with their conversations)."""
    deleted = 0
    ids = sorted(set(contact_ids))
    for start in range(0, len(ids), 1000):
        batch = Contact.objects.for_tenant(tenant).filter(pk__in=ids[start:start + 1000])
        deleted += batch.delete()[1].get(Contact._meta.label, 0)  # cascades to conversations
    return deleted


@transaction.atomic
def segment_save(*, tenant: Tenant, name: str, filters: dict[str, Any], segment: Segment | None = None) -> Segment:
    """Save a filter (the ``selectors.contact_filter`` shape, checked here) under a name; a
    segment with the same name is updated (so "save" twice refines it)."""
    from .selectors import contact_filter

    name = (name or "").strip()
    if not name:
        raise ApplicationError("Give the segment a name.", code="invalid_segment")
    if len(name) > Segment._meta.get_field("name").max_length:
        raise ApplicationError("The segment's name is too long.", code="invalid_segment")
    contact_filter(tenant=tenant, filters=filters).exists()  # refuses an unknown key or operator
    segments = Segment.objects.for_tenant(tenant)
    segment = segment or segments.filter(name=name).first()
    if segment is None:
        return segments.create(tenant=tenant, name=name, filters=filters)
    segment.name, segment.filters = name, filters
    segment.save(update_fields=["name", "filters", "updated_at"])
    return segment


@transaction.atomic
def segment_delete(*, tenant: Tenant, segment: Segment) -> None:
    segment.delete()


def contact_import_create(*, tenant: Tenant, user: Any, upload: Any = None, url: str = "") -> ContactImport:
    """Store an uploaded file (or a public Google Sheet fetched as CSV) as a draft import with
    its header and a row count, ready for the column mapping."""
    from django.core.files.base import ContentFile

    from . import importer

    if upload is not None:
        if upload.size > importer.MAX_FILE_BYTES:
            raise ApplicationError(f"The file is larger than {importer.MAX_FILE_BYTES // (1024 * 1024)} MB.",
                                   code="import_too_large")
        data = upload.read()
        source, source_url, original_name = ContactImport.Source.UPLOAD, "", upload.name[:255]
    elif url.strip():
        csv_url = importer.sheet_csv_url(url)
        data = importer.fetch_csv(csv_url)
        source, source_url, original_name = ContactImport.Source.GOOGLE_SHEET, url.strip()[:2000], "Google Sheet"
    else:
        raise ApplicationError("Choose a CSV file or paste a Google Sheet link.", code="import_no_source")
    summary = importer.summarize(data)
    definitions = list(AttributeDefinition.objects.for_tenant(tenant))
    contact_import = ContactImport(
        tenant=tenant, created_by=user if getattr(user, "pk", None) else None, source=source, source_url=source_url,
        original_name=original_name, size_bytes=len(data), encoding=summary.encoding, delimiter=summary.delimiter,
        headers=summary.headers, total_rows=summary.total_rows,
        mapping=importer.guess_mapping(summary.headers, definitions),
    )
    contact_import.file.save(f"contacts-{tenant.pk}.csv", ContentFile(data), save=False)
    contact_import.save()
    return contact_import


@transaction.atomic
def contact_import_start(*, tenant: Tenant, contact_import: ContactImport, mapping: list[str],
                         default_country: str = "", on_existing: str = ContactImport.OnExisting.UPDATE) -> ContactImport:
    """Check the mapping and queue the run (on the ``default`` queue, after commit)."""
    from . import importer
    from .tasks import contact_import_run_task

    locked = ContactImport.objects.for_tenant(tenant).select_for_update().get(pk=contact_import.pk)
    if locked.status != ContactImport.Status.DRAFT:
        raise ApplicationError("This import has already been started.", code="import_started", http_status=409)
    definitions = list(AttributeDefinition.objects.for_tenant(tenant))
    locked.mapping = importer.check_mapping(mapping, locked.headers, definitions)
    locked.default_country = _clean_country(default_country) or ""
    if on_existing not in ContactImport.OnExisting.values:
        raise ApplicationError("Choose what happens to contacts that already exist.", code="import_invalid_mapping")
    locked.on_existing = on_existing
    locked.status = ContactImport.Status.QUEUED
    locked.save(update_fields=["mapping", "default_country", "on_existing", "status", "updated_at"])
    transaction.on_commit(lambda: contact_import_run_task.delay(tenant_id=tenant.pk, import_id=locked.pk))
    return locked


def contact_import_run(*, tenant_id: int, import_id: int) -> ContactImport | None:
    """Claim a queued (or interrupted) import and run it; a finished one is left alone, so a
    redelivered task does nothing. A failure is recorded on the import, then raised."""
    from . import importer

    imports = ContactImport.objects.for_tenant(tenant_id)
    claimed = imports.filter(pk=import_id, status__in=[ContactImport.Status.QUEUED, ContactImport.Status.RUNNING]
                             ).update(status=ContactImport.Status.RUNNING, updated_at=timezone.now())
    if not claimed:
        return None
    contact_import = imports.get(pk=import_id)
    if contact_import.started_at is None:
        contact_import.started_at = timezone.now()
        contact_import.save(update_fields=["started_at"])
    try:
        return importer.run(contact_import)
    except Exception as exc:
        imports.filter(pk=import_id).update(status=ContactImport.Status.FAILED, finished_at=timezone.now(),
                                            failure_message=f"The import stopped: {exc}"[:2000])
        raise


QUEUED_STALE_SECONDS = 60
RUNNING_STALE_SECONDS = 300


def contact_imports_sweep(*, now: datetime | None = None) -> int:
    """Ring again for imports whose bell was lost (queued for a minute with nobody on it) or
    whose worker died (running, no chunk committed for five minutes; a chunk takes seconds).
    The run resumes from the rows already committed. Returns how many were rung."""
    from datetime import timedelta

    from django.db.models import Q

    from .tasks import contact_import_run_task

    now = now or timezone.now()
    S = ContactImport.Status
    stale = ContactImport.objects.unscoped().filter(
        Q(status=S.QUEUED, updated_at__lt=now - timedelta(seconds=QUEUED_STALE_SECONDS))
        | Q(status=S.RUNNING, updated_at__lt=now - timedelta(seconds=RUNNING_STALE_SECONDS)))
    rung = 0
    for pk, tenant_id in stale.values_list("pk", "tenant_id")[:100]:
        # Touch it first, so the next sweep leaves it alone while this bell is answered.
        ContactImport.objects.for_tenant(tenant_id).filter(pk=pk).update(updated_at=now)
        transaction.on_commit(lambda pk=pk, tenant_id=tenant_id: contact_import_run_task.delay(
            tenant_id=tenant_id, import_id=pk))
        rung += 1
    return rung
