"""Thin task interfaces for templates: ids in, one service call. Routed to the `default` queue
by CELERY_TASK_ROUTES, so a slow sync never delays sends or webhooks."""

from __future__ import annotations

from celery import shared_task

from apps.core.scoping import with_tenant_scope
from apps.phone_numbers.models import PhoneNumber
from apps.providers.exceptions import ProviderTransientError
from apps.tenants.models import Tenant

from .services import template_sync


@shared_task(bind=True, acks_late=True, ignore_result=True, autoretry_for=(ProviderTransientError,),
             retry_backoff=30, retry_backoff_max=600, max_retries=5)
@with_tenant_scope()
def template_sync_task(self, *, tenant_id: int, phone_number_id: int) -> dict:
    tenant = Tenant.objects.get(pk=tenant_id)
    phone_number = PhoneNumber.objects.for_tenant(tenant_id).filter(pk=phone_number_id).first()
    if phone_number is None:  # removed since the sync was asked for
        return {"phone_number": "deleted"}
    report = template_sync(tenant=tenant, phone_number=phone_number)
    return {"created": report.created, "updated": report.updated, "unchanged": report.unchanged,
            "deleted": report.deleted, "skipped": report.skipped}
