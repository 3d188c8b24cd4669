"""API send: ``POST /api/v1/messages`` (a text to a contact whose 24-hour window is open, API key
in ``Authorization: Bearer``) against the web server, from a separate load-generator process.

Measures (design.md, "Targets": >= 500 requests/s, p99 <= 50 ms):

* the most the served app answers with a fixed number of connections (closed loop), next to a
  floor measured on the same web server, load generator and concurrency -- a bare DRF view that
  parses the body and answers 202 (bench/floor_views.py);
* latency at a sustained offered load of 500 requests/s (open loop: requests leave on schedule
  whatever the answers, and a request's latency counts from when it was due);
* the same with an ``Idempotency-Key`` on every request (one more row written per request);
* the database queries of one request, measured in this process with the Django test client.

The send is queued, not performed, on the request path: no Celery worker runs, so the
dispatch bell rings once and the queued rows wait. Every 202 must have left exactly one queued
message behind.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.conversations.models import Message
from apps.core.statistics import analyze
from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create

from . import BenchmarkBroken, Result
from .data import contacts_and_conversations, wa_id, workspace
from .loadgen import Load, run_load, write_bodies
from .procs import HOST, RUN_DIR, Context, free_port, web_layout

SUMMARY = "POST /api/v1/messages (text, open window, API key): req/s and p99 vs a bare DRF view; 500 req/s offered"
PARAMS: dict[str, Any] = {
    "contacts": 2_000,  # contacts with an open window; requests go round-robin over them
    "requests": 10_000,  # per closed-loop run (floor, send, send with Idempotency-Key)
    "concurrency": 16,  # load-generator connections, closed loop
    "offered_rate": 500.0,  # requests/s of the open-loop run
    "offered_seconds": 20.0,  # how long the open-loop run offers that rate
    "open_loop_connections": 64,  # at most this many requests in flight in the open-loop run
    "web_server": "granian",  # as the Procfile serves Parley; "gunicorn" (gthread) for a comparison
    "web_workers": 3,  # web server processes ...
    "web_threads": 2,  # ... and threads per process that run the application
    "warmup_requests": 500,  # per endpoint, before measuring
    "query_samples": 20,  # in-process requests whose queries are counted
    "load_time_limit": 120.0,  # seconds, per load run
}
QUICK: dict[str, Any] = {"contacts": 200, "requests": 1_000, "offered_seconds": 4.0, "warmup_requests": 100,
                         "query_samples": 5}

PHONE_NUMBER_ID = "990000000000003"
DISPLAY_NUMBER = "15550100003"
RPS_TARGET = 500.0
P99_TARGET_MS = 50.0
OFFERED_SHARE_TARGET = 0.98  # of the offered rate, answered
PATH = "/api/v1/messages"
FLOOR_PATH = "/_bench/bare-api/"


def _body(i: int, contacts: int) -> bytes:
    customer = wa_id(i % contacts)
    return json.dumps({"to": f"+{customer}", "type": "text",
                       "text": {"body": f"Your order #{100000 + i} has shipped and arrives tomorrow."}},
                      separators=(",", ":")).encode()


def _headers(key: str, idempotency_key: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def _accepted(load: Load) -> int:
    return load.raw["status_counts"].get("202", 0)


def _not_accepted(load: Load) -> int:
    return load.raw["completed"] - _accepted(load)


def _queries_per_request(key: str, contacts: int, samples: int, *, idempotent: bool) -> dict[str, Any]:
    """Queries of ``samples`` sends through the test client in this process (same settings and
    database as the served app), with their SQL for the JSON file."""
    client = Client(SERVER_NAME=HOST)
    counts, statements = [], []
    for i in range(samples):
        extra = {"HTTP_IDEMPOTENCY_KEY": f"queries-{time.time_ns()}-{i}"} if idempotent else {}
        with CaptureQueriesContext(connection) as captured:
            response = client.post(PATH, data=_body(i, contacts), content_type="application/json",
                                   HTTP_AUTHORIZATION=f"Bearer {key}", **extra)
        if response.status_code != 202:
            raise BenchmarkBroken(f"api: an in-process send answered {response.status_code}: "
                                  f"{response.content[:500]!r}")
        counts.append(len(captured.captured_queries))
        statements = [q["sql"][:300] for q in captured.captured_queries]
    return {"median": sorted(counts)[len(counts) // 2], "min": min(counts), "max": max(counts),
            "last_request": statements}


def run(ctx: Context, params: dict[str, Any]) -> Result:
    result = Result(benchmark="api", params=dict(params))
    contacts, requests, concurrency = params["contacts"], params["requests"], params["concurrency"]
    started = time.monotonic()
    ws = workspace(slug="bench-api", phone_number_id=PHONE_NUMBER_ID, display_number=DISPLAY_NUMBER,
                   app_secret="bench-api-app-secret")
    # The per-key throttle is the tenant's setting; the benchmark measures the send, not the 429.
    Tenant.objects.filter(pk=ws.tenant.pk).update(api_requests_per_minute=10_000_000)
    contacts_and_conversations(ws, contacts, window_open=True)
    from apps.contacts.models import Contact
    from apps.conversations.models import Conversation

    analyze(Contact, Conversation, sqlite=True)
    _, key = api_key_create(tenant=ws.tenant, name="benchmark")

    plain = write_bodies(RUN_DIR / "api-bodies.json",
                         [(_body(i, contacts), _headers(key)) for i in range(min(requests, 5 * contacts))])
    instance = time.time_ns()
    idempotent = write_bodies(RUN_DIR / "api-idempotent-bodies.json",
                              [(_body(i, contacts), _headers(key, f"bench-{instance}-{i}")) for i in range(requests)])
    offered_requests = max(1, round(params["offered_rate"] * params["offered_seconds"]))
    result.details["setup_s"] = round(time.monotonic() - started, 1)

    expected_queued = 0
    with ctx.processes() as procs:
        port = free_port()
        web = procs.web(port=port, params=params)
        result.details["processes"] = {
            "web": web_layout(params, web.pid),
            "load generator": f"python -m bench.loadgen (asyncio, keep-alive), {concurrency} connections (closed loop) and "
                              f"{params['offered_rate']:.0f} req/s offered (open loop), its own process",
            "worker": "none: the send is queued on the request path, the dispatch bell only rings",
        }
        base = f"http://{HOST}:{port}"

        def load(name: str, path: str, bodies: Any, count: int, *, time_limit: float | None = None,
                 **kwargs: Any) -> Load:
            kwargs.setdefault("concurrency", concurrency)
            measured = run_load(name=name, url=base + path, bodies=bodies, requests=count,
                                time_limit=time_limit or params["load_time_limit"],
                                environment_env=ctx.environment.env, **kwargs)
            procs.check_alive()
            if measured.raw["timed_out"] and not kwargs.get("rate"):
                raise BenchmarkBroken(f"api: load run {name} hit its time limit: {measured.summary()}")
            if _not_accepted(measured):
                raise BenchmarkBroken(f"api: load run {name} had answers other than 202: "
                                      f"{measured.raw['status_counts']} {measured.raw['errors']}")
            return measured

        warmups = {"floor": load("warmup-floor", FLOOR_PATH, plain, params["warmup_requests"]),
                   "send": load("warmup-send", PATH, plain, params["warmup_requests"])}
        result.details["warmup"] = {name: w.summary() for name, w in warmups.items()}
        expected_queued += _accepted(warmups["send"])

        cpu_start = procs.cpu_sample()
        floor = load("floor-bare-api", FLOOR_PATH, plain, requests)
        cpu_floor = procs.cpu_sample()
        send = load("send", PATH, plain, requests)
        cpu_send = procs.cpu_sample()
        # A server that cannot keep up falls further behind every second: give it three times
        # the offered span, then count what was not answered as not sustained.
        offered = load("send-offered", PATH, plain, offered_requests, rate=params["offered_rate"],
                       concurrency=params["open_loop_connections"], time_limit=3 * params["offered_seconds"])
        cpu_offered = procs.cpu_sample()
        keyed = load("send-idempotency-key", PATH, idempotent, requests)
        cpu_keyed = procs.cpu_sample()
        expected_queued += _accepted(send) + _accepted(offered) + _accepted(keyed)
        result.details["cpu"] = {"floor": procs.cpu_used(cpu_start, cpu_floor),
                                 "send": procs.cpu_used(cpu_floor, cpu_send),
                                 "send_offered": procs.cpu_used(cpu_send, cpu_offered),
                                 "send_idempotency_key": procs.cpu_used(cpu_offered, cpu_keyed)}

    queries = _queries_per_request(key, contacts, params["query_samples"], idempotent=False)
    queries_keyed = _queries_per_request(key, contacts, params["query_samples"], idempotent=True)
    expected_queued += 2 * params["query_samples"]
    queued = Message.all_tenants.filter(tenant_id=ws.tenant.pk, direction=Message.Direction.OUTBOUND,
                                        status=Message.Status.QUEUED).count()

    floor_name = "bare DRF view"
    # Answered within the run, per second of the span the rate was offered for (or longer, when
    # the server fell behind): below 1.0 the offered load was not sustained.
    offered_rate = offered.raw["completed"] / max(params["offered_seconds"], offered.raw["elapsed_s"])
    offered_share = offered_rate / params["offered_rate"]
    result.add("sends/s, closed loop", send.rps, "req/s", floor=floor.rps, floor_name=floor_name,
               target=f"≥ {RPS_TARGET:.0f}", ok=send.rps >= RPS_TARGET)
    result.add("latency p50, closed loop", send.p50_ms, "ms", floor=floor.p50_ms, floor_name=floor_name)
    result.add("latency p99, closed loop", send.p99_ms, "ms", floor=floor.p99_ms, floor_name=floor_name)
    result.add(f"answered at {params['offered_rate']:.0f} req/s offered", offered_rate, "req/s",
               target=f"≥ {OFFERED_SHARE_TARGET:.0%} of offered", ok=offered_share >= OFFERED_SHARE_TARGET,
               ratio=offered_share)
    result.add(f"latency p50 at {params['offered_rate']:.0f} req/s", offered.p50_ms, "ms")
    result.add(f"latency p99 at {params['offered_rate']:.0f} req/s", offered.p99_ms, "ms",
               target=f"≤ {P99_TARGET_MS:.0f} ms", ok=offered.p99_ms <= P99_TARGET_MS)
    result.add("sends/s with Idempotency-Key", keyed.rps, "req/s", floor=send.rps, floor_name="without")
    result.add("latency p99 with Idempotency-Key", keyed.p99_ms, "ms", floor=send.p99_ms, floor_name="without")
    result.add("queries per send", queries["median"], "", floor=queries_keyed["median"],
               floor_name="with Idempotency-Key")
    result.add("floor: bare DRF view", floor.rps, "req/s")
    lost = expected_queued - queued
    result.add("202s without a queued message", lost, "", target="0", ok=lost == 0)

    result.details.update({
        "requests_per_run": requests,
        "offered_requests": offered_requests,
        "offered_requests_issued": offered.raw["completed"],
        "offered_run_cut_short": offered.raw["timed_out"],
        "messages_expected_queued": expected_queued,
        "messages_queued": queued,
        "queries": {"send": queries, "send_idempotency_key": queries_keyed},
        "loads": {"floor_bare_api": floor.summary(), "send": send.summary(), "send_offered": offered.summary(),
                  "send_idempotency_key": keyed.summary()},
    })
    if lost:
        result.broken.append(f"{expected_queued} sends were answered 202 but {queued} queued messages exist")
    if math.isnan(send.rps):
        result.broken.append("the send run measured nothing")
    return result
