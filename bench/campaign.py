"""Campaigns: N recipients (a tag of N contacts) sent one template each through the whole campaign
engine -- planning, feeding, the dispatcher, the token bucket -- to the Cloud API emulator at a
1,000/s budget. Twice: with the emulator's status webhooks off, then on (sent, delivered and read
for every message, posted to the web server and applied by the webhook worker).

Measured from the emulator's own receive times: the sustained rate with planning excluded (first
to last message received) and included (launch to last message received), its ratio to the
budget, the worst second of the clock and the worst one-second window of any start, duplicates
(the emulator counts every ``biz_opaque_callback_data`` and every recipient) and lost
recipients, and the workers' peak memory. The bench process plays beat: it runs the campaign
tick and the send sweeper every second, as ``celery beat`` does in production.
"""

from __future__ import annotations

import json
import math
import time
import urllib.request
from collections import Counter
from typing import Any

from django.db.models import Count
from django.utils import timezone

from apps.campaigns.models import Campaign, CampaignRecipient
from apps.campaigns.services import campaign_create, campaign_launch, campaigns_tick
from apps.contacts.models import Contact, ContactTag, Tag
from apps.conversations.models import Message
from apps.conversations.services import messages_sweep
from apps.core.scoping import tenant_scope
from apps.core.statistics import analyze
from apps.message_templates.models import MessageTemplate

from . import BenchmarkBroken, Result
from .data import BATCH, WABA_ID, wa_id, workspace
from .procs import HOST, Context, Processes, free_port, group_rss_mb, web_layout
from .send import (
    TEMPLATE_BODY,
    TEMPLATE_LANGUAGE,
    TEMPLATE_NAME,
    around_worst_window,
    worst_clock_second,
    worst_window,
)

SUMMARY = ("100,000-recipient campaign to the emulator at a 1,000/s budget, status webhooks off then on: "
           "sustained rate, worst second, duplicates, lost")
PARAMS: dict[str, Any] = {
    "recipients": 100_000,
    "budget": 1000,  # the number's messages_per_second
    "worker_concurrency": 4,  # prefork processes on sending,default (dispatch, feed, planning)
    "webhook_worker_concurrency": 2,  # prefork processes on webhooks,events (the webhooks-on run)
    "webhook_worker_nice": 0,  # CPU priority of the webhook worker (0: the same as the others)
    "web_server": "granian",  # receiving the emulator's webhooks, as the Procfile serves Parley ...
    "web_workers": 2,  # ... in this many processes ...
    "web_threads": 2,  # ... of this many application threads each
    "runs": "off,on",  # status webhooks off, on (comma-separated)
    "timeout": 1200.0,  # seconds for the campaign to complete
    "stall_seconds": 90.0,  # give up when nothing moves for this long
    "statuses_timeout": 600.0,  # seconds for every status webhook to be applied (webhooks on)
}
QUICK: dict[str, Any] = {"recipients": 3_000, "timeout": 300.0, "statuses_timeout": 180.0}

