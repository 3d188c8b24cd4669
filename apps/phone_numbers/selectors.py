from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from apps.providers.backends import get_backend
from apps.providers.exceptions import ProviderError
from apps.providers.models import WebhookEvent
from apps.tenants.models import Tenant

from .models import MAX_MESSAGES_PER_SECOND, PhoneNumber

# A status page waits this long for the provider, not the send path's 5 s + 15 s.
STATUS_CONNECT_TIMEOUT = 3.0
STATUS_READ_TIMEOUT = 5.0
MAX_DB_ID = 2**63 - 1


def phone_number_list(*, tenant: Tenant) -> QuerySet[PhoneNumber]:
    return PhoneNumber.objects.for_tenant(tenant).order_by("display_number")


def access_phone_number(*, tenant: Tenant, phone_number_id: Any) -> PhoneNumber:
    try:
        pk = int(phone_number_id)
    except (TypeError, ValueError) as exc:
        raise Http404("No such phone number") from exc
    number = PhoneNumber.objects.for_tenant(tenant).filter(pk=pk).first() if 0 < pk <= MAX_DB_ID else None
    if number is None:
        raise Http404("No such phone number")
    return number


def _connection_check(phone_number: PhoneNumber) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ask the provider about the number. Returns (connection state, what the provider said).
    A provider failure of any kind (refused credentials, unknown number, timeout, 5xx) is a
    state to show, with the provider's explanation in words, not an error of this request."""
    checked_at = timezone.now()
    try:
        backend = get_backend(phone_number, connect_timeout=STATUS_CONNECT_TIMEOUT, read_timeout=STATUS_READ_TIMEOUT)
        info = backend.check_connection()
    except ProviderError as exc:
        return {
            "state": "error",
            "checked_at": checked_at,
            "title": exc.title or "Provider error",
            "explanation": exc.explanation or exc.title or type(exc).__name__,
            "error_code": exc.code,
            "http_status": exc.status_code,
            "transient": exc.transient,
        }, {}
    label = PhoneNumber.Provider(phone_number.provider).label if phone_number.provider in PhoneNumber.Provider.values \
        else phone_number.provider
    return {
        "state": "ok",
        "checked_at": checked_at,
        "title": "Connected",
        "explanation": f"{label} accepted this number's credentials and answered for it.",
        "error_code": None,
        "http_status": None,
        "transient": False,
    }, info if isinstance(info, dict) else {}


def _throughput_level(info: dict[str, Any], messages_per_second: int) -> str:
    throughput = info.get("throughput")
    if isinstance(throughput, dict) and isinstance(throughput.get("level"), str) and throughput["level"]:
        return throughput["level"].upper()
    # Meta's levels: STANDARD (80 messages/s) and HIGH (up to 1,000).
    return "HIGH" if messages_per_second >= MAX_MESSAGES_PER_SECOND else "STANDARD"


def phone_number_status(*, tenant: Tenant, phone_number: PhoneNumber) -> dict[str, Any]:
    """The number's health: a live connection check (with a short timeout), its quality
    rating, throughput budget, messaging limit and when its last webhook arrived. Values the
    provider reports live win over the stored ones. Never includes credentials."""
    if phone_number.tenant_id != tenant.pk:
        raise Http404("No such phone number")
    connection, info = _connection_check(phone_number)
    quality = str(info.get("quality_rating") or "").upper()
    if quality not in PhoneNumber.Quality.values:
        quality = phone_number.quality_rating or PhoneNumber.Quality.UNKNOWN
    limit = info.get("whatsapp_business_manager_messaging_limit") or info.get("messaging_limit_tier")
    if not isinstance(limit, str) or not limit:
        limit = phone_number.messaging_limit_tier or None
    last_webhook_at: datetime | None = phone_number.last_webhook_at
    return {
        "id": phone_number.pk,
        "provider": phone_number.provider,
        "display_number": phone_number.display_number,
        "status": phone_number.status,
        "connection": connection,
        "quality_rating": quality,
        "throughput": {
            "messages_per_second": phone_number.messages_per_second,
            "level": _throughput_level(info, phone_number.messages_per_second),
        },
        "messaging_limit_tier": limit,
        "last_webhook_at": last_webhook_at,
    }


def phone_number_settings_list(*, tenant: Tenant) -> QuerySet[PhoneNumber]:
    """The numbers with ``last_webhook_received_at``: the newest stored provider callback for
    each (WebhookEvent rows), falling back to the processing time kept on the number."""
    latest = (WebhookEvent.objects.for_tenant(tenant).filter(phone_number=OuterRef("pk"))
              .order_by("-received_at").values("received_at")[:1])
    return phone_number_list(tenant=tenant).annotate(last_webhook_received_at=Subquery(latest))


def phone_number_last_webhook_at(*, tenant: Tenant, phone_number: PhoneNumber) -> datetime | None:
    received = (WebhookEvent.objects.for_tenant(tenant).filter(phone_number=phone_number)
                .order_by("-received_at").values_list("received_at", flat=True).first())
    candidates = [t for t in (received, phone_number.last_webhook_at) if t is not None]
    return max(candidates) if candidates else None
