from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from apps.tenants.models import Tenant

from .models import Contact, ContactTag, Segment


def contact_list(
    *,
    tenant: Tenant,
    search: str = "",
    tags: Iterable[str] | None = None,
    opt_in_status: str | None = None,
    updated_since: datetime | None = None,
) -> QuerySet[Contact]:
    """Newest first, tags prefetched. ``search`` matches the name, the WhatsApp profile name or
    the start of the number; ``tags``: contacts carrying every one of the given tag names."""
    qs = Contact.objects.for_tenant(tenant).prefetch_related("tags").order_by("-id")
    search = search.strip()
    if search:
        digits = "".join(ch for ch in search if ch.isdigit())
        condition = Q(name__icontains=search) | Q(profile_name__icontains=search)
        if digits:
            condition |= Q(wa_id__startswith=digits)
        qs = qs.filter(condition)
    for name in dict.fromkeys(tags or ()):
        tagged = ContactTag.objects.for_tenant(tenant).filter(tag__name=name).values("contact_id")
        qs = qs.filter(pk__in=tagged)
    if opt_in_status:
        qs = qs.filter(opt_in_status=opt_in_status)
    if updated_since is not None:
        qs = qs.filter(updated_at__gte=updated_since)
    return qs


def access_contact(*, tenant: Tenant, contact_id: Any) -> Contact:
    """The tenant's contact with its tags; another tenant's id (or no such id) is a 404."""
    try:
        pk = int(contact_id)
    except (TypeError, ValueError) as exc:
        raise Http404("No contact matches the given query.") from exc
    contact = Contact.objects.for_tenant(tenant).prefetch_related("tags").filter(pk=pk).first()
    if contact is None:
        raise Http404("No contact matches the given query.")
    return contact


# The one shape of a contact filter, shared by the contacts page, saved segments and campaign
# audiences:
#   {"q": "ana",                         name, profile name or the start of the number
#    "tags": ["vip", "lisbon"],          carrying every one of these tags
#    "any_tags": ["a", "b"],             carrying at least one of these tags
#    "opt_in": "opted_in",               an opt-in state (Contact.OptIn)
#    "attributes": [{"key": "plan", "op": "eq", "value": "gold"}, ...]}
# Attribute operators: eq, ne, contains, exists, missing, gt, gte, lt, lte (numbers and ISO dates).
ATTRIBUTE_OPERATORS = ("eq", "ne", "contains", "exists", "missing", "gt", "gte", "lt", "lte")
FILTER_KEYS = frozenset({"q", "tags", "any_tags", "opt_in", "attributes"})


def contact_filter(*, tenant: Tenant, filters: dict[str, Any] | None) -> QuerySet[Contact]:
    """The tenant's contacts matching ``filters`` (shape above), newest first. Unknown keys or
    operators raise ``ApplicationError`` rather than silently widening the audience."""
    from apps.core.exceptions import ApplicationError

    filters = filters or {}
    unknown = set(filters) - FILTER_KEYS
    if unknown:
        raise ApplicationError(f"Unknown contact filter: {', '.join(sorted(unknown))}.", code="invalid_filter")
    qs = contact_list(tenant=tenant, search=str(filters.get("q") or ""), tags=filters.get("tags") or None,
                      opt_in_status=filters.get("opt_in") or None)
    any_tags = [str(name) for name in filters.get("any_tags") or ()]
    if any_tags:
        tagged = ContactTag.objects.for_tenant(tenant).filter(tag__name__in=any_tags).values("contact_id")
        qs = qs.filter(pk__in=tagged)
    for rule in filters.get("attributes") or ():
        if not isinstance(rule, dict) or not rule.get("key"):
            raise ApplicationError("Each attribute filter needs a key.", code="invalid_filter")
        key, op, value = str(rule["key"]), rule.get("op", "eq"), rule.get("value")
        if op not in ATTRIBUTE_OPERATORS:
            raise ApplicationError(f"Unknown attribute operator {op!r}.", code="invalid_filter")
        field = f"attributes__{key}"
        if op == "exists":
            qs = qs.filter(attributes__has_key=key)
        elif op == "missing":
            qs = qs.exclude(attributes__has_key=key)
        elif op == "eq":
            qs = qs.filter(**{field: value})
        elif op == "ne":
            # Contacts without the key are "not equal" too (SQL would call the comparison unknown).
            qs = qs.exclude(Q(attributes__has_key=key) & Q(**{field: value}))
        elif op == "contains":
            qs = qs.filter(**{f"{field}__icontains": str(value)})
        else:
            qs = qs.filter(**{f"{field}__{op}": value})
    return qs


