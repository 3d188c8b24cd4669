"""The contacts pages: list with filters and keyset paging, one contact, typed attributes,
segments, imports and exports. Thin: selectors read, services write, errors show inline."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect, QueryDict, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from apps.core.exceptions import ApplicationError
from apps.core.phone import InvalidPhoneNumber, normalize_wa_id
from apps.tenants.decorators import TenantHttpRequest, tenant_member_required
from apps.tenants.roles import role_may

from . import selectors as sel
from . import services
from .attributes import display_value
from .forms import OPERATOR_LABELS, describe_filters, filters_from_query, filters_to_query
from .models import AttributeDefinition, Contact, ContactImport

PAGE_SIZE = 50
LIST_ATTRIBUTE_COLUMNS = 2
COUNTRIES = (
    ("", "None: numbers carry their country code"), ("US", "United States / Canada (+1)"), ("GB", "United Kingdom (+44)"),
    ("IN", "India (+91)"), ("BR", "Brazil (+55)"), ("MX", "Mexico (+52)"), ("DE", "Germany (+49)"),
    ("FR", "France (+33)"), ("ES", "Spain (+34)"), ("IT", "Italy (+39)"), ("PT", "Portugal (+351)"),
    ("NL", "Netherlands (+31)"), ("ID", "Indonesia (+62)"), ("NG", "Nigeria (+234)"), ("ZA", "South Africa (+27)"),
    ("KE", "Kenya (+254)"), ("AE", "United Arab Emirates (+971)"), ("SA", "Saudi Arabia (+966)"),
    ("AR", "Argentina (+54)"), ("CO", "Colombia (+57)"), ("AU", "Australia (+61)"), ("SG", "Singapore (+65)"),
)


def _render(request: TenantHttpRequest, template_name: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    with timezone.override(request.tenant.time_zone):
        return render(request, template_name, {"section": "contacts", "can_manage": _can_manage(request),
                                               **context}, status=status)


def _can_manage(request: TenantHttpRequest) -> bool:
    return role_may(request.membership.role, "contacts.manage")


def _require_manage(request: TenantHttpRequest) -> None:
    if not _can_manage(request):
        raise PermissionDenied(f"Your role ({request.membership.get_role_display()}) cannot change contacts in bulk, "
                               "import, export or manage attributes and segments.")


def _fragment(request: TenantHttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def _redirect(request: TenantHttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if _fragment(request) else HttpResponseRedirect(url)


def _list_url(request: TenantHttpRequest, query: str = "") -> str:
    url = reverse("contacts:list", kwargs={"tenant_slug": request.tenant.slug})
    return f"{url}?{query}" if query else url


def _int(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 19 else None


# --- list ---------------------------------------------------------------------------------

@require_GET
@tenant_member_required("contacts")
def contact_list_page(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = request.tenant
    definitions = list(sel.attribute_definition_list(tenant=tenant))
    parsed = filters_from_query(request.GET, definitions)
    after = _int(request.GET.get("after"))
    try:
        rows, next_cursor = sel.contact_page(tenant=tenant, filters=parsed.filters, after=after, size=PAGE_SIZE)
    except ApplicationError as exc:
        parsed.errors.append(exc.message)
        parsed.filters = {}
        rows, next_cursor = sel.contact_page(tenant=tenant, filters={}, after=after, size=PAGE_SIZE)
    query = filters_to_query(parsed.filters)
    columns = definitions[:LIST_ATTRIBUTE_COLUMNS]
    context: dict[str, Any] = {
        "rows": [_row(contact, columns) for contact in rows], "next_cursor": next_cursor, "query": query,
        "columns": columns, "parsed": parsed,
    }
    if after is not None and _fragment(request):
        return _render(request, "contacts/list.html#rows", context)
    count, capped = sel.contact_count(tenant=tenant, filters=parsed.filters)
    context.update({
        "count": count, "count_capped": capped, "count_cap": sel.COUNT_CAP,
        "chips": describe_filters(parsed.filters), "definitions": definitions,
        "tags": list(sel.tag_list(tenant=tenant)), "selected_tags": request.GET.getlist("tag"),
        "tag_mode": "any" if "any_tags" in parsed.filters else "all",
        "opt_in": parsed.filters.get("opt_in", ""), "opt_in_choices": Contact.OptIn.choices,
        "attribute_rows": parsed.rows or [], "operators": OPERATOR_LABELS.items(),
        "segments": [{"segment": s, "query": filters_to_query(s.filters), "summary": ", ".join(describe_filters(s.filters))
                      or "every contact"} for s in sel.segment_list(tenant=tenant)],
        "q": parsed.filters.get("q", ""),
    })
    if _fragment(request) and request.htmx.target == "results":
        return _render(request, "contacts/list.html#results", context)
    return _render(request, "contacts/list.html", context)


def _row(contact: Contact, columns: list[AttributeDefinition]) -> dict[str, Any]:
    attributes = contact.attributes or {}
    return {"contact": contact, "values": [display_value(d.type, attributes.get(d.key)) for d in columns]}


@require_POST
@tenant_member_required("contacts")
def contact_bulk(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """Add a tag to, remove a tag from, or delete the selected contacts (or every contact the
    current filter matches, when "all matching" was chosen)."""
    _require_manage(request)
    tenant = request.tenant
    query = request.POST.get("filter_query", "")
    if request.POST.get("scope") == "matching":
        parsed = filters_from_query(QueryDict(query), list(sel.attribute_definition_list(tenant=tenant)))
        ids = sel.contact_ids_matching(tenant=tenant, filters=parsed.filters)
    else:
        ids = [pk for pk in (_int(v) for v in request.POST.getlist("ids")) if pk is not None]
        ids = list(Contact.objects.for_tenant(tenant).filter(pk__in=ids).values_list("pk", flat=True))
    action, tag = request.POST.get("action", ""), request.POST.get("tag", "").strip()
    try:
        if not ids:
            raise ApplicationError("Select at least one contact.", code="nothing_selected")
        if action == "tag_add":
            if not tag:
                raise ApplicationError("Type the tag to add.", code="invalid_tags")
            changed = services.contacts_tag_add(tenant=tenant, contact_ids=ids, name=tag)
            messages.success(request, f"Tagged {changed:,} contact{'s' * (changed != 1)} “{tag}”.")
        elif action == "tag_remove":
            if not tag:
                raise ApplicationError("Type the tag to remove.", code="invalid_tags")
            changed = services.contacts_tag_remove(tenant=tenant, contact_ids=ids, name=tag)
            messages.success(request, f"Removed “{tag}” from {changed:,} contact{'s' * (changed != 1)}.")
        elif action == "delete":
            deleted = services.contacts_delete(tenant=tenant, contact_ids=ids)
            messages.success(request, f"Deleted {deleted:,} contact{'s' * (deleted != 1)}.")
        else:
            raise ApplicationError("Choose an action.", code="invalid_action")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return _redirect(request, _list_url(request, query))


@require_GET
@tenant_member_required("contacts")
def contact_export(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """Every contact the filter matches as CSV, streamed: tags, opt-in, and one column per
    defined attribute (other stored attributes in a JSON column)."""
    _require_manage(request)
    tenant = request.tenant
    definitions = list(sel.attribute_definition_list(tenant=tenant))
    parsed = filters_from_query(request.GET, definitions)
    if parsed.errors:
        messages.error(request, " ".join(parsed.errors))
        return HttpResponseRedirect(_list_url(request, request.GET.urlencode()))
    rows = sel.contact_export_rows(tenant=tenant, filters=parsed.filters)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(_export_lines(rows, definitions), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="contacts-{tenant.slug}-{stamp}.csv"'
    return response


class _Echo:
    def write(self, value: str) -> str:
        return value


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """Text a spreadsheet would run as a formula is prefixed with an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _iso(value: Any) -> str:
    return value.isoformat() if value else ""


