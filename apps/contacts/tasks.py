"""Thin task interfaces for contacts, routed to the ``default`` queue (CELERY_TASK_ROUTES):
ids in, one service call. Idempotent: the service claims the import row and resumes from the
rows already committed, hence ``acks_late``."""

from __future__ import annotations

from celery import shared_task

from apps.core.scoping import with_tenant_scope

from . import services


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=30 * 60, time_limit=31 * 60)
@with_tenant_scope()
def contact_import_run_task(*, tenant_id: int, import_id: int) -> str:
    contact_import = services.contact_import_run(tenant_id=tenant_id, import_id=import_id)
    return contact_import.status if contact_import else "not_claimed"


@shared_task(ignore_result=True)
def contact_imports_sweep_task() -> int:
    """Beat: re-ring imports whose task was lost or whose worker died."""
    return services.contact_imports_sweep()
