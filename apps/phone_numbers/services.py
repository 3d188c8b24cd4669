from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.exceptions import ApplicationError
from apps.core.phone import normalize_wa_id
from apps.providers.backends import get_backend
from apps.providers.exceptions import ProviderConfigurationError, ProviderError
from apps.tenants.models import Tenant

from .models import MAX_MESSAGES_PER_SECOND, PhoneNumber

# What each provider needs to send and to verify its webhooks.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    PhoneNumber.Provider.META_CLOUD: ("phone_number_id", "waba_id", "access_token", "app_secret"),
    PhoneNumber.Provider.GUPSHUP: ("app_name", "api_key"),
    PhoneNumber.Provider.GUPSHUP_PARTNER: ("app_id", "app_token"),
}
SECRET_FIELDS = ("access_token", "app_secret", "api_key", "app_token")


@transaction.atomic
def phone_number_create(
    *,
    tenant: Tenant,
    provider: str,
    display_number: str,
    display_name: str = "",
    phone_number_id: str = "",
    waba_id: str = "",
    app_name: str = "",
    app_id: str = "",
    access_token: str = "",
    app_secret: str = "",
    api_key: str = "",
    app_token: str = "",
    verify_token: str = "",
    graph_api_url: str = "",
    messages_per_second: int = 80,
) -> PhoneNumber:
    if provider not in PhoneNumber.Provider.values:
        raise ApplicationError(f"Unknown provider {provider!r}; use one of {', '.join(PhoneNumber.Provider.values)}.",
                               code="invalid_provider")
    given: dict[str, Any] = {
        "phone_number_id": phone_number_id.strip(), "waba_id": waba_id.strip(), "app_name": app_name.strip(),
        "app_id": app_id.strip(), "access_token": access_token.strip(), "app_secret": app_secret.strip(),
        "api_key": api_key.strip(), "app_token": app_token.strip(),
    }
    missing = [name for name in REQUIRED_FIELDS[provider] if not given[name]]
    if missing:
        raise ApplicationError(
            f"A {PhoneNumber.Provider(provider).label} number needs: {', '.join(missing)}.",
            code="missing_fields", details={"missing": missing},
        )
    if not 1 <= messages_per_second <= MAX_MESSAGES_PER_SECOND:
        raise ApplicationError(f"messages per second must be between 1 and {MAX_MESSAGES_PER_SECOND}.",
                               code="invalid_throughput")
    credentials = {name: given[name] for name in SECRET_FIELDS if given[name]}
    number = PhoneNumber(
        tenant=tenant,
        provider=provider,
        display_number=normalize_wa_id(display_number),
        display_name=display_name.strip(),
        phone_number_id=given["phone_number_id"],
        waba_id=given["waba_id"] or given["app_name"] or given["app_id"],
        provider_app_id=given["app_name"] or given["app_id"],
        graph_api_url=graph_api_url.strip().rstrip("/"),
        credentials=credentials,
        verify_token=verify_token.strip() or secrets.token_urlsafe(24),
        webhook_token=secrets.token_urlsafe(24),
        messages_per_second=messages_per_second,
    )
    if number.graph_api_url:
        try:
            URLValidator(schemes=["http", "https"])(number.graph_api_url)
        except ValidationError as exc:
            raise ApplicationError(f"{graph_api_url!r} is not an http(s) URL.", code="invalid_url") from exc
    try:
        with transaction.atomic():
            number.save()
    except IntegrityError as exc:
        raise ApplicationError("This number (or its provider id) is already connected.",
                               code="phone_number_exists", http_status=409) from exc
    return number


# -- settings: edit, enable/disable, connection test -----------------------------------------

# Which secret each provider keeps, in the order the settings page offers to replace them.
PROVIDER_SECRETS: dict[str, tuple[str, ...]] = {
    PhoneNumber.Provider.META_CLOUD: ("access_token", "app_secret"),
    PhoneNumber.Provider.GUPSHUP: ("api_key",),
    PhoneNumber.Provider.GUPSHUP_PARTNER: ("app_token",),
}