def segment_list(*, tenant: Tenant) -> QuerySet[Segment]:
    return Segment.objects.for_tenant(tenant).order_by("name")


def access_segment(*, tenant: Tenant, segment_id: Any) -> Segment:
    try:
        pk = int(segment_id)
    except (TypeError, ValueError) as exc:
        raise Http404("No segment matches the given query.") from exc
    segment = Segment.objects.for_tenant(tenant).filter(pk=pk).first()
    if segment is None:
        raise Http404("No segment matches the given query.")
    return segment


# --- the contacts page ------------------------------------------------------------------------

COUNT_CAP = 10_000


def contact_page(*, tenant: Tenant, filters: dict[str, Any] | None, after: int | None = None,
                 size: int = 50) -> tuple[list[Contact], int | None]:
    """One page of the filtered contacts, newest first, by keyset (``id < after``): the
    page's rows and the cursor of the next page (None on the last one). No COUNT."""
    qs = contact_filter(tenant=tenant, filters=filters)
    if after is not None:
        qs = qs.filter(pk__lt=after)
    rows = list(qs[: size + 1])
    if len(rows) > size:
        return rows[:size], rows[size - 1].pk
    return rows, None


def contact_count(*, tenant: Tenant, filters: dict[str, Any] | None, cap: int | None = None) -> tuple[int, bool]:
    """How many contacts match, counting no further than ``cap`` (COUNT_CAP): (count, whether
    it hit the cap). ``SELECT COUNT(*) FROM (… LIMIT cap+1)`` stays fast however large the
    table is."""
    cap = cap or COUNT_CAP
    qs = contact_filter(tenant=tenant, filters=filters).order_by().values("pk")
    count = qs[: cap + 1].count()
    return min(count, cap), count > cap


def contact_export_rows(*, tenant: Tenant, filters: dict[str, Any] | None, chunk_size: int = 2000):
    """Every matching contact with its tags, streamed from the database in chunks."""
    return contact_filter(tenant=tenant, filters=filters).iterator(chunk_size=chunk_size)


def contact_ids_matching(*, tenant: Tenant, filters: dict[str, Any] | None) -> list[int]:
    return list(contact_filter(tenant=tenant, filters=filters).order_by().values_list("pk", flat=True))


def tag_list(*, tenant: Tenant):
    from .models import Tag

    return Tag.objects.for_tenant(tenant).order_by("name")


def attribute_definition_list(*, tenant: Tenant):
    from .models import AttributeDefinition

    return AttributeDefinition.objects.for_tenant(tenant).order_by("label")


def _access(model, *, tenant: Tenant, pk: Any, what: str):
    try:
        pk = int(pk)
    except (TypeError, ValueError) as exc:
        raise Http404(f"No {what} matches the given query.") from exc
    obj = model.objects.for_tenant(tenant).filter(pk=pk).first()
    if obj is None:
        raise Http404(f"No {what} matches the given query.")
    return obj


def access_attribute_definition(*, tenant: Tenant, attribute_id: Any):
    from .models import AttributeDefinition

    return _access(AttributeDefinition, tenant=tenant, pk=attribute_id, what="attribute")


def contact_import_list(*, tenant: Tenant, limit: int = 10):
    from .models import ContactImport

    return ContactImport.objects.for_tenant(tenant).select_related("created_by").order_by("-id")[:limit]


def access_contact_import(*, tenant: Tenant, import_id: Any):
    from .models import ContactImport

    return _access(ContactImport, tenant=tenant, pk=import_id, what="import")