APP_SECRET = "bench-campaign-app-secret"
SUSTAINED_TARGET = 0.95  # of the budget, webhooks off
SUSTAINED_TARGET_WEBHOOKS = 0.8  # of the budget, webhooks on
WORST_SECOND_TARGET = 1.05  # of the budget
COUNT_INTERVAL = 3.0  # seconds between the bench's own progress counts
MAPPING = {"1": {"source": "first_name", "fallback": "there"},
           "2": {"source": "attribute", "key": "order", "fallback": "#1"}}


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def _received(base: str, phone_number_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    since = 0
    while True:
        page = _get(f"{base}/_emulator/messages?since={since}&limit=5000")["messages"]
        if not page:
            return [m for m in out if m["phone_number_id"] == phone_number_id]
        out.extend({"t": m["accepted_at"], "cb": m["biz_opaque_callback_data"], "to": m["wa_id"],
                    "phone_number_id": m["phone_number_id"]} for m in page)
        since = page[-1]["seq"]


def _setup(run: str, count: int, budget: int, graph_url: str, pnid: str, display: str):
    ws = workspace(slug=f"bench-campaign-{run}", phone_number_id=pnid, display_number=display,
                   app_secret=APP_SECRET, messages_per_second=budget, graph_api_url=graph_url)
    tenant = ws.tenant
    template = MessageTemplate.all_tenants.create(
        tenant=tenant, phone_number=ws.number, waba_id=WABA_ID, name=TEMPLATE_NAME, language=TEMPLATE_LANGUAGE,
        category=MessageTemplate.Category.UTILITY, status=MessageTemplate.Status.APPROVED,
        provider_template_id="1000000000000003", components=[{"type": "BODY", "text": TEMPLATE_BODY}])
    tag = Tag.all_tenants.create(tenant=tenant, name="bench")
    for start in range(0, count, BATCH):
        contacts = Contact.all_tenants.bulk_create([
            Contact(tenant=tenant, wa_id=wa_id(i), name=f"Customer {i}", attributes={"order": f"#{100000 + i}"})
            for i in range(start, min(count, start + BATCH))])
        ContactTag.all_tenants.bulk_create([ContactTag(tenant=tenant, contact=c, tag=tag) for c in contacts])
    analyze(Contact, ContactTag, sqlite=True)
    with tenant_scope(tenant):
        campaign = campaign_create(tenant=tenant, name=f"Bench {run}", phone_number=ws.number, template=template,
                                   audience={"tags": ["bench"]}, variable_mapping=MAPPING)
    return ws, campaign


def _recipient_counts(campaign: Campaign) -> dict[str, int]:
    return dict(CampaignRecipient.all_tenants.filter(campaign_id=campaign.pk).values("status")
                .annotate(n=Count("id")).values_list("status", "n"))


def _wait_completed(procs: Processes, campaign: Campaign, *, total: int, timeout: float, stall: float,
                    pgids: list[int]) -> tuple[dict[str, int], list[tuple[float, float]]]:
    deadline = time.monotonic() + timeout
    rss: list[tuple[float, float]] = []
    last, last_progress, next_beat, next_count = None, time.monotonic(), 0.0, 0.0
    while True:
        now = time.monotonic()
        if now >= next_beat:  # beat: the campaign tick every second, the sweeper with it
            campaigns_tick()
            messages_sweep()
            next_beat = now + 1.0
        rss.append((time.time(), sum(group_rss_mb(pgid) for pgid in pgids)))
        status = Campaign.all_tenants.values_list("status", flat=True).get(pk=campaign.pk)
        if status == Campaign.Status.COMPLETED:
            return _recipient_counts(campaign), rss
        if now < next_count:
            time.sleep(0.5)
            continue
        # Counting recipients by status walks the whole campaign (tens of ms at 100,000): only
        # every few seconds, so that the measuring does not take the CPU the sending needs.
        next_count = now + COUNT_INTERVAL
        counts = _recipient_counts(campaign)
        if status not in (Campaign.Status.PLANNING, Campaign.Status.RUNNING):
            raise BenchmarkBroken(f"campaign: the campaign ended {status}: {counts}")
        procs.check_alive()
        progress = (sum(counts.values()), counts.get("pending", 0), counts.get("queued", 0))
        if progress != last:
            last, last_progress = progress, now
        if now >= deadline or now - last_progress >= stall:
            why = "timed out" if now >= deadline else f"nothing moved for {stall:.0f} s"
            raise BenchmarkBroken(f"campaign: {why}; recipients now {counts}")
        time.sleep(0.5)


def _wait_statuses(procs: Processes, campaign: Campaign, *, total: int, timeout: float) -> tuple[int, float]:
    """Until every message is read (three webhooks each applied); returns (read, seconds)."""
    started = time.monotonic()
    messages = Message.all_tenants.filter(campaign_recipient__campaign_id=campaign.pk)
    while True:
        read = messages.filter(status=Message.Status.READ).count()
        if read >= total or time.monotonic() - started > timeout:
            return read, time.monotonic() - started
        procs.check_alive()
        time.sleep(1.0)


def _one_run(ctx: Context, params: dict[str, Any], run: str, index: int, result: Result) -> None:
    total, budget = params["recipients"], params["budget"]
    webhooks = run == "on"
    pnid, display = f"99000000000001{index}", f"1555010001{index}"
    emulator_port = free_port()
    base = f"http://{HOST}:{emulator_port}"
    started = time.monotonic()
    ws, campaign = _setup(run, total, budget, base, pnid, display)
    setup_s = time.monotonic() - started
    with ctx.processes() as procs:
        layout: dict[str, str] = {}
        emulator_args = ["--number", f"{pnid}:{display}", "--access-token", f"bench-campaign-{run}-access-token",
                         "--waba-id", WABA_ID]
        pgids = []
        if webhooks:
            web_port = free_port()
            web = procs.web(port=web_port, params=params)
            hooks = procs.celery_worker(name=f"worker-webhooks-{run}", queues="webhooks,events",
                                        concurrency=params["webhook_worker_concurrency"],
                                        nice=params["webhook_worker_nice"])
            pgids.append(hooks.pid)
            emulator_args += ["--webhook-url", f"http://{HOST}:{web_port}/webhooks/meta/", "--app-secret",
                              APP_SECRET, "--read-share", "1", "--sent-delay", "0.2", "--delivered-delay", "0.5",
                              "--read-delay", "1", "--jitter", "0.2"]
            layout["web"] = web_layout(params, web.pid)
            layout["webhook worker"] = (f"celery -Q webhooks,events, concurrency "
                                        f"{params['webhook_worker_concurrency']}, nice "
                                        f"{params['webhook_worker_nice']}, pid {hooks.pid}")
        else:
            emulator_args.append("--no-status-webhooks")
        emulator = procs.emulator(port=emulator_port, args=emulator_args)
        worker = procs.celery_worker(name=f"worker-sending-{run}", queues="sending,default",
                                     concurrency=params["worker_concurrency"])
        pgids.append(worker.pid)
        layout["worker"] = (f"celery -Q sending,default (dispatch, feed, planning), concurrency "
                            f"{params['worker_concurrency']}, pid {worker.pid}")
        layout["emulator"] = f"cloudapi_emulator {'with' if webhooks else 'without'} status webhooks, pid {emulator.pid}"
        layout["beat"] = "the bench process: campaigns_tick + messages_sweep every second"
        rss_start = sum(group_rss_mb(p) for p in pgids)
        cpu_before = procs.cpu_sample()
        launched_at = time.time()
        with tenant_scope(ws.tenant):
            campaign_launch(campaign=campaign)
        counts, rss = _wait_completed(procs, campaign, total=total, timeout=params["timeout"],
                                      stall=params["stall_seconds"], pgids=pgids)
        completed_at = time.time()
        cpu = procs.cpu_used(cpu_before, procs.cpu_sample())
        read, statuses_s = (_wait_statuses(procs, campaign, total=total, timeout=params["statuses_timeout"])
                            if webhooks else (0, 0.0))
        received = _received(base, pnid)
        stats = _get(f"{base}/_emulator/stats")
    campaign.refresh_from_db()
    times = sorted(m["t"] for m in received)
    span = times[-1] - times[0] if len(times) > 1 else math.nan
    sustained = len(times) / span if span and span > 0 else math.nan
    with_planning = len(times) / (times[-1] - launched_at) if times else math.nan
    worst = worst_window(times)
    ids = set(map(str, Message.all_tenants.filter(campaign_recipient__campaign_id=campaign.pk)
                  .values_list("id", flat=True)))
    per_callback = Counter(m["cb"] for m in received)
    duplicates = sum(1 for cb, n in per_callback.items() if n > 1) + sum(
        1 for n in Counter(m["to"] for m in received).values() if n > 1)
    lost = total - len({cb for cb in per_callback if cb in ids}) - counts.get("failed", 0)
    target = SUSTAINED_TARGET_WEBHOOKS if webhooks else SUSTAINED_TARGET
    label = f"webhooks {run}"
    result.add(f"{label}: sustained msg/s, planning excluded", sustained, "msg/s", floor=budget, floor_name="budget",
               target=f"≥ {target} × budget", ok=sustained >= target * budget)
    result.add(f"{label}: sustained msg/s, planning included", with_planning, "msg/s", floor=budget,
               floor_name="budget")
    clock = worst_clock_second(times)
    result.add(f"{label}: worst second of the clock", clock, "msg", floor=budget, floor_name="budget",
               target=f"≤ {WORST_SECOND_TARGET} × budget", ok=clock <= WORST_SECOND_TARGET * budget)
    result.add(f"{label}: worst 1-second window, any start", worst, "msg", floor=budget, floor_name="budget")
    result.add(f"{label}: duplicates", duplicates, "", target="0", ok=duplicates == 0)
    result.add(f"{label}: lost", lost, "", target="0", ok=lost == 0)
    result.add(f"{label}: peak worker memory", max(mb for _, mb in rss), "MB", floor=rss_start,
               floor_name="at start")
    planning_s = ((campaign.planned_at - campaign.started_at).total_seconds()
                  if campaign.planned_at and campaign.started_at else None)
    result.add(f"{label}: planning", planning_s, "s")
    if webhooks:
        result.add(f"{label}: statuses applied (read)", read, f"of {total}", target=str(total), ok=read == total)
    per_second = Counter(int(t - times[0]) for t in times) if times else Counter()
    result.details[run] = {
        "setup_s": round(setup_s, 1), "launch_to_complete_s": round(completed_at - launched_at, 1),
        "launch_to_first_received_s": (times[0] - launched_at) if times else None, "span_s": span,
        "recipients": counts, "received": len(received), "statuses_wait_s": round(statuses_s, 1),
        "received_per_second": [per_second.get(s, 0) for s in range(max(per_second, default=-1) + 1)],
        "worst_window": around_worst_window(times, receiver_stalls=stats.get("loop_stalls")),
        "emulator": {k: v for k, v in stats.items() if k not in ("by_recipient", "by_callback_data", "loop_stalls")},
        "worker_rss_mb": {"start": rss_start, "peak": max(mb for _, mb in rss),
                          "samples": [[round(t - launched_at, 1), round(mb, 1)] for t, mb in rss[::4]]},
        "cpu_launch_to_complete": cpu,
        "completed_at": campaign.completed_at.isoformat() if campaign.completed_at else None,
        "measured_at": timezone.now().isoformat(),
    }
    result.details.setdefault("processes", {}).update({f"{run}: {k}": v for k, v in layout.items()})
    if lost:
        result.broken.append(f"webhooks {run}: {lost} recipient(s) never reached the emulator")
    if duplicates:
        result.broken.append(f"webhooks {run}: {duplicates} message(s) or recipient(s) reached the emulator twice")


def run(ctx: Context, params: dict[str, Any]) -> Result:
    result = Result(benchmark="campaign", params=dict(params))
    runs = [r.strip() for r in str(params["runs"]).split(",") if r.strip()]
    if not runs or set(runs) - {"off", "on"}:
        raise BenchmarkBroken(f"campaign: runs must be off, on or both, not {params['runs']!r}")
    for index, name in enumerate(runs):
        _one_run(ctx, params, name, index, result)
    return result
