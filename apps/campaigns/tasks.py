"""Thin task interfaces for campaigns (the `default` queue): ids in, one service call.

The database is the record: a lost or killed task loses nothing, the beat tick rings again."""

from __future__ import annotations

from celery import shared_task

from apps.core.scoping import with_tenant_scope

from .dispatch import campaign_feed
from .planning import campaign_plan
from .services import campaigns_tick


@shared_task(acks_late=True, ignore_result=True)
@with_tenant_scope()
def campaign_plan_task(*, tenant_id: int, campaign_id: int) -> dict:
    report = campaign_plan(tenant_id=tenant_id, campaign_id=campaign_id)
    return {"chunks": report.chunks, "planned": report.planned, "done": report.done}


@shared_task(acks_late=True, ignore_result=True)
@with_tenant_scope()
def campaign_feed_task(*, tenant_id: int, campaign_id: int) -> dict:
    report = campaign_feed(tenant_id=tenant_id, campaign_id=campaign_id)
    return {"fed": report.fed, "batches": report.batches, "completed": report.completed, "stopped": report.stopped}


@shared_task(ignore_result=True)
def campaigns_tick_task() -> dict:
    return campaigns_tick()