@transaction.atomic
def phone_number_update(
    *,
    tenant: Tenant,
    phone_number: PhoneNumber,
    display_name: str | None = None,
    messages_per_second: int | None = None,
    graph_api_url: str | None = None,
    secrets_to_replace: dict[str, str] | None = None,
) -> PhoneNumber:
    """Change what an admin may change after connecting. Secrets are replaced, never read:
    a blank replacement keeps the stored value."""
    number = PhoneNumber.objects.for_tenant(tenant).select_for_update().get(pk=phone_number.pk)
    fields: list[str] = []
    if display_name is not None and display_name.strip() != number.display_name:
        number.display_name = display_name.strip()[:200]
        fields.append("display_name")
    if messages_per_second is not None:
        if not 1 <= messages_per_second <= MAX_MESSAGES_PER_SECOND:
            raise ApplicationError(f"The throughput budget must be between 1 and {MAX_MESSAGES_PER_SECOND} "
                                   "messages per second.", code="invalid_throughput",
                                   details={"field": "messages_per_second"})
        if messages_per_second != number.messages_per_second:
            number.messages_per_second = messages_per_second
            fields.append("messages_per_second")
    if graph_api_url is not None and number.provider == PhoneNumber.Provider.META_CLOUD:
        url = graph_api_url.strip().rstrip("/")
        if url:
            try:
                URLValidator(schemes=["http", "https"])(url)
            except ValidationError as exc:
                raise ApplicationError(f"{graph_api_url!r} is not an http(s) URL.", code="invalid_url",
                                       details={"field": "graph_api_url"}) from exc
        if url != number.graph_api_url:
            number.graph_api_url = url
            fields.append("graph_api_url")
    replaced = {name: value.strip() for name, value in (secrets_to_replace or {}).items() if value and value.strip()}
    unknown = set(replaced) - set(PROVIDER_SECRETS[number.provider])
    if unknown:
        raise ApplicationError(f"A {number.get_provider_display()} number has no secret named "
                               f"{', '.join(sorted(unknown))}.", code="invalid_secret")
    if replaced:
        number.credentials = {**(number.credentials or {}), **replaced}
        fields.append("credentials")
    if fields:
        number.save(update_fields=[*fields, "updated_at"])
    return number


@transaction.atomic
def phone_number_set_enabled(*, tenant: Tenant, phone_number: PhoneNumber, enabled: bool) -> PhoneNumber:
    """Disable: nothing is sent from the number and its webhooks are ignored. Enable: back to
    connected (the next connection test says whether the provider agrees)."""
    number = PhoneNumber.objects.for_tenant(tenant).select_for_update().get(pk=phone_number.pk)
    target = PhoneNumber.Status.CONNECTED if enabled else PhoneNumber.Status.DISABLED
    if enabled and number.status != PhoneNumber.Status.DISABLED:
        return number
    if number.status != target:
        number.status = target
        number.status_detail = "" if enabled else "Disabled in settings."
        number.save(update_fields=["status", "status_detail", "updated_at"])
    return number


# -- connection test ----------------------------------------------------------------------

TEST_CONNECT_TIMEOUT = 3.0
TEST_READ_TIMEOUT = 6.0
_META_TOKEN_CODES = {0, 102, 190, 463, 467}
_META_PERMISSION_CODES = {3, 10, 200, 294, 131005}
_META_UNKNOWN_ID_CODES = {33, 100, 803}


@dataclass(frozen=True)
class ConnectionTestResult:
    ok: bool
    title: str
    explanation: str
    checked_at: datetime
    error_code: int | None = None
    http_status: int | None = None
    transient: bool = False
    details: str = ""
    info: dict[str, Any] = field(default_factory=dict)


def _cause_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
        # requests wraps urllib3's error in args, not in __cause__.
        if current is None and chain[-1].args and isinstance(chain[-1].args[0], BaseException):
            current = chain[-1].args[0]
    return chain


def _host(number: PhoneNumber) -> str:
    if number.provider == PhoneNumber.Provider.META_CLOUD:
        base = number.graph_api_url or settings.META_GRAPH_API_URL
    elif number.provider == PhoneNumber.Provider.GUPSHUP:
        base = settings.GUPSHUP_API_URL
    else:
        base = settings.GUPSHUP_PARTNER_API_URL
    return urlsplit(base).netloc or base


