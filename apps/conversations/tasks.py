"""Thin task interfaces: ids in, one service call. Routed to the `sending` queue."""

from __future__ import annotations

from celery import shared_task

from apps.core.scoping import with_tenant_scope
from apps.providers.exceptions import ProviderTransientError

from .services import messages_dispatch, messages_sweep
from .services.media import media_fetch
from .services.tally import conversation_tallies_compact


@shared_task(bind=True, acks_late=True, ignore_result=True)
@with_tenant_scope()
def message_dispatch_task(self, *, tenant_id: int, phone_number_id: int) -> dict:
    report = messages_dispatch(tenant_id=tenant_id, phone_number_id=phone_number_id, task_id=self.request.id or "")
    return {"claimed": report.claimed, "accepted": report.accepted, "retried": report.retried,
            "failed": report.failed, "unknown": report.unknown}


@shared_task(ignore_result=True)
def messages_sweep_task() -> dict:
    report = messages_sweep()
    return {"rung": report.rung, "requeued_unknown": report.requeued_unknown, "failed_unknown": report.failed_unknown}


@shared_task(ignore_result=True)
def conversation_tallies_compact_task() -> dict:
    report = conversation_tallies_compact()
    return {"read": report.read, "written": report.written}


@shared_task(bind=True, acks_late=True, ignore_result=True, autoretry_for=(ProviderTransientError,), retry_backoff=5,
             retry_backoff_max=300, max_retries=8)
@with_tenant_scope()
def media_fetch_task(self, *, tenant_id: int, media_id: int) -> str:
    return media_fetch(tenant_id=tenant_id, media_id=media_id)
