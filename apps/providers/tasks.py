"""Thin task interfaces for provider webhooks, routed to the `webhooks` queue."""

from __future__ import annotations

from celery import shared_task

from .services import webhook_event_process, webhook_events_process_pending, webhook_events_sweep


@shared_task(bind=True, acks_late=True, ignore_result=True, autoretry_for=(Exception,), retry_backoff=2,
             retry_backoff_max=300, max_retries=7)
def webhook_event_process_task(self, *, event_id: int) -> dict | None:
    report = webhook_event_process(event_id=event_id)
    return None if report is None else {"inbound": report.inbound, "statuses": report.statuses_applied}


@shared_task(ignore_result=True)
def webhook_events_sweep_task() -> int:
    return webhook_events_sweep()


@shared_task(acks_late=True, ignore_result=True)
def webhook_events_process_pending_task(*, slot: int = 0) -> dict:
    report = webhook_events_process_pending(slot=slot)
    return {"inbound": report.inbound, "statuses": report.statuses_applied}