def explain_connection_failure(number: PhoneNumber, exc: ProviderError) -> tuple[str, str]:
    """(title, explanation) for a failed connection test, in words an admin can act on."""
    host = _host(number)
    chain = _cause_chain(exc)
    text = " ".join(f"{type(e).__name__}: {e}" for e in chain) + " " + (exc.details or "")
    provider = number.get_provider_display()
    if any(isinstance(e, requests.exceptions.Timeout | TimeoutError) for e in chain) or "Timeout" in text:
        if any(isinstance(e, requests.exceptions.ConnectTimeout) for e in chain) or "ConnectTimeout" in text:
            return ("Connection timed out",
                    f"{host} did not accept a connection within {TEST_CONNECT_TIMEOUT:g} seconds. Check the "
                    "address and that this server may reach it (firewall, proxy), then try again.")
        return ("The provider did not answer in time",
                f"{host} accepted the connection but sent no answer within {TEST_READ_TIMEOUT:g} seconds. The "
                "provider may be slow or down; try again in a minute.")
    if "NameResolution" in text or "gaierror" in text or "Name or service not known" in text \
            or "Failed to resolve" in text or "nodename nor servname" in text:
        return ("Address not found (DNS)",
                f"The name {host} could not be resolved. Check the spelling of the API base URL, and that this "
                "server can resolve public names.")
    if isinstance(exc, ProviderConfigurationError) and exc.status_code is None:
        return exc.title or "Number not configured", exc.explanation or str(exc)
    if exc.status_code is None:
        return ("Could not connect",
                f"Parley could not open a connection to {host} (refused or reset). Check the address and that "
                "the service is running.")
    code = exc.code
    if number.provider == PhoneNumber.Provider.META_CLOUD:
        if code == 190 or code in _META_TOKEN_CODES or (exc.status_code == 401 and code not in _META_UNKNOWN_ID_CODES):
            return ("Access token expired or wrong",
                    "Meta refused the access token: it has expired, was revoked, or was not copied whole. Create a "
                    "permanent system-user token with whatsapp_business_messaging and whatsapp_business_management "
                    "in Business Manager, then paste it under “Replace secrets”.")
        if code in _META_PERMISSION_CODES or exc.status_code == 403:
            return ("The token may not use this number",
                    "Meta accepted the token but it lacks permission for this phone number or its WhatsApp "
                    "Business Account. Give the token's system user access to the WABA, with the "
                    "whatsapp_business_messaging permission.")
        if code in _META_UNKNOWN_ID_CODES or exc.status_code == 404:
            return ("Unknown phone number id",
                    f"Meta does not know the phone number id {number.phone_number_id}, or this token cannot see "
                    "it. Copy the Phone number ID (not the phone number itself) from WhatsApp Manager → API "
                    "Setup, and check that the token belongs to the same app.")
    else:
        if exc.status_code in (401, 403):
            what = "API key" if number.provider == PhoneNumber.Provider.GUPSHUP else "app token"
            return (f"{provider} refused the {what}",
                    f"{provider} answered {exc.status_code}: the {what} is wrong, was regenerated, or does not "
                    f"belong to the app {number.provider_app_id}. Copy it again from the Gupshup dashboard and "
                    "paste it under “Replace secrets”.")
        if exc.status_code == 404:
            return (f"{provider} does not know this app",
                    f"{provider} has no app {number.provider_app_id!r} for these credentials. Check the app "
                    "name or id in the Gupshup dashboard.")
    if exc.status_code == 429:
        return ("Rate limited", f"{provider} asked Parley to slow down. Try the test again in a minute.")
    if exc.status_code >= 500:
        return (f"{provider} is having trouble",
                f"{provider} answered {exc.status_code}; this is on their side. Try again in a few minutes.")
    return (exc.title or f"{provider} refused the request",
            exc.explanation or f"{provider} answered {exc.status_code}: {exc.details or exc}")


