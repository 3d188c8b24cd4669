"""Sending: N queued template messages for one number with a 1,000/s budget, sent by the Celery
dispatcher to the Cloud API emulator (status webhooks off).

Measures, from the emulator's own receive times (when the provider got each message): the
sustained rate and its ratio to the budget, the worst second of the clock (the token bucket must
keep it within 5 % of the budget) and the worst one-second window of any start, duplicates (the
emulator counts every ``biz_opaque_callback_data``), messages lost or failed, and the worker's
memory over the run.
"""

from __future__ import annotations

import bisect
import json
import math
import time
import urllib.request
from collections import Counter
from typing import Any

from django.db.models import Count

from apps.conversations.models import Message, MessageAttempt
from apps.conversations.tasks import message_dispatch_task
from apps.message_templates.models import MessageTemplate

from . import BenchmarkBroken, Result
from .data import WABA_ID, outbound_messages, workspace
from .procs import HOST, Context, Processes, free_port, group_rss_mb

SUMMARY = "20,000 queued messages to the emulator at a 1,000/s budget: sustained rate, worst second, no duplicates"
PARAMS: dict[str, Any] = {
    "messages": 20_000,
    "budget": 1000,  # the number's messages_per_second
    "worker_concurrency": 4,  # prefork processes of the worker on the sending,default queues
    "bells": 0,  # dispatch tasks rung at the start; 0: one per worker process
    "timeout": 600.0,  # seconds for everything to be accepted
    "stall_seconds": 60.0,  # give up when nothing is accepted for this long
}
QUICK: dict[str, Any] = {"messages": 2_000, "timeout": 120.0}

PHONE_NUMBER_ID = "990000000000002"
DISPLAY_NUMBER = "15550100002"
ACCESS_TOKEN = "bench-send-access-token"
SUSTAINED_TARGET = 0.95  # of the budget
WORST_SECOND_TARGET = 1.05  # of the budget
# The emulator's built-in template (apps/providers/emulator/server.py, default_templates).
TEMPLATE_NAME, TEMPLATE_LANGUAGE = "order_update", "en"
TEMPLATE_BODY = "Hi {{1}}, your order {{2}} has shipped and is on its way."
NAMES = ("Ana", "Ben", "Chen", "Dana", "Emil", "Fatima", "Greta", "Hiro")


