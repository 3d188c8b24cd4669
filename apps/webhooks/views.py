"""Settings pages for the tenant's webhook endpoints (server-rendered, HTMX).

Views are thin: forms shape the input, ``services`` write, ``selectors`` read. A signing secret
is shown in the response that creates or rotates it and never again."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from apps.core.exceptions import ApplicationError
from apps.tenants.decorators import TenantHttpRequest, tenant_member_required

from . import selectors, services
from .forms import META_FORMAT_HINT, EndpointForm
from .models import WebhookEndpoint

SECTION = "settings.webhooks"
POLL_SECONDS = 2
REVEAL_KEY = "webhooks.secret_once"


def _reveal_once(request: TenantHttpRequest, endpoint: WebhookEndpoint, secret: str, *, rotated: bool) -> None:
    """Hand a new secret to the next page view (Post/Redirect/Get, so a reload never submits the
    form again); ``_take_revealed`` removes it from the session as it is shown."""
    request.session[REVEAL_KEY] = {"endpoint_id": endpoint.pk, "secret": secret, "rotated": rotated}


def _take_revealed(request: TenantHttpRequest, endpoint: WebhookEndpoint) -> dict:
    revealed = request.session.get(REVEAL_KEY)
    if not revealed or revealed.get("endpoint_id") != endpoint.pk:
        return {}
    del request.session[REVEAL_KEY]
    return {"revealed_secret": revealed["secret"], "rotated": revealed["rotated"], "just_created": not revealed["rotated"]}


def _form_error(form: EndpointForm, exc: ApplicationError) -> None:
    field = {"invalid_url": "url", "invalid_events": "events", "invalid_format": "format",
             "invalid_description": "description"}.get(exc.code)
    form.add_error(field, exc.message)


def _with_summaries(request: TenantHttpRequest, deliveries: list) -> list:
    """Each delivery gets ``summary``: every-cycle attempt count and the last attempt (two queries)."""
    summaries = selectors.delivery_attempt_summaries(tenant=request.tenant, delivery_ids=[d.pk for d in deliveries])
    for delivery in deliveries:
        delivery.summary = summaries[delivery.pk]
    return deliveries


def _detail_context(request: TenantHttpRequest, endpoint: WebhookEndpoint, **extra) -> dict:
    deliveries, next_before = selectors.endpoint_delivery_page(tenant=request.tenant, endpoint=endpoint)
    _with_summaries(request, deliveries)
    return {
        "section": "settings", "endpoint": endpoint, "deliveries": deliveries, "next_before": next_before,
        "polling": _polling(request, endpoint, deliveries), "poll_seconds": POLL_SECONDS, **extra,
    }


def _polling(request: TenantHttpRequest, endpoint: WebhookEndpoint, deliveries: list) -> bool:
    return any(d.status in services.DUE_STATUSES for d in deliveries) or \
        selectors.endpoint_has_waiting_deliveries(tenant=request.tenant, endpoint=endpoint)


@require_GET
@tenant_member_required(SECTION)
def endpoint_list_page(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    return render(request, "webhooks/endpoint_list.html", {
        "section": "settings", "endpoints": list(selectors.endpoint_list_with_stats(tenant=request.tenant)),
    })


@require_http_methods(["GET", "POST"])
@tenant_member_required(SECTION)
def endpoint_create_page(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = services.webhook_endpoint_create(
                tenant=request.tenant, url=form.cleaned_data["url"], events=form.chosen_events,
                format=form.cleaned_data["format"], description=form.cleaned_data["description"],
            )
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            _reveal_once(request, endpoint, secret, rotated=False)
            return redirect("webhooks:endpoint_detail", tenant_slug, endpoint.pk)
    return render(request, "webhooks/endpoint_form.html", {
        "section": "settings", "form": form, "meta_hint": META_FORMAT_HINT,
    }, status=422 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@tenant_member_required(SECTION)
def endpoint_edit_page(request: TenantHttpRequest, tenant_slug: str, endpoint_id: int) -> HttpResponse:
    endpoint = selectors.access_endpoint(tenant=request.tenant, endpoint_id=endpoint_id)
    form = EndpointForm(request.POST) if request.method == "POST" else EndpointForm.for_endpoint(endpoint)
    if request.method == "POST" and form.is_valid():
        try:
            services.webhook_endpoint_update(
                tenant=request.tenant, endpoint_id=endpoint.pk, url=form.cleaned_data["url"],
                events=form.chosen_events, format=form.cleaned_data["format"],
                description=form.cleaned_data["description"],
            )
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, "Endpoint saved.")
            return redirect("webhooks:endpoint_detail", tenant_slug, endpoint.pk)
    return render(request, "webhooks/endpoint_form.html", {
        "section": "settings", "form": form, "endpoint": endpoint, "meta_hint": META_FORMAT_HINT,
    }, status=422 if form.errors else 200)


@require_GET
@tenant_member_required(SECTION)
def endpoint_detail_page(request: TenantHttpRequest, tenant_slug: str, endpoint_id: int) -> HttpResponse:
    endpoint = selectors.access_endpoint(tenant=request.tenant, endpoint_id=endpoint_id)
    if request.htmx and request.GET.get("before"):
        # "Older deliveries": the next keyset page, appended below the rows shown.
        deliveries, next_before = selectors.endpoint_delivery_page(
            tenant=request.tenant, endpoint=endpoint, before=request.GET["before"])
        _with_summaries(request, deliveries)
        return render(request, "webhooks/endpoint_detail.html#delivery-page", {
            "endpoint": endpoint, "deliveries": deliveries, "next_before": next_before})
    if request.htmx and request.GET.get("log"):
        # The live log: polled while a delivery is pending, and after test / replay.
        return render(request, "webhooks/endpoint_detail.html#delivery-log", _detail_context(request, endpoint))
    return render(request, "webhooks/endpoint_detail.html",
                  _detail_context(request, endpoint, **_take_revealed(request, endpoint)))


@require_GET
@tenant_member_required(SECTION)
def delivery_attempts_fragment(request: TenantHttpRequest, tenant_slug: str, delivery_id: int) -> HttpResponse:
    """One delivery's attempts, newest first (the log's expandable rows load it)."""
    delivery = selectors.access_delivery(tenant=request.tenant, delivery_id=delivery_id)
    return render(request, "webhooks/endpoint_detail.html#attempts",
                  {"endpoint": delivery.endpoint, "delivery": delivery})


def _log_response(request: TenantHttpRequest, endpoint: WebhookEndpoint, **extra) -> HttpResponse:
    if request.htmx:
        return render(request, "webhooks/endpoint_detail.html#delivery-log", _detail_context(request, endpoint, **extra))
    notice = extra.get("notice")
    if notice:
        messages.success(request, notice)
    error = extra.get("error")
    if error:
        messages.error(request, error)
    return redirect("webhooks:endpoint_detail", request.tenant.slug, endpoint.pk)


@require_POST
@tenant_member_required(SECTION)
def endpoint_test(request: TenantHttpRequest, tenant_slug: str, endpoint_id: int) -> HttpResponse:
    endpoint = selectors.access_endpoint(tenant=request.tenant, endpoint_id=endpoint_id)
    try:
        services.webhook_test_event_send(tenant=request.tenant, endpoint_id=endpoint.pk)
    except ApplicationError as exc:
        return _log_response(request, endpoint, error=exc.message)
    return _log_response(request, endpoint, notice="Test event queued.")


@require_POST
@tenant_member_required(SECTION)
def delivery_replay(request: TenantHttpRequest, tenant_slug: str, delivery_id: int) -> HttpResponse:
    delivery = selectors.access_delivery(tenant=request.tenant, delivery_id=delivery_id)
    endpoint = delivery.endpoint  # joined by the tenant-scoped lookup, without its secret
    services.webhook_delivery_replay(tenant=request.tenant, delivery_id=delivery.pk)
    return _log_response(request, endpoint, notice=f"Delivery of {delivery.event_type} queued again.")


@require_POST
@tenant_member_required(SECTION)
def endpoint_toggle(request: TenantHttpRequest, tenant_slug: str, endpoint_id: int) -> HttpResponse:
    endpoint = selectors.access_endpoint(tenant=request.tenant, endpoint_id=endpoint_id)
    endpoint = services.webhook_endpoint_update(tenant=request.tenant, endpoint_id=endpoint.pk,
                                                is_active=not endpoint.is_active)
    messages.success(request, "Endpoint enabled." if endpoint.is_active else
                     "Endpoint disabled: no event is sent to it until you enable it again.")
    target = reverse("webhooks:endpoint_detail", args=[tenant_slug, endpoint.pk])
    if request.POST.get("next") == "list":
        target = reverse("webhooks:endpoint_list", args=[tenant_slug])
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


@require_POST
@tenant_member_required(SECTION)
def endpoint_rotate_secret(request: TenantHttpRequest, tenant_slug: str, endpoint_id: int) -> HttpResponse:
    endpoint = selectors.access_endpoint(tenant=request.tenant, endpoint_id=endpoint_id)
    endpoint, secret = services.webhook_endpoint_rotate_secret(tenant=request.tenant, endpoint_id=endpoint.pk)
    if request.htmx:
        return render(request, "webhooks/endpoint_detail.html#secret-panel",
                      {"endpoint": endpoint, "revealed_secret": secret, "rotated": True})
    _reveal_once(request, endpoint, secret, rotated=True)
    return redirect("webhooks:endpoint_detail", tenant_slug, endpoint.pk)


@require_POST
@tenant_member_required(SECTION)
def endpoint_delete(request: TenantHttpRequest, tenant_slug: str, endpoint_id: int) -> HttpResponse:
    endpoint = selectors.access_endpoint(tenant=request.tenant, endpoint_id=endpoint_id)
    services.webhook_endpoint_delete(tenant=request.tenant, endpoint_id=endpoint.pk)
    messages.success(request, f"Endpoint {endpoint.url} deleted, with its delivery log.")
    target = reverse("webhooks:endpoint_list", args=[tenant_slug])
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