def phone_number_connection_test(*, tenant: Tenant, phone_number: PhoneNumber) -> ConnectionTestResult:
    """Ask the provider about the number with its stored credentials (Meta: GET the phone
    number node; Gupshup: list the app's templates; Partner: read the wallet balance). On
    success, store what Meta reports (quality, messaging limit) and mark the number connected;
    on failure, mark it in error with the explanation. A disabled number stays disabled."""
    if phone_number.tenant_id != tenant.pk:
        raise ApplicationError("No such phone number.", code="not_found", http_status=404)
    checked_at = timezone.now()
    try:
        backend = get_backend(phone_number, connect_timeout=TEST_CONNECT_TIMEOUT, read_timeout=TEST_READ_TIMEOUT)
        info = backend.check_connection()
    except ProviderError as exc:
        title, explanation = explain_connection_failure(phone_number, exc)
        result = ConnectionTestResult(ok=False, title=title, explanation=explanation, checked_at=checked_at,
                                      error_code=exc.code, http_status=exc.status_code, transient=exc.transient,
                                      details=(exc.details or str(exc))[:500])
    else:
        info = info if isinstance(info, dict) else {}
        result = ConnectionTestResult(
            ok=True, title="Connected",
            explanation=f"{phone_number.get_provider_display()} accepted the credentials and answered for this "
                        "number.", checked_at=checked_at, info=info)
    _record_connection_test(tenant=tenant, phone_number=phone_number, result=result)
    return result


@transaction.atomic
def _record_connection_test(*, tenant: Tenant, phone_number: PhoneNumber, result: ConnectionTestResult) -> None:
    number = PhoneNumber.objects.for_tenant(tenant).select_for_update().get(pk=phone_number.pk)
    fields = ["status_detail", "updated_at"]
    if result.ok:
        quality = str(result.info.get("quality_rating") or "").upper()
        if quality in PhoneNumber.Quality.values and quality != number.quality_rating:
            number.quality_rating = quality
            fields.append("quality_rating")
        limit = result.info.get("whatsapp_business_manager_messaging_limit") or result.info.get("messaging_limit_tier")
        if isinstance(limit, str) and limit and limit != number.messaging_limit_tier:
            number.messaging_limit_tier = limit[:32]
            fields.append("messaging_limit_tier")
        number.status_detail = ""
        if number.status != PhoneNumber.Status.DISABLED:
            number.status = PhoneNumber.Status.CONNECTED
            fields.append("status")
    else:
        number.status_detail = f"{result.title}: {result.explanation}"
        if number.status != PhoneNumber.Status.DISABLED and not result.transient:
            number.status = PhoneNumber.Status.ERROR
            fields.append("status")
    number.save(update_fields=fields)
    phone_number.refresh_from_db()


def meta_display_number_lookup(*, phone_number_id: str, access_token: str, graph_api_url: str = "") -> str:
    """Ask Meta for the display number of ``phone_number_id`` (when the admin left it empty).
    Raises ApplicationError with the connection test's explanation when Meta refuses."""
    probe = PhoneNumber(provider=PhoneNumber.Provider.META_CLOUD, phone_number_id=phone_number_id.strip(),
                        graph_api_url=graph_api_url.strip().rstrip("/"),
                        credentials={"access_token": access_token.strip()})
    try:
        backend = get_backend(probe, connect_timeout=TEST_CONNECT_TIMEOUT, read_timeout=TEST_READ_TIMEOUT)
        info = backend.check_connection()
    except ProviderError as exc:
        title, explanation = explain_connection_failure(probe, exc)
        raise ApplicationError(f"Parley asked Meta for this number's display number and could not get it. {title}: "
                               f"{explanation} You can also type the display number yourself.",
                               code="display_number_lookup_failed", details={"field": "display_number"}) from exc
    display = str(info.get("display_phone_number") or "") if isinstance(info, dict) else ""
    if not display:
        raise ApplicationError("Meta did not say which phone number this is; type the display number yourself.",
                               code="display_number_lookup_failed", details={"field": "display_number"})
    return normalize_wa_id(display)
