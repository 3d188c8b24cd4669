from __future__ import annotations

import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction

from apps.core.exceptions import ApplicationError
from apps.core.phone import normalize_wa_id
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
