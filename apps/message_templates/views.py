"""The template pages: list with filters and live status, detail with the WhatsApp preview,
the builder that submits a new template to Meta, sync and delete. Thin: the builder module
checks drafts and builds Meta's body, services talk to the provider and write, selectors read."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from apps.core.exceptions import ApplicationError
from apps.phone_numbers.models import PhoneNumber
from apps.tenants.decorators import TenantHttpRequest, tenant_member_required
from apps.tenants.roles import role_may

from . import builder, selectors, services
from .forms import TemplateFilterForm
from .models import MessageTemplate
from .rendering import template_bubble, template_shape

POLL_SECONDS = 3


def _can_manage(request: TenantHttpRequest) -> bool:
    return role_may(request.membership.role, "templates.manage")


def _list_context(request: TenantHttpRequest) -> dict:
    numbers = list(selectors.template_numbers(tenant=request.tenant))
    form = TemplateFilterForm(request.GET or None, numbers=numbers)
    templates = list(selectors.template_browse(tenant=request.tenant, **form.filters()))
    for template in templates:
        template.bubble = template_bubble(template.components)
    return {
        "section": "templates", "templates": templates, "filter_form": form, "numbers": numbers,
        "filtered": bool(form.is_bound and any(form.filters().values())),
        "version": selectors.templates_version(tenant=request.tenant), "poll_seconds": POLL_SECONDS,
        "can_manage": _can_manage(request), "query": _query_without_version(request),
    }


def _query_without_version(request: TenantHttpRequest) -> str:
    query = request.GET.copy()
    query.pop("v", None)
    return query.urlencode()


@require_GET
@tenant_member_required("templates")
def template_list_page(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    template_name = "message_templates/list.html"
    if request.htmx and request.htmx.target == "template-list":
        template_name += "#template-list"
    return render(request, template_name, _list_context(request))


@require_GET
@tenant_member_required("templates")
def template_changes(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """The list's live poll: 204 while nothing changed since ``v``, else the refreshed list."""
    if not selectors.templates_changed_since(tenant=request.tenant, version=request.GET.get("v", "")):
        return HttpResponse(status=204)
    return render(request, "message_templates/list.html#template-list", _list_context(request))


