"""Settings → Numbers: connect, inspect, test, tune and disable WhatsApp numbers. Thin views:
forms check field shapes, services decide, selectors read."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.exceptions import ApplicationError
from apps.core.phone import InvalidPhoneNumber, format_display
from apps.tenants.decorators import TenantHttpRequest, tenant_member_required

from .forms import CONNECT_FORMS, NumberSettingsForm
from .models import PhoneNumber
from .selectors import access_phone_number, phone_number_last_webhook_at, phone_number_settings_list
from .services import (
    PROVIDER_SECRETS,
    meta_display_number_lookup,
    phone_number_connection_test,
    phone_number_create,
    phone_number_set_enabled,
    phone_number_update,
)

SECTION = "settings.numbers"
SECRET_LABELS = {"access_token": "Access token", "app_secret": "App secret", "api_key": "API key",
                 "app_token": "App token"}
PROVIDER_HELP = {
    PhoneNumber.Provider.META_CLOUD: "Your own app on Meta's WhatsApp Cloud API: ids and a token from WhatsApp "
                                     "Manager → API Setup.",
    PhoneNumber.Provider.GUPSHUP: "A number on a Gupshup (classic) app: the app name, its API key and the number.",
    PhoneNumber.Provider.GUPSHUP_PARTNER: "A number on a Gupshup Partner (v3) app: the app id and its token.",
}


def _label(number: PhoneNumber) -> str:
    return format_display(number.display_number)


def _field_error(form: Any, exc: ApplicationError) -> None:
    """Attach a service error to the field it names (details.field or details.missing), or to
    the form as a whole."""
    field = exc.details.get("field") if isinstance(exc.details, dict) else None
    if field and field in form.fields:
        form.add_error(field, exc.message)
    else:
        form.add_error(None, exc.message)


@require_GET
@tenant_member_required(SECTION)
def number_list(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    numbers = list(phone_number_settings_list(tenant=request.tenant))
    return render(request, "phone_numbers/list.html", {
        "section": "settings", "numbers": numbers, "providers": PhoneNumber.Provider.choices,
    })


@require_http_methods(["GET", "POST"])
@tenant_member_required(SECTION)
def number_connect(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    provider = request.POST.get("provider") or request.GET.get("provider") or PhoneNumber.Provider.META_CLOUD
    if provider not in CONNECT_FORMS:
        provider = PhoneNumber.Provider.META_CLOUD
    form_class = CONNECT_FORMS[provider]
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            display = data.get("display_number") or data.get("source") or ""
            if provider == PhoneNumber.Provider.META_CLOUD and not display:
                display = meta_display_number_lookup(phone_number_id=data["phone_number_id"],
                                                     access_token=data["access_token"],
                                                     graph_api_url=data.get("graph_api_url") or "")
            number = phone_number_create(
                tenant=request.tenant, provider=provider, display_number=display,
                display_name=data.get("display_name", ""), phone_number_id=data.get("phone_number_id", ""),
                waba_id=data.get("waba_id", ""), app_name=data.get("app_name", ""), app_id=data.get("app_id", ""),
                access_token=data.get("access_token", ""), app_secret=data.get("app_secret", ""),
                api_key=data.get("api_key", ""), app_token=data.get("app_token", ""),
                graph_api_url=data.get("graph_api_url") or "", messages_per_second=data["messages_per_second"],
            )
        except ApplicationError as exc:
            if isinstance(exc, InvalidPhoneNumber):
                target = "display_number" if "display_number" in form.fields else "source"
                form.add_error(target, exc.message)
            else:
                _field_error(form, exc)
        else:
            messages.success(request, f"Connected {_label(number)}. Finish the setup below: point the provider's "
                                      "webhook at Parley, then test the connection.")
            return redirect("phone_numbers:detail", tenant_slug=tenant_slug, phone_number_id=number.pk)
    return render(request, "phone_numbers/connect.html", {
        "section": "settings", "form": form, "provider": provider, "providers": PhoneNumber.Provider.choices,
        "provider_help": PROVIDER_HELP[provider], "provider_label": PhoneNumber.Provider(provider).label,
    }, status=422 if request.method == "POST" else 200)


def _webhook_url(request: TenantHttpRequest, number: PhoneNumber) -> str:
    if number.provider == PhoneNumber.Provider.META_CLOUD:
        path = reverse("providers:meta-webhook")
    elif number.provider == PhoneNumber.Provider.GUPSHUP:
        path = reverse("providers:gupshup-webhook", kwargs={"token": number.webhook_token})
    else:
        path = reverse("providers:gupshup-partner-webhook", kwargs={"token": number.webhook_token})
    return request.build_absolute_uri(path)


def _detail_context(request: TenantHttpRequest, number: PhoneNumber, form: NumberSettingsForm | None = None,
                    result: Any = None) -> dict[str, Any]:
    stored = set(number.credentials or {}) if isinstance(number.credentials, dict) else set()
    return {
        "section": "settings", "number": number, "webhook_url": _webhook_url(request, number),
        "last_webhook_at": phone_number_last_webhook_at(tenant=request.tenant, phone_number=number),
        "form": form or NumberSettingsForm(phone_number=number, initial={
            "display_name": number.display_name, "messages_per_second": number.messages_per_second,
            "graph_api_url": number.graph_api_url}),
        "stored_secrets": [SECRET_LABELS[name] for name in PROVIDER_SECRETS[number.provider] if name in stored],
        "result": result,
    }


@require_http_methods(["GET", "POST"])
@tenant_member_required(SECTION)
def number_detail(request: TenantHttpRequest, tenant_slug: str, phone_number_id: int) -> HttpResponse:
    """GET: setup instructions and health. POST: save the settings form."""
    number = access_phone_number(tenant=request.tenant, phone_number_id=phone_number_id)
    if request.method == "GET":
        return render(request, "phone_numbers/detail.html", _detail_context(request, number))
    form = NumberSettingsForm(request.POST, phone_number=number)
    if form.is_valid():
        data = form.cleaned_data
        try:
            phone_number_update(
                tenant=request.tenant, phone_number=number, display_name=data.get("display_name", ""),
                messages_per_second=data["messages_per_second"],
                graph_api_url=data.get("graph_api_url") if "graph_api_url" in form.fields else None,
                secrets_to_replace={name: data.get(name, "") for name in form.SECRET_FIELDS if name in form.fields},
            )
        except ApplicationError as exc:
            _field_error(form, exc)
        else:
            replaced = [form.fields[n].label.removeprefix("New ").lower() for n in form.SECRET_FIELDS
                        if n in form.fields and data.get(n)]
            note = f" Replaced the {' and '.join(replaced)}." if replaced else ""
            messages.success(request, f"Saved the settings of {_label(number)}.{note}")
            return redirect("phone_numbers:detail", tenant_slug=tenant_slug, phone_number_id=number.pk)
    return render(request, "phone_numbers/detail.html", _detail_context(request, number, form), status=422)


@require_POST
@tenant_member_required(SECTION)
def number_test(request: TenantHttpRequest, tenant_slug: str, phone_number_id: int) -> HttpResponse:
    number = access_phone_number(tenant=request.tenant, phone_number_id=phone_number_id)
    result = phone_number_connection_test(tenant=request.tenant, phone_number=number)
    context = _detail_context(request, number, result=result)
    if request.htmx:
        return render(request, "phone_numbers/detail.html#connection-test", context)
    return render(request, "phone_numbers/detail.html", context)


@require_POST
@tenant_member_required(SECTION)
def number_enabled(request: TenantHttpRequest, tenant_slug: str, phone_number_id: int) -> HttpResponse:
    number = access_phone_number(tenant=request.tenant, phone_number_id=phone_number_id)
    action = request.POST.get("action")
    if action not in ("enable", "disable"):
        messages.error(request, "Choose to enable or disable the number.")
    else:
        number = phone_number_set_enabled(tenant=request.tenant, phone_number=number, enabled=action == "enable")
        if action == "enable":
            messages.success(request, f"{_label(number)} is enabled: Parley sends from it and accepts its webhooks "
                                      "again.")
        else:
            messages.success(request, f"{_label(number)} is disabled: nothing is sent from it and its webhooks are "
                                      "ignored.")
    if request.POST.get("next") == "list":
        return redirect("phone_numbers:list", tenant_slug=tenant_slug)
    return redirect("phone_numbers:detail", tenant_slug=tenant_slug, phone_number_id=number.pk)
