"""The per-number token bucket, both implementations: Redis (db 15 of the local server) and the
single-machine file bucket (under ``tmp_path``).

Timing is never asserted as "fast enough". Where the outcome depends on how long something
took, the test brackets each take between two wall-clock readings and checks the result against
the bucket arithmetic for the shortest and the longest time that can have elapsed. Redis runs on
this machine, so its ``TIME`` and ``time.time()`` read the same clock.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from apps.providers import ratelimit
from apps.providers.ratelimit import (
    FileTokenBucket,
    Grant,
    RedisTokenBucket,
    TokenBucket,
    TokenGate,
    acquire,
    bucket_capacity,
    get_bucket,
    pair_backoff_seconds,
)

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
REDIS_TEST_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/15"

# The multi-process run: 4 processes on one key of a 500/s number for 2 s.
HAMMER_PROCESSES = 4
HAMMER_RATE = 500
HAMMER_SECONDS = 2.0
HAMMER_WANT = 2


def _redis_listening() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class BucketEnv:
    kind: str
    prefix: str

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"


def _bucket_env(kind: str, settings, tmp_path) -> Iterator[BucketEnv]:
    settings.VAR_DIR = tmp_path
    prefix = f"test-{uuid.uuid4().hex}"
    if kind == "file":
        settings.REDIS_URL = ""
        yield BucketEnv("file", prefix)
        return
    if not _redis_listening():
        pytest.skip(f"nothing listens on {REDIS_HOST}:{REDIS_PORT}; start redis-server to run the "
                    "Redis token-bucket tests (CI does)")
    settings.REDIS_URL = REDIS_TEST_URL
    yield BucketEnv("redis", prefix)
    client = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        stale = list(client.scan_iter(match=f"{ratelimit.REDIS_KEY_PREFIX}{prefix}:*", count=1000))
        if stale:
            client.delete(*stale)
    finally:
        client.close()


@pytest.fixture(params=["file", "redis"])
def env(request, settings, tmp_path) -> Iterator[BucketEnv]:
    """``get_bucket()`` answers with the parametrised implementation; keys are unique per test."""
    yield from _bucket_env(request.param, settings, tmp_path)


@pytest.fixture
def redis_env(settings, tmp_path) -> Iterator[BucketEnv]:
    yield from _bucket_env("redis", settings, tmp_path)


@pytest.fixture
def file_env(settings, tmp_path) -> Iterator[BucketEnv]:
    yield from _bucket_env("file", settings, tmp_path)


def timed_take(bucket: TokenBucket, *, key: str, rate: float, want: int) -> tuple[Grant, float, float]:
    before = time.time()
    grant = bucket.take(key=key, rate=rate, want=want)
    return grant, before, time.time()


def refill_bounds(rate: float, shortest: float, longest: float) -> tuple[int, int]:
    """Whole tokens an emptied bucket can have refilled after between ``shortest`` and
    ``longest`` seconds."""
    cap = bucket_capacity(rate)
    return min(cap, math.floor(rate * max(0.0, shortest))), min(cap, math.floor(rate * longest))


# --- Pure arithmetic -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "capacity"),
    [(0.5, 1), (1, 1), (20, 1), (60, 1), (66, 1), (67, 2), (80, 2), (100, 2), (350, 6), (500, 8), (1000, 15)],
)
def test_capacity_is_one_and_a_half_percent_of_a_second_and_at_least_one_token(rate, capacity):
    assert bucket_capacity(rate) == capacity


@pytest.mark.parametrize(("attempt", "seconds"), [(0, 1.0), (1, 4.0), (2, 16.0), (3, 64.0), (4, 256.0),
                                                  (5, 1024.0), (6, 1024.0), (40, 1024.0)])
def test_pair_backoff_is_four_to_the_attempt_capped(attempt, seconds):
    assert pair_backoff_seconds(attempt) == seconds


def test_pair_backoff_rejects_a_negative_attempt():
    with pytest.raises(ValueError):
        pair_backoff_seconds(-1)


def test_get_bucket_follows_redis_url(settings):
    settings.REDIS_URL = ""
    assert isinstance(get_bucket(), FileTokenBucket)
    settings.REDIS_URL = REDIS_TEST_URL
    assert isinstance(get_bucket(), RedisTokenBucket)


# --- Both implementations ------------------------------------------------------------------


def test_env_selects_the_implementation(env):
    expected = RedisTokenBucket if env.kind == "redis" else FileTokenBucket
    assert isinstance(get_bucket(), expected)


@pytest.mark.parametrize("rate", [1, 20, 80, 500, 1000])
def test_a_new_bucket_holds_its_capacity(env, rate):
    grant = get_bucket().take(key=env.key("new"), rate=rate, want=10_000)
    assert grant.granted == bucket_capacity(rate)
    # The bucket is now exactly empty: the next token is one token's time away.
    assert grant.wait_seconds == pytest.approx(1 / rate, abs=2e-6)


def test_want_beyond_capacity_grants_partially_and_the_wait_is_right(env):
    bucket, key, rate = get_bucket(), env.key("partial"), 500
    first = bucket.take(key=key, rate=rate, want=25)
    assert first == Grant(granted=bucket_capacity(rate), wait_seconds=pytest.approx(1 / rate, abs=2e-6))

    second = bucket.take(key=key, rate=rate, want=25)
    assert second.granted < 25
    assert 0 < second.wait_seconds <= 1 / rate + 1e-6

    time.sleep(second.wait_seconds)
    assert bucket.take(key=key, rate=rate, want=1) == Grant(granted=1, wait_seconds=0.0)


def test_refill_is_continuous_at_the_rate(env):
    bucket, key, rate = get_bucket(), env.key("refill"), 1000
    drained, previous_before, previous_after = timed_take(bucket, key=key, rate=rate, want=bucket_capacity(rate))
    assert drained.granted == bucket_capacity(rate)
    for pause in (0.004, 0.01, 0.007):
        time.sleep(pause)
        grant, before, after = timed_take(bucket, key=key, rate=rate, want=10_000)
        # The bucket's two decisions lie inside the two calls, so the time it saw between them
        # is at least before - previous_after and at most after - previous_before.
        low, high = refill_bounds(rate, before - previous_after, after - previous_before)
        # The previous take may have left a fraction of a token behind, worth at most one more.
        assert low <= grant.granted <= high + 1, (pause, grant, low, high)
        assert 0 < grant.wait_seconds <= 1 / rate + 1e-6
        previous_before, previous_after = before, after


def test_refill_stops_at_capacity(env):
    bucket, key, rate = get_bucket(), env.key("cap"), 250
    cap = bucket_capacity(rate)
    assert bucket.take(key=key, rate=rate, want=cap).granted == cap
    time.sleep(0.2)  # 50 tokens' worth of time
    assert bucket.take(key=key, rate=rate, want=100).granted == cap


def test_keys_are_isolated(env):
    bucket, rate = get_bucket(), 1  # capacity 1, one token a second
    first, first_before, _ = timed_take(bucket, key=env.key("a"), rate=rate, want=1)
    other = bucket.take(key=env.key("b"), rate=rate, want=1)
    again, _, again_after = timed_take(bucket, key=env.key("a"), rate=rate, want=1)
    assert first.granted == 1
    assert other.granted == 1
    assert again.granted <= refill_bounds(rate, 0.0, again_after - first_before)[1]
    if again.granted == 0:
        assert 0 < again.wait_seconds <= 1.0


def test_want_zero_takes_nothing(env):
    bucket, key = get_bucket(), env.key("zero")
    assert bucket.take(key=key, rate=250, want=0) == Grant(granted=0, wait_seconds=0.0)
    assert bucket.take(key=key, rate=250, want=5).granted == bucket_capacity(250)


@pytest.mark.parametrize("kwargs", [
    {"rate": 0, "want": 1}, {"rate": -5, "want": 1}, {"rate": math.nan, "want": 1},
    {"rate": math.inf, "want": 1}, {"rate": 10, "want": -1}, {"rate": 10, "want": 1.5},
])
def test_take_rejects_nonsense(env, kwargs):
    with pytest.raises(ValueError):
        get_bucket().take(key=env.key("bad"), **kwargs)


def test_take_rejects_an_empty_key(env):
    with pytest.raises(ValueError):
        get_bucket().take(key="", rate=10, want=1)


def test_threads_share_one_bucket(env):
    """Eight threads of one process race for a 1/s bucket: only one token exists."""
    key, rate = env.key("threads"), 1
    granted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def race() -> None:
        bucket = get_bucket()
        start.wait()
        for _ in range(20):
            got = bucket.take(key=key, rate=rate, want=1).granted
            with lock:
                granted.append(got)

    began = time.time()
    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.time() - began
    assert len(granted) == 160
    assert 1 <= sum(granted) <= 1 + math.floor(rate * elapsed)


class CountingBucket:
    def __init__(self, inner: TokenBucket) -> None:
        self.inner = inner
        self.calls = 0

    def take(self, *, key: str, rate: float, want: int) -> Grant:
        self.calls += 1
        return self.inner.take(key=key, rate=rate, want=want)


def test_acquire_reaches_the_target_at_the_rate_without_spinning(env, monkeypatch):
    counting = CountingBucket(get_bucket())
    monkeypatch.setattr(ratelimit, "get_bucket", lambda: counting)
    rate, want = 1000, 200
    began = time.monotonic()
    got = acquire(key=env.key("acquire"), rate=rate, want=want, timeout=10)
    elapsed = time.monotonic() - began
    assert got == want
    # 50 were in the bucket; the other 150 cannot have come faster than the rate.
    assert elapsed >= (want - bucket_capacity(rate)) / rate - 0.001
    # It slept between takes instead of asking for one token every millisecond (~150 calls).
    assert counting.calls <= 30, counting.calls


def test_acquire_gives_up_at_the_timeout_with_what_it_has(env):
    rate, timeout = 10, 0.25  # capacity 1, a token every 100 ms
    began = time.monotonic()
    got = acquire(key=env.key("timeout"), rate=rate, want=50, timeout=timeout)
    elapsed = time.monotonic() - began
    assert elapsed >= timeout
    assert 1 <= got <= 1 + math.floor(rate * elapsed)
    assert got < 50


def test_acquire_with_no_timeout_takes_once(env):
    assert acquire(key=env.key("once"), rate=250, want=50, timeout=0) == bucket_capacity(250)


def test_acquire_of_nothing_returns_at_once(env):
    assert acquire(key=env.key("nothing"), rate=100, want=0, timeout=5) == 0


def test_a_gate_hands_out_tokens_as_they_come_and_posts_keep_the_pace(env, monkeypatch):
    import asyncio

    counting = CountingBucket(get_bucket())
    monkeypatch.setattr(ratelimit, "get_bucket", lambda: counting)
    rate, want = 1000, 300
    gate = TokenGate(key=env.key("gate"), rate=rate, timeout=10)
    stamps: list[tuple[float, int]] = []

    async def drain() -> None:
        left = want
        while left:
            granted = await gate(left)
            assert 1 <= granted <= left
            stamps.append((time.monotonic(), granted))
            left -= granted

    began = time.monotonic()
    asyncio.run(drain())
    assert gate.taken == want
    # The first grant is the bucket's burst; after it, no span of the run handed out more than
    # the rate allows (plus one burst), so posts made at once keep the bucket's pace.
    assert stamps[0][1] == bucket_capacity(rate)
    for i, (t_i, _) in enumerate(stamps):
        for t_j, _ in stamps[i:]:
            handed = sum(n for t, n in stamps if t_i <= t <= t_j)
            assert handed <= rate * (t_j - t_i) + 2 * bucket_capacity(rate) + 1
    assert time.monotonic() - began >= (want - bucket_capacity(rate)) / rate - 0.001
    assert counting.calls <= 100, counting.calls  # it slept between takes (a token a call would be ~280)


def test_a_gate_grants_nothing_once_its_timeout_has_passed(env):
    import asyncio

    gate = TokenGate(key=env.key("gate-timeout"), rate=10, timeout=0.25)  # capacity 1

    async def drain() -> list[int]:
        return [await gate(50) for _ in range(5)]

    began = time.monotonic()
    grants = asyncio.run(drain())
    assert grants[0] == 1 and grants[-1] == 0
    assert 1 <= sum(grants) <= 1 + math.floor(10 * (time.monotonic() - began))
    assert time.monotonic() - began >= 0.25


def test_acquire_rejects_a_negative_timeout(env):
    with pytest.raises(ValueError):
        acquire(key=env.key("negative"), rate=100, want=1, timeout=-1)


# --- Many processes on one key -------------------------------------------------------------


Take = tuple[float, float, int]  # wall clock before the call, after it, tokens granted


def _hammer(key: str, rate: float, want: int, start_at: float, stop_at: float, pause: bool, out) -> None:
    """Runs in a forked child: take from the shared bucket until ``stop_at``, sleeping the wait
    the bucket asks for (or not at all when ``pause`` is false), and report every granting
    take."""
    try:
        bucket = get_bucket()
        takes: list[Take] = []
        time.sleep(max(0.0, start_at - time.time()))
        while (before := time.time()) < stop_at:
            grant = bucket.take(key=key, rate=rate, want=want)
            after = time.time()
            if grant.granted:
                takes.append((before, after, grant.granted))
            if pause and grant.granted < want:
                time.sleep(grant.wait_seconds)
        out.put(("ok", takes))
    except BaseException:
        out.put(("error", traceback.format_exc()))
        raise


def run_hammer(key: str, *, rate: float = HAMMER_RATE, want: int = HAMMER_WANT,
               seconds: float = HAMMER_SECONDS, pause: bool = True) -> tuple[list[Take], float, float]:
    """Fork the processes (as Celery's prefork pool does) and collect their takes."""
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    start_at = time.time() + 0.5
    stop_at = start_at + seconds
    processes = [
        context.Process(target=_hammer, args=(key, rate, want, start_at, stop_at, pause, out))
        for _ in range(HAMMER_PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        results = [out.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
    takes: list[Take] = []
    for status, payload in results:
        if status != "ok":
            pytest.fail(f"a hammering process failed:\n{payload}")
        takes.extend(payload)
    assert [process.exitcode for process in processes] == [0] * HAMMER_PROCESSES
    return takes, start_at, stop_at


def worst_certain_window(takes: list[Take], width: float = 1.0) -> int:
    """The most tokens granted inside any ``width``-second window, counting only takes whose
    whole call (and so the bucket's decision) lay inside it. Grants whose call straddles a
    window edge might belong to either side and are left out; calls last well under a
    millisecond, so this misses almost nothing, while a process paused between the bucket's
    answer and its own clock reading cannot make a correct bucket look over budget."""
    ordered = sorted(takes)
    worst = 0
    for index, (window_start, _, _) in enumerate(ordered):
        window_end = window_start + width
        count = 0
        for before, after, granted in ordered[index:]:
            if before >= window_end:
                break
            if after < window_end:
                count += granted
        worst = max(worst, count)
    return worst


def worst_observed_window(takes: list[Take], width: float = 1.0) -> int:
    """The same, timing each grant by the moment its process saw it (for reports only)."""
    stamps = sorted(t for _, after, granted in takes for t in [after] * granted)
    worst, tail = 0, 0
    for head, stamp in enumerate(stamps):
        while stamps[tail] <= stamp - width:
            tail += 1
        worst = max(worst, head - tail + 1)
    return worst


def test_processes_sharing_a_key_stay_within_five_percent_and_use_the_budget(env):
    # The parent holds a live client (Redis) before forking: the children must not reuse it.
    get_bucket().take(key=env.key("warm-up"), rate=HAMMER_RATE, want=1)
    takes, start_at, stop_at = run_hammer(env.key("hammer"))

    total = sum(granted for _, _, granted in takes)
    budget = HAMMER_RATE * (stop_at - start_at)
    # Under demand the budget is used: the design asks for 0.95; 0.85 leaves room for a loaded
    # two-core machine running five processes and Redis.
    assert total >= 0.85 * budget, (total, budget)
    # Over the whole run nothing beyond the burst plus the refill.
    span = max(after for _, after, _ in takes) - min(before for before, _, _ in takes)
    assert total <= bucket_capacity(HAMMER_RATE) + math.floor(HAMMER_RATE * span)
    # The invariant: no one-second window more than 5 % over budget.
    worst = worst_certain_window(takes)
    assert worst <= HAMMER_RATE * 1.05, worst


def test_processes_racing_without_pause_never_overdraw(env):
    """Four processes call take() back to back on a 20/s bucket (one token of capacity): every
    read-modify-write must be atomic, or two of them spend the same token."""
    rate = 20
    takes, _, _ = run_hammer(env.key("race"), rate=rate, want=1, seconds=0.5, pause=False)
    total = sum(granted for _, _, granted in takes)
    span = max(after for _, after, _ in takes) - min(before for before, _, _ in takes)
    assert 1 <= total <= bucket_capacity(rate) + math.floor(rate * span), (total, span)


# --- Redis specifics -----------------------------------------------------------------------


def test_redis_state_is_an_expiring_hash_timed_by_the_server(redis_env):
    key, rate = redis_env.key("state"), 1000
    get_bucket().take(key=key, rate=rate, want=3)
    client = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        state = client.hgetall(ratelimit.REDIS_KEY_PREFIX + key)
        seconds, micros = client.time()
        ttl_ms = client.pttl(ratelimit.REDIS_KEY_PREFIX + key)
    finally:
        client.close()
    assert set(state) == {b"tokens", b"ts"}
    assert float(state[b"tokens"]) == pytest.approx(bucket_capacity(rate) - 3, abs=1)
    server_now_us = seconds * 1_000_000 + micros
    assert 0 <= server_now_us - int(state[b"ts"]) < 5_000_000
    # Gone a second after it would have refilled (50 ms at 1000/s).
    assert 0 < ttl_ms <= 1050


def _report_handle(parent: ratelimit._RedisHandle, key: str, out) -> None:
    try:
        handle = ratelimit._redis()
        grant = RedisTokenBucket().take(key=key, rate=100, want=1)
        out.put(("ok", (handle is not parent, handle.pid == os.getpid(), grant.granted)))
    except BaseException:
        out.put(("error", traceback.format_exc()))
        raise


def test_redis_client_is_rebuilt_in_a_forked_child(redis_env):
    RedisTokenBucket().take(key=redis_env.key("parent"), rate=100, want=1)
    parent = ratelimit._redis()
    assert parent.pid == os.getpid()
    assert ratelimit._redis() is parent  # one client per process, reused

    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_report_handle, args=(parent, redis_env.key("child"), out))
    child.start()
    status, payload = out.get(timeout=30)
    child.join(timeout=10)
    assert status == "ok", payload
    assert payload == (True, True, 1)
    assert child.exitcode == 0
    assert ratelimit._redis() is parent  # the parent's client is untouched


def test_file_buckets_live_under_var_dir(file_env, tmp_path):
    FileTokenBucket().take(key=file_env.key("odd/../key name"), rate=10, want=1)
    files = list((tmp_path / ratelimit.FILE_DIR_NAME).iterdir())
    assert len(files) == 1
    assert files[0].stat().st_size == 16
