"""Reads for tenant-facing webhooks. Every lookup goes through the tenant; another tenant's id
is a 404, never a 403 and never a row."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max, Prefetch, QuerySet
from django.http import Http404

from apps.core.exceptions import ApplicationError
from apps.tenants.models import Tenant

from .models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint


def as_object_id(value: Any, *, what: str) -> int:
    try:
        pk = int(value)
    except (TypeError, ValueError) as exc:
        raise Http404(f"No {what} matches the given query.") from exc
    if pk <= 0:
        raise Http404(f"No {what} matches the given query.")
    return pk


def endpoint_list(*, tenant: Tenant) -> QuerySet[WebhookEndpoint]:
    # The secret is decrypted on load; a list never needs it.
    return WebhookEndpoint.objects.for_tenant(tenant).defer("secret").order_by("id")


def access_endpoint(*, tenant: Tenant, endpoint_id: Any) -> WebhookEndpoint:
    pk = as_object_id(endpoint_id, what="webhook endpoint")
    endpoint = WebhookEndpoint.objects.for_tenant(tenant).filter(pk=pk).first()
    if endpoint is None:
        raise Http404("No webhook endpoint matches the given query.")
    return endpoint


def delivery_list(*, tenant: Tenant, endpoint_id: Any = None, status: str | None = None) -> QuerySet[WebhookDelivery]:
    """Newest first, with the endpoint (without its secret) joined."""
    qs = (WebhookDelivery.objects.for_tenant(tenant)
          .select_related("endpoint").defer("endpoint__secret").order_by("-id"))
    if endpoint_id not in (None, ""):
        try:
            qs = qs.filter(endpoint_id=int(endpoint_id))
        except (TypeError, ValueError) as exc:
            raise ApplicationError(f"endpoint_id must be an integer, got {endpoint_id!r}.",
                                   code="invalid_filter") from exc
    if status not in (None, ""):
        if status not in WebhookDelivery.Status.values:
            raise ApplicationError(
                f"Unknown delivery status {status!r}; expected one of {', '.join(WebhookDelivery.Status.values)}.",
                code="invalid_filter",
            )
        qs = qs.filter(status=status)
    return qs


def access_delivery(*, tenant: Tenant, delivery_id: Any) -> WebhookDelivery:
    """One delivery with its endpoint and every attempt (newest first) loaded."""
    pk = as_object_id(delivery_id, what="webhook delivery")
    attempts = WebhookDeliveryAttempt.objects.for_tenant(tenant).order_by("-id")
    delivery = (WebhookDelivery.objects.for_tenant(tenant)
                .select_related("endpoint").defer("endpoint__secret")
                .prefetch_related(Prefetch("attempts", queryset=attempts))
                .filter(pk=pk).first())
    if delivery is None:
        raise Http404("No webhook delivery matches the given query.")
    return delivery


def delivery_attempt_summaries(*, tenant: Tenant, delivery_ids: list[int]) -> dict[int, dict[str, Any]]:
    """``{delivery_id: {"total": n, "last": attempt or None}}`` for a page of deliveries, in two
    queries whatever the page size. ``total`` counts the attempts of every cycle (replays too)."""
    attempts = WebhookDeliveryAttempt.objects.for_tenant(tenant)
    counts = {row["delivery_id"]: row for row in attempts.filter(delivery_id__in=delivery_ids)
              .values("delivery_id").annotate(total=Count("id"), last_id=Max("id")).order_by()}
    last = {attempt.pk: attempt for attempt in attempts.filter(pk__in=[row["last_id"] for row in counts.values()])}
    return {
        delivery_id: {"total": counts[delivery_id]["total"] if delivery_id in counts else 0,
                      "last": last.get(counts[delivery_id]["last_id"]) if delivery_id in counts else None}
        for delivery_id in delivery_ids
    }


# --- settings pages -----------------------------------------------------------------------

DELIVERY_PAGE_SIZE = 25


def endpoint_list_with_stats(*, tenant: Tenant) -> QuerySet[WebhookEndpoint]:
    """Endpoints with their last delivery time and how many deliveries are waiting or gave up."""
    from django.db.models import Q

    return endpoint_list(tenant=tenant).annotate(
        last_delivery_at=Max("deliveries__created_at"),
        waiting=Count("deliveries", filter=Q(deliveries__status__in=["pending", "retrying"])),
        gave_up=Count("deliveries", filter=Q(deliveries__status="failed")),
    )


def endpoint_delivery_page(*, tenant: Tenant, endpoint: WebhookEndpoint, before: Any = None,
                           limit: int = DELIVERY_PAGE_SIZE) -> tuple[list[WebhookDelivery], int | None]:
    """One page of an endpoint's deliveries, newest first, by keyset (``id < before``): no
    OFFSET and no COUNT, whatever the log's size. Returns the rows and the next page's ``before``
    (None on the last page)."""
    qs = WebhookDelivery.objects.for_tenant(tenant).filter(endpoint_id=endpoint.pk).order_by("-id")
    if before not in (None, ""):
        try:
            qs = qs.filter(pk__lt=int(before))
        except (TypeError, ValueError):
            pass  # a mangled cursor shows the first page
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].pk if more and rows else None)


def endpoint_has_waiting_deliveries(*, tenant: Tenant, endpoint: WebhookEndpoint) -> bool:
    return WebhookDelivery.objects.for_tenant(tenant).filter(
        endpoint_id=endpoint.pk, status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING],
    ).exists()