def _export_lines(rows: Iterable[Contact], definitions: list[AttributeDefinition]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    keys = [d.key for d in definitions]
    yield "\ufeff" + writer.writerow(["phone", "name", "profile_name", "tags", "opt_in_status", "opt_in_source",
                                      "opted_in_at", "opted_out_at", "last_inbound_at", "created_at", *keys,
                                      "other_attributes"])
    types = {d.key: d.type for d in definitions}
    for contact in rows:
        attributes = contact.attributes or {}
        values = []
        for key in keys:
            value = attributes.get(key)
            if isinstance(value, bool):
                value = "yes" if value else "no"
            values.append(csv_safe(value) if value is not None else "")
        others = {k: v for k, v in attributes.items() if k not in types}
        yield writer.writerow([
            f"+{contact.wa_id}", csv_safe(contact.name), csv_safe(contact.profile_name),
            csv_safe(", ".join(tag.name for tag in contact.tags.all())), contact.opt_in_status,
            csv_safe(contact.opt_in_source), _iso(contact.opted_in_at), _iso(contact.opted_out_at),
            _iso(contact.last_inbound_at), _iso(contact.created_at), *values,
            csv_safe(json.dumps(others, ensure_ascii=False)) if others else "",
        ])


# --- one contact --------------------------------------------------------------------------

def _split_tags(text: str) -> list[str]:
    return [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]


def _form_context(request: TenantHttpRequest, contact: Contact | None, form: dict[str, Any],
                  errors: dict[str, str], definitions: list[AttributeDefinition]) -> dict[str, Any]:
    attributes = (contact.attributes or {}) if contact else {}
    fields = []
    for d in definitions:
        value = form.get(f"attr_{d.key}")
        if value is None:
            stored = attributes.get(d.key)
            value = "" if stored is None else ("yes" if stored is True else "no" if stored is False else str(stored))
        fields.append({"definition": d, "name": f"attr_{d.key}", "value": value, "error": errors.get(d.key, "")})
    defined = {d.key for d in definitions}
    return {
        "contact": contact, "form": form, "errors": errors, "attribute_fields": fields,
        "other_attributes": [(k, v) for k, v in attributes.items() if k not in defined],
        "countries": COUNTRIES, "all_tags": list(sel.tag_list(tenant=request.tenant)),
    }


@require_http_methods(["GET", "POST"])
@tenant_member_required("contacts")
def contact_create(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = request.tenant
    definitions = list(sel.attribute_definition_list(tenant=tenant))
    form: dict[str, Any] = {"country": request.GET.get("country", "")}
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = request.POST.dict()
        values, errors = services.contact_attributes_from_form(definitions=definitions, data=request.POST)
        try:
            wa_id = normalize_wa_id(form.get("phone", ""), default_region=form.get("country") or None)
        except InvalidPhoneNumber as exc:
            errors["phone"] = exc.message
            if not form.get("country") and not form.get("phone", "").strip().startswith("+"):
                errors["phone"] += " Add the country code (+44 …) or choose the country."
        if not errors:
            opt = form.get("opt_in", "unknown")
            try:
                contact = services.contact_create(
                    tenant=tenant, wa_id=wa_id, name=form.get("name", ""),
                    attributes={k: v for k, v in values.items() if v is not None},
                    tags=_split_tags(form.get("tags", "")), opt_in_status=opt,
                    opt_in_source=form.get("opt_in_source", "").strip() or "contacts page")
            except ApplicationError as exc:
                errors["form"] = exc.message
                if exc.code == "contact_exists":
                    errors["existing"] = str(exc.details.get("contact_id") or "")
            else:
                messages.success(request, f"Added {contact.display_name}.")
                return _redirect(request, reverse("contacts:detail", args=[tenant.slug, contact.pk]))
    return _render(request, "contacts/form.html", _form_context(request, None, form, errors, definitions),
                   status=422 if errors else 200)


@require_http_methods(["GET", "POST"])
@tenant_member_required("contacts")
def contact_detail(request: TenantHttpRequest, tenant_slug: str, contact_id: int) -> HttpResponse:
    tenant = request.tenant
    contact = sel.access_contact(tenant=tenant, contact_id=contact_id)
    definitions = list(sel.attribute_definition_list(tenant=tenant))
    form: dict[str, Any] = {"name": contact.name}
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = request.POST.dict()
        values, errors = services.contact_attributes_from_form(definitions=definitions, data=request.POST)
        if not errors:
            try:
                services.contact_update(tenant=tenant, contact=contact, name=form.get("name", ""), attributes=values)
            except ApplicationError as exc:
                errors["form"] = exc.message
            else:
                messages.success(request, "Saved.")
                return _redirect(request, reverse("contacts:detail", args=[tenant.slug, contact.pk]))
    return _render(request, "contacts/form.html", _form_context(request, contact, form, errors, definitions),
                   status=422 if errors else 200)


@require_POST
@tenant_member_required("contacts")
def contact_tags(request: TenantHttpRequest, tenant_slug: str, contact_id: int) -> HttpResponse:
    """Add (``add``, new tags created on the fly, commas for several) or remove (``remove``)
    tags on one contact; answers the tags block."""
    tenant = request.tenant
    contact = sel.access_contact(tenant=tenant, contact_id=contact_id)
    names = [tag.name for tag in contact.tags.all()]
    error = None
    add, remove = _split_tags(request.POST.get("add", "")), request.POST.get("remove", "").strip()
    wanted = [n for n in names if n != remove] + [n for n in add if n not in names]
    try:
        services.contact_tags_set(tenant=tenant, contact=contact, names=wanted)
    except ApplicationError as exc:
        error = exc
    contact = sel.access_contact(tenant=tenant, contact_id=contact.pk)
    return _render(request, "contacts/form.html#tags", {"contact": contact, "tag_error": error,
                                                        "all_tags": list(sel.tag_list(tenant=tenant))})


@require_POST
@tenant_member_required("contacts")
def contact_opt(request: TenantHttpRequest, tenant_slug: str, contact_id: int) -> HttpResponse:
    """Opt the contact in or out, recording where the consent (or its withdrawal) came from."""
    contact = sel.access_contact(tenant=request.tenant, contact_id=contact_id)
    state = request.POST.get("state")
    if state not in ("in", "out"):
        # 200: HTMX swaps the block with its error in place.
        return _render(request, "contacts/form.html#consent", {"contact": contact, "opt_error": "Choose opt in or opt out."})
    source = request.POST.get("source", "").strip() or f"contacts page ({request.user.get_username()})"
    services.contact_opt_set(contact=contact, opted_in=state == "in", source=source)
    return _render(request, "contacts/form.html#consent", {"contact": contact})


@require_POST
@tenant_member_required("contacts")
def contact_remove(request: TenantHttpRequest, tenant_slug: str, contact_id: int) -> HttpResponse:
    _require_manage(request)
    contact = sel.access_contact(tenant=request.tenant, contact_id=contact_id)
    if request.POST.get("confirm") != "delete":
        # Deleting also deletes the conversations: only an explicit confirmation does it.
        messages.error(request, "Nothing was deleted: confirm the deletion first.")
        return _redirect(request, reverse("contacts:detail", args=[request.tenant.slug, contact.pk]))
    name = contact.display_name
    services.contact_delete(tenant=request.tenant, contact=contact)
    messages.success(request, f"Deleted {name}.")
    return _redirect(request, _list_url(request))


# --- attributes and segments ------------------------------------------------------------

@require_http_methods(["GET", "POST"])
@tenant_member_required("contacts")
def attributes_page(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = request.tenant
    form = {"label": "", "key": "", "type": AttributeDefinition.Type.TEXT}
    error = None
    if request.method == "POST":
        _require_manage(request)
        form = {"label": request.POST.get("label", ""), "key": request.POST.get("key", ""),
                "type": request.POST.get("type", "")}
        try:
            definition = services.attribute_definition_create(tenant=tenant, **form)
        except ApplicationError as exc:
            error = exc
        else:
            messages.success(request, f"Added the attribute “{definition.label}”.")
            return _redirect(request, reverse("contacts:attributes", args=[tenant.slug]))
    return _render(request, "contacts/attributes.html", {
        "definitions": sel.attribute_definition_list(tenant=tenant), "form": form, "error": error,
        "types": AttributeDefinition.Type.choices}, status=422 if error else 200)


@require_POST
@tenant_member_required("contacts")
def attribute_remove(request: TenantHttpRequest, tenant_slug: str, attribute_id: int) -> HttpResponse:
    _require_manage(request)
    definition = sel.access_attribute_definition(tenant=request.tenant, attribute_id=attribute_id)
    services.attribute_definition_delete(tenant=request.tenant, definition=definition)
    messages.success(request, f"Removed the attribute “{definition.label}”. Values already stored stay on contacts.")
    return _redirect(request, reverse("contacts:attributes", args=[request.tenant.slug]))


@require_POST
@tenant_member_required("contacts")
def segment_create(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    _require_manage(request)
    tenant = request.tenant
    query = request.POST.get("filter_query", "")
    parsed = filters_from_query(QueryDict(query), list(sel.attribute_definition_list(tenant=tenant)))
    try:
        if parsed.errors:
            raise ApplicationError(" ".join(parsed.errors), code="invalid_filter")
        segment = services.segment_save(tenant=tenant, name=request.POST.get("name", ""), filters=parsed.filters)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Saved the segment “{segment.name}”. Campaigns can now send to it.")
    return _redirect(request, _list_url(request, query))


@require_POST
@tenant_member_required("contacts")
def segment_remove(request: TenantHttpRequest, tenant_slug: str, segment_id: int) -> HttpResponse:
    _require_manage(request)
    segment = sel.access_segment(tenant=request.tenant, segment_id=segment_id)
    services.segment_delete(tenant=request.tenant, segment=segment)
    messages.success(request, f"Deleted the segment “{segment.name}”.")
    return _redirect(request, _list_url(request, request.POST.get("filter_query", "")))


# --- import -------------------------------------------------------------------------------

@require_http_methods(["GET", "POST"])
@tenant_member_required("contacts")
def import_page(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    _require_manage(request)
    tenant = request.tenant
    error, url = None, ""
    if request.method == "POST":
        url = request.POST.get("url", "")
        try:
            contact_import = services.contact_import_create(tenant=tenant, user=request.user,
                                                            upload=request.FILES.get("file"), url=url)
        except ApplicationError as exc:
            error = exc
        else:
            return _redirect(request, reverse("contacts:import_detail", args=[tenant.slug, contact_import.pk]))
    return _render(request, "contacts/import.html", {
        "imports": sel.contact_import_list(tenant=tenant), "error": error, "url": url,
    }, status=422 if error else 200)


def _import_context(request: TenantHttpRequest, contact_import: ContactImport, **extra: Any) -> dict[str, Any]:
    from . import importer

    definitions = list(sel.attribute_definition_list(tenant=request.tenant))
    context: dict[str, Any] = {"imp": contact_import, **extra}
    if contact_import.status == ContactImport.Status.DRAFT:
        mapping = extra.get("mapping") or contact_import.mapping
        preview = importer.preview_rows(contact_import)
        context.update({
            "columns": [{"index": i, "header": header or f"Column {i + 1}", "target": mapping[i] if i < len(mapping) else "",
                         "samples": [row[i] for row in preview if row[i].strip()][:3]}
                        for i, header in enumerate(contact_import.headers)],
            "preview": preview, "definitions": definitions, "countries": COUNTRIES,
            "default_country": extra.get("default_country", ""),
            "on_existing": extra.get("on_existing", ContactImport.OnExisting.UPDATE),
            "on_existing_choices": ContactImport.OnExisting.choices,
        })
    return context


@require_http_methods(["GET", "POST"])
@tenant_member_required("contacts")
def import_detail(request: TenantHttpRequest, tenant_slug: str, import_id: int) -> HttpResponse:
    """The column mapping of a draft import (POST starts it), then its progress and result."""
    _require_manage(request)
    tenant = request.tenant
    contact_import = sel.access_contact_import(tenant=tenant, import_id=import_id)
    if request.method == "POST":
        mapping = [request.POST.get(f"col_{i}", "") for i in range(len(contact_import.headers))]
        country, on_existing = request.POST.get("default_country", ""), request.POST.get("on_existing", "update")
        try:
            services.contact_import_start(tenant=tenant, contact_import=contact_import, mapping=mapping,
                                          default_country=country, on_existing=on_existing)
        except ApplicationError as exc:
            if exc.code == "import_started":  # a second click, or another tab
                messages.error(request, exc.message)
                return _redirect(request, reverse("contacts:import_detail", args=[tenant.slug, contact_import.pk]))
            return _render(request, "contacts/import_detail.html", _import_context(
                request, contact_import, error=exc, mapping=mapping, default_country=country,
                on_existing=on_existing), status=422)
        return _redirect(request, reverse("contacts:import_detail", args=[tenant.slug, contact_import.pk]))
    return _render(request, "contacts/import_detail.html", _import_context(request, contact_import))


@require_GET
@tenant_member_required("contacts")
def import_progress(request: TenantHttpRequest, tenant_slug: str, import_id: int) -> HttpResponse:
    _require_manage(request)
    contact_import = sel.access_contact_import(tenant=request.tenant, import_id=import_id)
    return _render(request, "contacts/import_detail.html#progress", {"imp": contact_import})


@require_GET
@tenant_member_required("contacts")
def import_errors(request: TenantHttpRequest, tenant_slug: str, import_id: int) -> HttpResponse:
    """The rows that were not imported, with the row number, the value and the reason."""
    _require_manage(request)
    contact_import = sel.access_contact_import(tenant=request.tenant, import_id=import_id)
    writer = csv.writer(_Echo())
    lines = ["\ufeff" + writer.writerow(["row", "column", "value", "reason"])]
    lines += [writer.writerow([row, column, csv_safe(value), reason])
              for row, column, value, reason in contact_import.errors]
    response = HttpResponse("".join(lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{contact_import.pk}-errors.csv"'
    return response
