"""Thin task interfaces for tenant-facing webhooks: ids in, one service call. Routed to the
`events` queue by CELERY_TASK_ROUTES. Every task is idempotent (the services claim rows before
posting), hence ``acks_late``."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from django.utils import timezone

from apps.core.scoping import with_tenant_scope

from . import services
from .models import WebhookDelivery

logger = logging.getLogger(__name__)


def _countdown(moment: datetime) -> float:
    return max(0.0, (moment - timezone.now()).total_seconds())


@shared_task(bind=True, acks_late=True, ignore_result=True)
@with_tenant_scope()
def webhook_delivery_send_task(self, *, tenant_id: int, delivery_id: int) -> str:
    try:
        delivery = services.webhook_delivery_attempt(delivery_id=delivery_id, task_id=self.request.id or "")
    except WebhookDelivery.DoesNotExist:
        logger.info("webhook delivery %s of tenant %s no longer exists (endpoint deleted)", delivery_id, tenant_id)
        return "gone"
    if delivery.attempted and delivery.status == WebhookDelivery.Status.RETRYING and delivery.next_attempt_at:
        webhook_delivery_send_task.apply_async(kwargs={"tenant_id": tenant_id, "delivery_id": delivery_id},
                                               countdown=_countdown(delivery.next_attempt_at))
    return delivery.status


@shared_task(bind=True, acks_late=True, ignore_result=True)
@with_tenant_scope()
def webhook_deliveries_dispatch_task(self, *, tenant_id: int) -> dict:
    report = services.webhook_deliveries_dispatch(tenant_id=tenant_id, task_id=self.request.id or "")
    if report.more_due:
        webhook_deliveries_dispatch_task.delay(tenant_id=tenant_id)
    elif report.next_due_at is not None:
        webhook_deliveries_dispatch_task.apply_async(kwargs={"tenant_id": tenant_id},
                                                     countdown=_countdown(report.next_due_at))
    return {"attempted": report.attempted, "succeeded": report.succeeded, "retrying": report.retrying,
            "failed": report.failed}


@shared_task(acks_late=True, ignore_result=True)
def webhook_deliveries_sweep_task() -> dict:
    stale = services.webhook_deliveries_sweep()
    return {"tenants": len(stale), "deliveries": sum(stale.values())}