@require_POST
@tenant_member_required("templates.manage")
def template_sync(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    number = None
    if request.POST.get("number"):
        number = PhoneNumber.objects.for_tenant(request.tenant).filter(pk=_int(request.POST["number"])).first()
        if number is None:
            messages.error(request, "That number is not in this workspace.")
            return _back_to_list(request, tenant_slug)
    try:
        numbers = services.templates_sync_request(tenant=request.tenant, phone_number=number)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        names = ", ".join(f"+{n.display_number}" for n in numbers)
        messages.success(request, f"Syncing templates from {names}. The list updates as they arrive.")
    return _back_to_list(request, tenant_slug)


def _back_to_list(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    target = reverse("message_templates:list", args=[tenant_slug])
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


def _int(value: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


@require_GET
@tenant_member_required("templates")
def template_detail_page(request: TenantHttpRequest, tenant_slug: str, template_id: int) -> HttpResponse:
    template = selectors.access_template(tenant=request.tenant, template_id=template_id)
    shape = template_shape(template.components)
    body = next((c for c in template.components if str(c.get("type", "")).upper() == "BODY"), {})
    return render(request, "message_templates/detail.html", {
        "section": "templates", "template": template, "bubble": template_bubble(template.components),
        "shape": shape, "examples": (body.get("example") or {}), "can_manage": _can_manage(request),
        "deletable": template.status != MessageTemplate.Status.DELETED,
    })


@require_POST
@tenant_member_required("templates.manage")
def template_delete(request: TenantHttpRequest, tenant_slug: str, template_id: int) -> HttpResponse:
    template = selectors.access_template(tenant=request.tenant, template_id=template_id)
    try:
        services.template_delete(tenant=request.tenant, template_id=template.pk)
    except ApplicationError as exc:
        if request.htmx:
            return render(request, "message_templates/detail.html#delete-result", {"error": exc.message},
                          status=200)
        messages.error(request, exc.message)
        return redirect("message_templates:detail", tenant_slug, template.pk)
    messages.success(request, f"Template {template.name} ({template.language}) deleted.")
    return _back_to_list(request, tenant_slug)


# --- the builder --------------------------------------------------------------------------------

def _builder_numbers(request: TenantHttpRequest) -> list[PhoneNumber]:
    return list(PhoneNumber.objects.for_tenant(request.tenant).exclude(status=PhoneNumber.Status.DISABLED)
                .order_by("id"))


def _builder_context(request: TenantHttpRequest, draft: builder.TemplateDraft, *, problems: dict | None = None,
                     error: str = "", number_id: int | None = None, field_errors: bool = True) -> dict:
    numbers = _builder_numbers(request)
    valid = not (problems if problems is not None else builder.draft_problems(draft))
    return {
        "payload_json": json.dumps(builder.build_payload(draft), indent=2, ensure_ascii=False) if valid else "",
        "section": "templates", "draft": draft, "problems": problems or {}, "error": error,
        "numbers": numbers, "number_id": number_id or (numbers[0].pk if numbers else None),
        "categories": builder.CATEGORIES, "languages": builder.LANGUAGES, "header_types": builder.HEADER_TYPES,
        "button_kinds": builder.BUTTON_LABELS, "limits": builder,
        "bubble": template_bubble(builder.draft_components(draft, for_meta=False), examples=draft.examples),
        "variables": [(part, name, draft.example(part, name),
                       (problems or {}).get(f"example_{part}_{name}", []) if field_errors else [])
                      for part, name in draft.variables()],
        "button_rows": [(index, button, (problems or {}).get(f"button_{index}", []))
                        for index, button in enumerate(draft.buttons, start=1)],
        "signature": draft.variables_signature(),
    }


@require_http_methods(["GET", "POST"])
@tenant_member_required("templates.manage")
def template_create_page(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    if request.method == "GET":
        draft = builder.TemplateDraft()
        return render(request, "message_templates/new.html", _builder_context(request, draft))
    draft = builder.draft_from_data(request.POST)
    number_id = _int(request.POST.get("phone_number", ""))
    number = PhoneNumber.objects.for_tenant(request.tenant).filter(pk=number_id).first()
    problems = builder.draft_problems(draft)
    if number is None:
        problems.setdefault("phone_number", []).append("Choose the number whose WhatsApp Business Account "
                                                       "the template belongs to.")
    if problems:
        return render(request, "message_templates/new.html",
                      _builder_context(request, draft, problems=problems, number_id=number_id,
                                       error="Fix the highlighted fields before submitting."), status=422)
    try:
        template = services.template_create(tenant=request.tenant, phone_number=number, draft=draft)
    except ApplicationError as exc:
        return render(request, "message_templates/new.html",
                      _builder_context(request, draft, error=exc.message, number_id=number_id), status=422)
    messages.success(request, f"Template {template.name} submitted to Meta for review. It stays pending until "
                              f"Meta approves or rejects it; this list updates by itself.")
    return redirect("message_templates:list", tenant_slug)


@require_POST
@tenant_member_required("templates.manage")
def template_preview(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """The builder's live preview (and, when the set of variables changed, its example fields
    and Meta's request body, swapped out of band)."""
    draft = builder.draft_from_data(request.POST)
    problems = builder.draft_problems(draft)
    # Field errors are shown after a submit; while typing the preview lists what is missing.
    context = _builder_context(request, draft, problems=problems, field_errors=False)
    context["refresh_variables"] = request.POST.get("signature", "") != context["signature"]
    return render(request, "message_templates/new.html#preview", context)
