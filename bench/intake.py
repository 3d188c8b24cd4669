"""Webhook intake: signed Meta status webhooks posted to ``/webhooks/meta/`` by a separate
load-generator process, against N outbound messages that every status matches.

Measures (design.md, "Targets"): acknowledged POSTs/s and ack latency, next to two floors
measured on the same web server with the same load generator, bodies and concurrency -- a bare
view and a view that checks the HMAC and INSERTs the raw body, the latter run before the intake's
run and again after everything is applied (the ratio takes their mean, as the machine's speed
drifts between runs); then how fast the Celery workers apply every status (from the first POST
to the last applied), and that none is lost.

The ack latency target is checked at the load design.md sets the intake: 3,000 status updates
a second (Parley's ceiling of 1,000 messages a second on a number, each sent, delivered and
read), offered for 20 s on a schedule -- an open loop, each request's latency counted from when
it was due -- on messages of its own, while the workers apply them; the run also checks that the
workers kept up. A closed loop of 64 connections cannot carry that target: it keeps 64 requests
queued at the server, so its latency is 64 / throughput whatever the server does (the floors'
own p99 is well over 50 ms there). The HMAC+INSERT floor view is offered the same schedule first.

A run at 0.8 x the floor's closed-loop rate (the throughput target) is reported beside it, with
the floor view's own p99 on that schedule, and held to no target. At that rate the intake's
acknowledgements alone keep the two cores about 80 % busy, as the floor view's do, and applying
the statuses on the same cores costs more again (1.9-2.7 ms of CPU a POST acknowledged and
applied, against the floor's 1.2-1.5): about 2.5 cores' worth of work, so the applying must fall
behind and the tail with it. The floor view itself, which applies nothing, answered that
schedule with a p99 of 16-360 ms over eleven runs on one machine (over 50 ms in five).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Max, Q

from apps.conversations.models import Message
from apps.providers.models import WebhookEvent

from . import BenchmarkBroken, Result
from .data import WABA_ID, instance_tag, outbound_messages, wamid, workspace
from .floor_views import FLOOR_SECRET
from .loadgen import Load, run_load, write_bodies
from .procs import HOST, RUN_DIR, Context, Processes, free_port, web_layout

SUMMARY = "signed status webhooks: acks/s and p99 vs an HMAC+INSERT floor; statuses applied/s; nothing lost"
PARAMS: dict[str, Any] = {
    "messages": 20_000,  # N outbound messages; 3 statuses each (sent, delivered, read)
    "statuses_per_post": 10,  # K statuses per POST (Meta batches up to 1,000)
    "concurrency": 64,  # load-generator connections
    "web_server": "granian",  # as the Procfile serves Parley; "gunicorn" (gthread) for a comparison
    "web_workers": 3,  # web server processes ...
    "web_threads": 2,  # ... and threads per process that run the application
    "worker_concurrency": 3,  # prefork processes of the worker on the webhooks,events queues
    # CPU priority of that worker, and of its session's scheduling group: 19 lets the web's
    # acknowledgements go first on a machine both share, as README's deployment notes advise
    # (0: the same as the web's)
    "worker_nice": 19,
    "floor_requests": 0,  # requests per floor; 0: as many as the intake POSTs
    "offered_share": 0.8,  # of the HMAC+INSERT floor's requests/s, offered in the open-loop run reported beside
    "offered_messages": 20_000,  # messages of that run (3 statuses each); its POSTs bound its length
    # The design's intake load, offered on a schedule while the workers apply it: 1,000 messages/s
    # on a number, 3 statuses each. Its messages: rate x seconds / 3.
    "design_statuses_per_s": 3_000.0,
    "design_seconds": 20.0,
    "open_loop_connections": 64,  # at most this many requests in flight in the open-loop run
    "warmup_requests": 600,  # per endpoint, before measuring
    "load_time_limit": 120.0,  # seconds, per load run
    "apply_timeout": 600.0,  # seconds to wait for the workers to apply everything
    "stall_seconds": 60.0,  # give up when nothing is applied for this long
}
QUICK: dict[str, Any] = {"messages": 1_000, "offered_messages": 1_000, "design_seconds": 2.0,
                         "warmup_requests": 200, "apply_timeout": 120.0}

PHONE_NUMBER_ID = "990000000000001"
DISPLAY_NUMBER = "15550100001"
ACK_RATIO_TARGET = 0.8
ACK_P99_TARGET_MS = 50.0
OFFERED_ANSWERED_TARGET = 0.98  # of the offered POSTs, answered within the run
APPLIED_TARGET = 3000.0
KEPT_UP_TARGET = 0.95  # of the design load's statuses/s, applied from its first POST to its last status applied


@dataclass
class Post:
    body: bytes
    statuses: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def _signed(body: bytes, secret: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest(),
            "User-Agent": "facebookexternalua"}


def _status(message: Message, status: str, timestamp: int) -> dict[str, Any]:
    item: dict[str, Any] = {"id": message.provider_message_id, "status": status, "timestamp": str(timestamp),
                            "recipient_id": message.contact.wa_id, "biz_opaque_callback_data": str(message.pk)}
    if status == "sent":
        item["conversation"] = {"id": hashlib.md5(message.contact.wa_id.encode()).hexdigest(),
                                "expiration_timestamp": str(timestamp + 86400), "origin": {"type": "marketing"}}
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
    return item


def status_posts(messages: list[Message], per_post: int) -> list[Post]:
    """Meta-shaped status webhooks (protocol.md A5) for every message: sent, delivered, read.

    Messages go in blocks of ``per_post``; the POSTs interleave like a campaign in full swing --
    block b's ``sent`` travels with block b-lag's ``delivered`` and block b-2*lag's ``read`` -- so
    a message's three statuses are far apart in the stream, as they are in life.
    """
    blocks = [messages[i:i + per_post] for i in range(0, len(messages), per_post)]
    lag = max(1, len(blocks) // 4)
    base = int(time.time())
    posts = []
    for step in range(len(blocks) + 2 * lag):
        for offset, status in enumerate(("sent", "delivered", "read")):
            index = step - offset * lag
            if 0 <= index < len(blocks):
                statuses = [_status(m, status, base + offset) for m in blocks[index]]
                payload = {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [{
                    "field": "messages",
                    "value": {"messaging_product": "whatsapp",
                              "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
                              "statuses": statuses}}]}]}
                posts.append(Post(json.dumps(payload, separators=(",", ":")).encode(), len(statuses)))
    return posts


def _setup(count: int) -> tuple[Any, list[Message]]:
    ws = workspace(slug="bench-intake", phone_number_id=PHONE_NUMBER_ID, display_number=DISPLAY_NUMBER,
                   app_secret=FLOOR_SECRET.decode())
    instance = instance_tag()

    def accepted_template(i: int, contact: Any, conversation: Any) -> dict[str, Any]:
        provider_id = wamid(contact.wa_id, i, instance)
        return {"type": Message.Type.TEMPLATE, "status": Message.Status.ACCEPTED,
                "content": {"name": "hello_world", "language": {"code": "en_US"}}, "text_preview": "Hello World",
                "provider_message_id": provider_id, "wa_message_id": provider_id, "attempt_count": 1,
                "sending_at": conversation.last_message_at, "accepted_at": conversation.last_message_at}

    messages = outbound_messages(ws, count, build=accepted_template, window_open=False)
    return ws, messages


def _cpu_ms(used: dict[str, Any]) -> float:
    """CPU milliseconds of every process in a ``Processes.cpu_used`` sample."""
    return 1000 * sum(part["cpu_s"] for part in used.values() if isinstance(part, dict))


def _event_counts(tenant_id: int) -> dict[str, Any]:
    return WebhookEvent.all_tenants.filter(tenant_id=tenant_id).aggregate(
        stored=Count("id"), pending=Count("id", filter=Q(processed_at__isnull=True)),
        errored=Count("id", filter=~Q(error="")), retried=Count("id", filter=Q(attempts__gt=1)),
        last_processed=Max("processed_at"))


def _wait_applied(procs: Processes, *, tenant_id: int, acked: int, timeout: float, stall: float) -> dict[str, Any]:
    """Poll the database until every acknowledged event is processed (or time runs out, or
    nothing moves for ``stall`` seconds)."""
    deadline = time.monotonic() + timeout
    last_pending, last_progress = None, time.monotonic()
    while True:
        counts = _event_counts(tenant_id)
        if counts["stored"] >= acked and counts["pending"] == 0:
            return counts
        procs.check_alive()
        now = time.monotonic()
        if counts["pending"] != last_pending:
            last_pending, last_progress = counts["pending"], now
        if now >= deadline or now - last_progress >= stall:
            why = "timed out" if now >= deadline else f"nothing applied for {stall:.0f} s"
            raise BenchmarkBroken(f"intake: {why} waiting for the workers: {counts['pending']} of "
                                  f"{counts['stored']} stored events unprocessed, {counts['errored']} with an error "
                                  f"(acknowledged POSTs: {acked})")
        time.sleep(0.2)


def _applied(tenant_id: int, by_sha: dict[str, int]) -> int:
    """Statuses in the events processed without error so far."""
    processed_ok = WebhookEvent.all_tenants.filter(tenant_id=tenant_id, processed_at__isnull=False, error="")
    return sum(by_sha.get(sha, 0) for sha in processed_ok.values_list("body_sha256", flat=True))


def run(ctx: Context, params: dict[str, Any]) -> Result:
    result = Result(benchmark="intake", params=dict(params))
    count, per_post, concurrency = params["messages"], params["statuses_per_post"], params["concurrency"]
    started = time.monotonic()
    design_messages = max(1, round(params["design_statuses_per_s"] * params["design_seconds"] / 3))
    offered_end = count + params["offered_messages"]
    ws, all_messages = _setup(offered_end + design_messages)
    posts = status_posts(all_messages[:count], per_post)
    offered_posts = status_posts(all_messages[count:offered_end], per_post)
    design_posts = status_posts(all_messages[offered_end:], per_post)
    floor_requests = params["floor_requests"] or len(posts)
    by_sha = {post.sha256: post.statuses for post in posts + offered_posts + design_posts}
    if len(by_sha) != len(posts) + len(offered_posts) + len(design_posts):
        raise BenchmarkBroken("intake: two POST bodies are identical; the intake would store one of them")
    design_statuses = sum(p.statuses for p in design_posts)
    design_rate = len(design_posts) / params["design_seconds"]  # POSTs/s
    signed = write_bodies(RUN_DIR / "intake-bodies.json", [(p.body, _signed(p.body, FLOOR_SECRET)) for p in posts])
    offered_signed = write_bodies(RUN_DIR / "intake-offered-bodies.json",
                                  [(p.body, _signed(p.body, FLOOR_SECRET)) for p in offered_posts])
    design_signed = write_bodies(RUN_DIR / "intake-design-bodies.json",
                                 [(p.body, _signed(p.body, FLOOR_SECRET)) for p in design_posts])
    # Same bodies, wrong signature: exercises the whole intake path except the INSERT.
    unsigned = write_bodies(RUN_DIR / "intake-warmup.json",
                            [(p.body, _signed(p.body, b"not-the-secret")) for p in posts[:200]])
    result.details["setup_s"] = round(time.monotonic() - started, 1)
    result.details["posts"] = len(posts)
    result.details["statuses"] = sum(p.statuses for p in posts)
    result.details["mean_body_bytes"] = round(sum(len(p.body) for p in posts) / len(posts))

    with ctx.processes() as procs:
        port = free_port()
        web = procs.web(port=port, params=params)
        worker = procs.celery_worker(name="worker-webhooks", queues="webhooks,events",
                                     concurrency=params["worker_concurrency"], nice=params["worker_nice"])
        result.details["processes"] = {
            "web": web_layout(params, web.pid),
            "worker": f"celery worker -Q webhooks,events, prefork concurrency {params['worker_concurrency']}, "
                      f"nice {params['worker_nice']}, pid {worker.pid}",
            "load generator": f"python -m bench.loadgen (asyncio, keep-alive), {concurrency} connections, its own process",
        }
        base = f"http://{HOST}:{port}"

        def load(name: str, path: str, bodies: Any, requests: int, **kwargs: Any) -> Load:
            measured = run_load(name=name, url=base + path, bodies=bodies, requests=requests, concurrency=concurrency,
                                time_limit=params["load_time_limit"], environment_env=ctx.environment.env, **kwargs)
            procs.check_alive()
            if measured.raw["timed_out"]:
                raise BenchmarkBroken(f"intake: load run {name} hit its time limit: {measured.summary()}")
            return measured

        warmups = {
            "bare": load("warmup-bare", "/_bench/bare/", signed, params["warmup_requests"]),
            "hmac_insert": load("warmup-hmac", "/_bench/hmac-insert/", signed, params["warmup_requests"]),
            "intake_bad_signature": load("warmup-intake", "/webhooks/meta/", unsigned, params["warmup_requests"]),
        }
        if warmups["intake_bad_signature"].raw["status_counts"] != {"403": params["warmup_requests"]}:
            raise BenchmarkBroken(f"intake: badly signed warm-up POSTs were not all refused with 403: "
                                  f"{warmups['intake_bad_signature'].raw['status_counts']}")
        result.details["warmup"] = {name: w.summary() for name, w in warmups.items()}

        cpu_floor = procs.cpu_sample()
        bare = load("floor-bare", "/_bench/bare/", signed, floor_requests)
        cpu_bare = procs.cpu_sample()
        floor = load("floor-hmac-insert", "/_bench/hmac-insert/", signed, floor_requests)
        result.details["cpu_floors"] = {"bare": procs.cpu_used(cpu_floor, cpu_bare),
                                        "hmac_insert": procs.cpu_used(cpu_bare, procs.cpu_sample())}
        offered_rate = params["offered_share"] * floor.rps
        offered_span = len(offered_posts) / offered_rate
        # The floor offered the same schedule as the intake's open-loop run below: what the
        # ack latency target asks of the intake, asked of the least an intake can do.
        floor_offered = run_load(name="floor-hmac-insert-offered", url=base + "/_bench/hmac-insert/",
                                 bodies=offered_signed, requests=len(offered_posts),
                                 concurrency=params["open_loop_connections"], rate=offered_rate,
                                 time_limit=3 * offered_span, environment_env=ctx.environment.env)
        procs.check_alive()
        floor_design = run_load(name="floor-hmac-insert-design", url=base + "/_bench/hmac-insert/",
                                bodies=design_signed, requests=len(design_posts),
                                concurrency=params["open_loop_connections"], rate=design_rate,
                                time_limit=3 * params["design_seconds"], environment_env=ctx.environment.env)
        procs.check_alive()
        # The floor's rows have no tenant (the intake stores none such); they go before the real run.
        WebhookEvent.all_tenants.filter(tenant__isnull=True).delete()

        cpu_before = procs.cpu_sample()
        intake = load("intake", "/webhooks/meta/", signed, len(posts), per_request_codes=True)
        cpu_acked = procs.cpu_sample()
        codes = intake.raw.pop("codes")
        acked = [posts[i] for i, code in enumerate(codes) if code == 200]
        expected = sum(p.statuses for p in acked)
        counts = _wait_applied(procs, tenant_id=ws.tenant.pk, acked=len(acked), timeout=params["apply_timeout"],
                               stall=params["stall_seconds"])
        cpu_applied = procs.cpu_sample()
        closed_last_processed = counts["last_processed"]
        closed_applied = _applied(ws.tenant.pk, by_sha)
        result.details["cpu"] = {"while_posting": procs.cpu_used(cpu_before, cpu_acked),
                                 "after_the_last_ack": procs.cpu_used(cpu_acked, cpu_applied)}
        # The floor again, once everything is applied: the ratio is taken against the mean of the
        # floor's runs before and after the intake's, so that the machine's drift between runs
        # (the floor's second run answered 0.78-1.47 x its first) is not charged to one side.
        floor_after = load("floor-hmac-insert-after", "/_bench/hmac-insert/", signed, floor_requests)
        WebhookEvent.all_tenants.filter(tenant__isnull=True).delete()
        cpu_applied = procs.cpu_sample()

        offered = run_load(name="intake-offered", url=base + "/webhooks/meta/", bodies=offered_signed,
                           requests=len(offered_posts), concurrency=params["open_loop_connections"],
                           rate=offered_rate, time_limit=3 * offered_span, environment_env=ctx.environment.env,
                           per_request_codes=True)
        procs.check_alive()
        offered_codes = offered.raw.pop("codes")
        acked += [offered_posts[i] for i, code in enumerate(offered_codes) if code == 200]
        expected = sum(p.statuses for p in acked)
        counts = _wait_applied(procs, tenant_id=ws.tenant.pk, acked=len(acked), timeout=params["apply_timeout"],
                               stall=params["stall_seconds"])
        cpu_offered = procs.cpu_sample()
        result.details["cpu"]["open_loop"] = procs.cpu_used(cpu_applied, cpu_offered)

        # The design's load, offered for its span while the workers apply it.
        design = run_load(name="intake-design", url=base + "/webhooks/meta/", bodies=design_signed,
                          requests=len(design_posts), concurrency=params["open_loop_connections"],
                          rate=design_rate, time_limit=3 * params["design_seconds"],
                          environment_env=ctx.environment.env, per_request_codes=True)
        procs.check_alive()
        design_codes = design.raw.pop("codes")
        design_acked = [design_posts[i] for i, code in enumerate(design_codes) if code == 200]
        acked += design_acked
        expected = sum(p.statuses for p in acked)
        counts = _wait_applied(procs, tenant_id=ws.tenant.pk, acked=len(acked), timeout=params["apply_timeout"],
                               stall=params["stall_seconds"])
        result.details["cpu"]["design_load"] = procs.cpu_used(cpu_offered, procs.cpu_sample())

    applied = _applied(ws.tenant.pk, by_sha)
    read = Message.all_tenants.filter(tenant_id=ws.tenant.pk, status=Message.Status.READ).count()
    first_post = intake.raw["first_request_at"]
    last_apply = closed_last_processed.timestamp()
    apply_span = last_apply - first_post
    # The closed-loop run's statuses, applied per second from its first POST to the last applied.
    applied_rate = closed_applied / apply_span if apply_span > 0 else math.nan
    lost = expected - applied
    # Answered per second of the span the rate was offered for (or longer, when the server fell
    # behind), against the rate offered: below 1.0 the rate was not sustained.
    answered_share = (offered.raw["completed"] / max(offered_span, offered.raw["elapsed_s"]) / offered_rate
                      if offered_posts else math.nan)
    design_answered = design.raw["completed"] / max(params["design_seconds"], design.raw["elapsed_s"]) / design_rate
    # The design load's statuses, applied per second from its first POST to the last applied:
    # the workers kept up when that is (nearly) the rate they were offered at.
    design_apply_span = counts["last_processed"].timestamp() - design.raw["first_request_at"]
    design_applied = sum(p.statuses for p in design_acked)
    design_applied_rate = design_applied / design_apply_span if design_apply_span > 0 else math.nan
    design_offered_rate = design_statuses / params["design_seconds"]

    floor_name = "HMAC+INSERT view"
    floor_rps = (floor.rps + floor_after.rps) / 2
    result.add("acknowledged POSTs/s", intake.rps, "req/s", floor=floor_rps,
               floor_name=f"{floor_name}, mean of the runs before and after",
               target=f"≥ {ACK_RATIO_TARGET} × floor", ok=intake.rps >= ACK_RATIO_TARGET * floor_rps)
    result.add("ack latency p50", intake.p50_ms, "ms", floor=floor.p50_ms, floor_name=floor_name)
    result.add("ack latency p99 (closed loop: 64 queued)", intake.p99_ms, "ms", floor=floor.p99_ms,
               floor_name=floor_name)
    design_load = f"{design_rate:,.0f} POSTs/s ({design_offered_rate:,.0f} statuses/s, the design's load)"
    result.add(f"answered at {design_load}", design.rps, "req/s", target=f"≥ {OFFERED_ANSWERED_TARGET:.0%} of offered",
               ok=design_answered >= OFFERED_ANSWERED_TARGET and design.non_200 == 0, ratio=design_answered)
    result.add(f"ack latency p50 at {design_rate:,.0f} POSTs/s", design.p50_ms, "ms", floor=floor_design.p50_ms,
               floor_name=f"{floor_name}, same schedule")
    result.add(f"ack latency p99 at {design_rate:,.0f} POSTs/s", design.p99_ms, "ms", floor=floor_design.p99_ms,
               floor_name=f"{floor_name}, same schedule", target=f"≤ {ACK_P99_TARGET_MS:.0f} ms",
               ok=design.p99_ms <= ACK_P99_TARGET_MS)
    result.add(f"statuses applied/s at {design_rate:,.0f} POSTs/s, first POST to last applied", design_applied_rate,
               "statuses/s", floor=design_offered_rate, floor_name="offered",
               target=f"≥ {KEPT_UP_TARGET} × offered", ok=design_applied_rate >= KEPT_UP_TARGET * design_offered_rate)
    result.add(f"answered at {offered_rate:,.0f} POSTs/s offered ({params['offered_share']} × floor)",
               offered.rps, "req/s", ratio=answered_share)
    result.add(f"ack latency p50 at {offered_rate:,.0f} POSTs/s", offered.p50_ms, "ms")
    result.add(f"ack latency p99 at {offered_rate:,.0f} POSTs/s", offered.p99_ms, "ms",
               floor=floor_offered.p99_ms, floor_name=f"{floor_name}, same schedule")
    non_200 = intake.non_200 + offered.non_200 + design.non_200
    result.add("non-200 answers", non_200, "", target="0", ok=non_200 == 0)
    result.add("statuses applied/s", applied_rate, "statuses/s", target=f"≥ {APPLIED_TARGET:,.0f}",
               ok=applied_rate >= APPLIED_TARGET)
    result.add("statuses lost", lost, "", target="0", ok=lost == 0)
    total = len(all_messages)
    result.add("messages ending in read", read, f"of {total}", target=str(total), ok=read == total)
    # What an acknowledged and applied POST costs the machine against the floor's request: the
    # acknowledgement ratio above moves with the machine's speed between the two runs, this less.
    closed_cpu = result.details["cpu"]
    intake_cpu = ((_cpu_ms(closed_cpu["while_posting"]) + _cpu_ms(closed_cpu["after_the_last_ack"]))
                  / intake.raw["completed"])
    floor_cpu = _cpu_ms(result.details["cpu_floors"]["hmac_insert"]) / floor.raw["completed"]
    result.add("CPU per POST, acknowledged and applied (every process)", intake_cpu, "ms", floor=floor_cpu,
               floor_name=floor_name)
    result.add("floor: bare view", bare.rps, "req/s")
    result.add("floor: HMAC+INSERT view, before the intake's run", floor.rps, "req/s", floor=bare.rps,
               floor_name="bare view")
    result.add("floor: HMAC+INSERT view, after it", floor_after.rps, "req/s", floor=floor.rps, floor_name="before")
    floor_answered = floor_offered.raw["completed"] / max(offered_span, floor_offered.raw["elapsed_s"]) / offered_rate
    result.add(f"floor: HMAC+INSERT view at {offered_rate:,.0f} POSTs/s offered, answered", floor_offered.rps,
               "req/s", ratio=floor_answered)
    result.add(f"floor: HMAC+INSERT view, ack latency p99 at {offered_rate:,.0f} POSTs/s", floor_offered.p99_ms, "ms")

    result.details.update({
        "statuses_per_post": per_post,
        "acknowledged_posts": len(acked),
        "statuses_expected": expected,
        "statuses_applied": applied,
        "apply_span_s": apply_span,
        "ack_span_s": intake.raw["elapsed_s"],
        "apply_lag_after_last_ack_s": last_apply - intake.raw["last_answer_at"],
        "events": {key: value for key, value in counts.items() if key != "last_processed"},
        "offered_rate": offered_rate,
        "offered_posts": len(offered_posts),
        "offered_answered_share": answered_share,
        "design_rate": design_rate,
        "design_posts": len(design_posts),
        "design_answered_share": design_answered,
        "design_apply_lag_after_last_ack_s": counts["last_processed"].timestamp() - design.raw["last_answer_at"],
        "loads": {"floor_bare": bare.summary(), "floor_hmac_insert": floor.summary(),
                  "floor_hmac_insert_after": floor_after.summary(),
                  "floor_hmac_insert_offered": floor_offered.summary(),
                  "floor_hmac_insert_design": floor_design.summary(), "intake": intake.summary(),
                  "intake_offered": offered.summary(), "intake_design": design.summary()},
    })
    if lost:
        result.broken.append(f"{lost} acknowledged status update(s) were never applied")
    if counts["errored"]:
        result.broken.append(f"{counts['errored']} webhook event(s) ended with an error")
    if len(acked) == len(posts) + len(offered_posts) + len(design_posts) and read != total:
        result.broken.append(f"every POST was acknowledged but only {read} of {total} messages reached read")
    return result