def _template_message(i: int, contact: Any, conversation: Any) -> dict[str, Any]:
    name, order = NAMES[i % len(NAMES)], f"#{100000 + i}"
    content = {"name": TEMPLATE_NAME, "language": {"code": TEMPLATE_LANGUAGE},
               "components": [{"type": "body", "parameters": [{"type": "text", "text": name},
                                                              {"type": "text", "text": order}]}]}
    return {"type": Message.Type.TEMPLATE, "status": Message.Status.QUEUED, "content": content,
            "text_preview": TEMPLATE_BODY.replace("{{1}}", name).replace("{{2}}", order),
            "next_attempt_at": conversation.last_message_at}


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _emulator_messages(base: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    since = 0
    while True:
        page = _get(f"{base}/_emulator/messages?since={since}&limit=5000")["messages"]
        if not page:
            return out
        out.extend(page)
        since = page[-1]["seq"]


def worst_window(times: list[float], width: float = 1.0) -> int:
    """The most events in any window [t, t + width) -- over every start, not just whole seconds."""
    return worst_window_at(times, width)[0]


def worst_clock_second(times: list[float]) -> int:
    """The most events in one second of the clock ([n, n + 1) of Unix time), as a provider
    that counts messages per second sees them."""
    return max(Counter(int(t) for t in times).values(), default=0)


def worst_window_at(times: list[float], width: float = 1.0) -> tuple[int, float]:
    """(the most events in any window [t, t + width), that window's start t)."""
    worst, at = 0, times[0] if times else 0.0
    for i, start in enumerate(times):
        count = bisect.bisect_left(times, start + width, lo=i) - i
        if count > worst:
            worst, at = count, start
    return worst, at


def around_worst_window(times: list[float], width: float = 1.0, step: float = 0.1,
                        receiver_stalls: list[list[float]] | None = None) -> dict[str, Any]:
    """Where the worst window fell (seconds from the first event) and the events per ``step``
    from a second before it to a second after: a burst shows as a tall bar after a gap.
    ``receiver_stalls`` (the emulator's ``[wall time, ms late]``) are listed where they fall in
    that range: a burst right after a stall of the receiver was stamped late, not sent late."""
    worst, at = worst_window_at(times, width)
    if not times:
        return {"count": 0}
    start = at - 1.0
    bins = [bisect.bisect_left(times, start + (k + 1) * step) - bisect.bisect_left(times, start + k * step)
            for k in range(int(round((width + 2.0) / step)))]
    around = {"count": worst, "starts_at_s": round(at - times[0], 3), f"per_{step}s_from_1s_before": bins}
    if receiver_stalls is not None:
        around["receiver_stalls_ms_from_1s_before"] = [
            [round(t - start, 3), ms] for t, ms in receiver_stalls if start <= t <= start + width + 2.0]
        around["receiver_stalls_in_run"] = sum(1 for t, _ in receiver_stalls if times[0] <= t <= times[-1])
        around["receiver_worst_stall_ms"] = max((ms for t, ms in receiver_stalls if times[0] <= t <= times[-1]),
                                                default=0.0)
    return around


def _status_counts(tenant_id: int) -> dict[str, int]:
    rows = Message.all_tenants.filter(tenant_id=tenant_id).values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


def _wait_sent(procs: Processes, *, tenant_id: int, total: int, timeout: float, stall: float,
               worker_pgid: int) -> tuple[dict[str, int], list[tuple[float, float]]]:
    """Poll until no row is queued or sending; sample the worker's memory on the way."""
    deadline = time.monotonic() + timeout
    rss: list[tuple[float, float]] = []
    last_done, last_progress = -1, time.monotonic()
    while True:
        counts = _status_counts(tenant_id)
        rss.append((time.time(), group_rss_mb(worker_pgid)))
        waiting = counts.get(Message.Status.QUEUED, 0) + counts.get(Message.Status.SENDING, 0)
        if waiting == 0:
            return counts, rss
        procs.check_alive()
        now = time.monotonic()
        done = total - waiting
        if done != last_done:
            last_done, last_progress = done, now
        if now >= deadline or now - last_progress >= stall:
            why = "timed out" if now >= deadline else f"nothing sent for {stall:.0f} s"
            raise BenchmarkBroken(f"send: {why}; statuses now {counts}")
        time.sleep(0.5)


def run(ctx: Context, params: dict[str, Any]) -> Result:
    result = Result(benchmark="send", params=dict(params))
    total, budget = params["messages"], params["budget"]
    concurrency = params["worker_concurrency"]
    bells = params["bells"] or concurrency
    port = free_port()
    base = f"http://{HOST}:{port}"
    started = time.monotonic()
    ws = workspace(slug="bench-send", phone_number_id=PHONE_NUMBER_ID, display_number=DISPLAY_NUMBER,
                   app_secret="bench-send-app-secret", messages_per_second=budget, graph_api_url=base)
    MessageTemplate.all_tenants.create(
        tenant=ws.tenant, phone_number=ws.number, waba_id=WABA_ID, name=TEMPLATE_NAME, language=TEMPLATE_LANGUAGE,
        category=MessageTemplate.Category.UTILITY, status=MessageTemplate.Status.APPROVED,
        provider_template_id="1000000000000002", components=[{"type": "BODY", "text": TEMPLATE_BODY}])
    outbound_messages(ws, total, build=_template_message, window_open=False)
    result.details["setup_s"] = round(time.monotonic() - started, 1)

    with ctx.processes() as procs:
        emulator = procs.emulator(port=port, args=["--no-status-webhooks", "--number",
                                                   f"{PHONE_NUMBER_ID}:{DISPLAY_NUMBER}", "--access-token",
                                                   ACCESS_TOKEN, "--waba-id", WABA_ID])
        worker = procs.celery_worker(name="worker-sending", queues="sending,default", concurrency=concurrency)
        result.details["processes"] = {
            "worker": f"celery worker -Q sending,default, prefork concurrency {concurrency}, pid {worker.pid}",
            "emulator": f"manage.py cloudapi_emulator --no-status-webhooks on {base}, pid {emulator.pid}",
            "dispatch": f"{bells} message_dispatch_task(s) rung at the start; each re-rings while rows are due",
        }
        rss_start = group_rss_mb(worker.pid)
        cpu_before = procs.cpu_sample()
        rung_at = time.time()
        for _ in range(bells):
            message_dispatch_task.apply_async(kwargs={"tenant_id": ws.tenant.pk, "phone_number_id": ws.number.pk})
        counts, rss = _wait_sent(procs, tenant_id=ws.tenant.pk, total=total, timeout=params["timeout"],
                                 stall=params["stall_seconds"], worker_pgid=worker.pid)
        done_at = time.time()
        result.details["cpu"] = procs.cpu_used(cpu_before, procs.cpu_sample())
        received = [m for m in _emulator_messages(base) if m["phone_number_id"] == PHONE_NUMBER_ID]
        stats = _get(f"{base}/_emulator/stats")

    times = sorted(m["accepted_at"] for m in received)
    span = times[-1] - times[0] if len(times) > 1 else math.nan
    sustained = len(times) / span if span and span > 0 else math.nan
    worst = worst_window(times)
    duplicates = sum(1 for n in stats["by_callback_data"].values() if n > 1)
    accepted = counts.get(Message.Status.ACCEPTED, 0)
    failed = counts.get(Message.Status.FAILED, 0)
    lost = total - accepted - failed
    attempts = dict(MessageAttempt.all_tenants.filter(tenant_id=ws.tenant.pk).values("outcome")
                    .annotate(n=Count("id")).values_list("outcome", "n"))
    retried = attempts.get(MessageAttempt.Outcome.TRANSIENT_ERROR, 0) + attempts.get(MessageAttempt.Outcome.UNKNOWN, 0)
    rss_peak = max(mb for _, mb in rss)
    rss_end = rss[-1][1]

    result.add("sustained messages/s", sustained, "msg/s", floor=budget, floor_name="budget",
               target=f"≥ {SUSTAINED_TARGET} × budget", ok=sustained >= SUSTAINED_TARGET * budget)
    clock = worst_clock_second(times)
    result.add("worst second of the clock", clock, "msg", floor=budget, floor_name="budget",
               target=f"≤ {WORST_SECOND_TARGET} × budget", ok=clock <= WORST_SECOND_TARGET * budget)
    result.add("worst 1-second window, any start", worst, "msg", floor=budget, floor_name="budget")
    result.add("duplicates", duplicates, "", target="0", ok=duplicates == 0)
    result.add("lost (never accepted)", lost, "", target="0", ok=lost == 0)
    result.add("failed", failed, "", target="0", ok=failed == 0)
    result.add("retried attempts", retried, "")
    result.add("received by the emulator", len(received), f"of {total}", target=str(total), ok=len(received) == total)
    result.add("ring → last accepted", done_at - rung_at, "s")
    result.add("worker RSS start → end", rss_end, "MB", floor=rss_start, floor_name="RSS at start")

    per_second = Counter(int(t - times[0]) for t in times) if times else Counter()
    result.details.update({
        "budget": budget,
        "first_received_at": times[0] if times else None,
        "last_received_at": times[-1] if times else None,
        "span_s": span,
        "ring_to_first_received_s": (times[0] - rung_at) if times else None,
        "received_per_second": [per_second.get(s, 0) for s in range(max(per_second, default=-1) + 1)],
        "worst_window": around_worst_window(times),
        "statuses": counts,
        "attempts_by_outcome": attempts,
        "emulator": {key: value for key, value in stats.items() if key not in ("by_recipient", "by_callback_data")},
        "worker_rss_mb": {"start": rss_start, "peak": rss_peak, "end": rss_end,
                          "samples": [[round(t - rung_at, 1), round(mb, 1)] for t, mb in rss]},
    })
    if lost:
        result.broken.append(f"{lost} message(s) never accepted")
    if duplicates:
        result.broken.append(f"{duplicates} message(s) reached the provider more than once")
    if len(received) != accepted:
        result.broken.append(f"the emulator received {len(received)} message(s) but {accepted} rows are accepted")
    return result
