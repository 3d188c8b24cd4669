"""The per-number send budget: one token bucket per phone number, shared by every worker process.

A phone number may send ``messages_per_second`` messages (1..1000). Every process that sends for
the number takes tokens from the same bucket first, so the budget holds however many Celery
workers (on however many machines) share the work.

Why the bucket is small
-----------------------
A token bucket of capacity ``C`` refilled at ``rate`` tokens/s can grant at most
``C + rate * T`` tokens in any window of ``T`` seconds. The target is "never more than 5 % over
budget in any one-second window" *as the provider receives the messages*, so ``C`` must be well
under 5 % of the rate: between taking a token and the provider receiving the message there is
jitter (a connection coming free, a process scheduled late on either side) that moves a few
messages into a neighbouring window. ``capacity = max(1, ceil(rate * 0.02))``, i.e. 20 ms of
budget, leaves the other 3 % for that jitter. A capacity of a full second (the usual choice)
would let an idle number burst a whole second's budget and then send a second's worth of refill
in the same window: twice the budget. Below 50/s the capacity is one token, so the bound there
is ``rate + 1`` per second (one message cannot be split).

The other half of the target, reaching at least 0.95 of the budget under demand, only needs the
callers to come back before the bucket overflows (tokens beyond the capacity are lost): a caller
sleeps at most until half the bucket has refilled (:func:`acquire`, :class:`TokenGate`).

Two implementations
-------------------
* :class:`RedisTokenBucket` (production, ``REDIS_URL`` set): one Lua script, atomic on the Redis
  server, timed by the server's ``TIME`` so workers on several machines agree whatever their own
  clocks say. The state is a hash ``parley:bucket:<key>`` ``{tokens, ts}`` that expires once the
  bucket would have refilled, so idle numbers leave nothing behind. One key per call, so it also
  works on Redis Cluster.
* :class:`FileTokenBucket` (the embedded default): the single-machine fallback. A 16-byte file
  per key under ``VAR_DIR/ratelimit``, read and written under an exclusive ``flock`` and timed by
  the local wall clock; correct across the processes and threads of one machine, and only there.
  Production sets ``REDIS_URL`` (design: nothing may depend on one machine's local files).

A missing bucket is a full bucket in both, which is what makes expiring idle state safe.

Meta's per-recipient pair limit (error 131056: too many messages to the same user in a short
time) is a different limit with a different cure: :func:`pair_backoff_seconds`.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import math
import os
import re
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import redis
from django.conf import settings
from redis.commands.core import Script

BURST_PER_MILLE = 15
REDIS_KEY_PREFIX = "parley:bucket:"
FILE_DIR_NAME = "ratelimit"

# acquire() never sleeps longer than this in one go, so a caller with a long wait (a slow number)
# still re-checks its deadline often.
MAX_SLEEP_SLICE = 0.1

PAIR_BACKOFF_BASE = 4
PAIR_BACKOFF_MAX_ATTEMPT = 5

_STATE = struct.Struct("<dd")  # tokens, ts (seconds since the epoch)
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class Grant:
    """``granted`` tokens (0..want) were taken; ``wait_seconds`` until the next token would be
    available (0.0 when everything asked for was granted)."""

    granted: int
    wait_seconds: float


class TokenBucket(Protocol):
    def take(self, *, key: str, rate: float, want: int) -> Grant:
        """Take up to ``want`` tokens from ``key``'s bucket (refilled at ``rate``/s) without
        waiting."""
        ...


def bucket_capacity(rate: float) -> int:
    """The burst a bucket refilled at ``rate`` tokens/s may hold: 1.5 % of a second, at least 1."""
    _check_rate(rate)
    # rate * 15 / 1000 rather than rate * 0.015: the integer arithmetic stays exact for whole
    # rates (0.015 is not exact in binary).
    return max(1, math.ceil(rate * BURST_PER_MILLE / 1000))


def _check_rate(rate: float) -> None:
    if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a positive number of tokens per second, not {rate!r}")


def _check_request(key: str, rate: float, want: int) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError("a token bucket needs a non-empty key")
    _check_rate(rate)
    if not isinstance(want, int) or want < 0:
        raise ValueError(f"want must be a non-negative integer, not {want!r}")


def _refill_and_take(tokens: float, ts: float, now: float, rate: float, capacity: int,
                     want: int) -> tuple[int, float, float]:
    """The bucket arithmetic, shared by the file bucket (the Lua script mirrors it).

    Returns (granted, tokens left, wait seconds). A clock that stepped backwards refills
    nothing, and the new reading becomes the reference, so the bucket never freezes.
    """
    if now > ts:
        tokens += (now - ts) * rate
    tokens = min(tokens, float(capacity))
    granted = min(want, math.floor(tokens))
    tokens -= granted
    # Whole microseconds, rounded up like the Lua script's, so sleeping the wait always finds the
    # next token there.
    wait = 0.0 if granted == want else math.ceil((1.0 - tokens) * 1_000_000 / rate) / 1_000_000
    return granted, tokens, wait


# --- Redis ---------------------------------------------------------------------------------

# KEYS[1] the bucket's hash; ARGV: rate (tokens/s), capacity, want, ttl (ms).
# Returns {granted, wait in microseconds}. The server's clock times everything; ts is kept in
# whole microseconds and formatted explicitly, because Lua's default number-to-string conversion
# keeps only 14 significant digits.
_TAKE_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local ttl_ms = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = tokens + (now - ts) * rate / 1000000
end
if tokens > capacity then
  tokens = capacity
end
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
local wait_us = 0
if granted < want then
  wait_us = math.ceil((1 - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], ttl_ms)
return {granted, wait_us}
"""


@dataclass(frozen=True, slots=True)
class _RedisHandle:
    pid: int
    url: str
    client: redis.Redis
    take_script: Script


# The only module-level mutable state: this process's client (one connection pool) and its
# registered script. Replaced when the process is a fork of the one that made it (Celery
# prefork), because a pool's sockets must not be shared between processes, and when REDIS_URL
# changes. Swapping a reference is atomic; two threads racing here build two handles and one
# is dropped before it has opened a connection, so no lock is needed (and none can be inherited
# locked by a fork).
_redis_handle: _RedisHandle | None = None


def _redis() -> _RedisHandle:
    global _redis_handle
    url = settings.REDIS_URL
    if not url:
        raise RuntimeError("RedisTokenBucket needs settings.REDIS_URL")
    handle = _redis_handle
    pid = os.getpid()
    if handle is None or handle.pid != pid or handle.url != url:
        # Query parameters in the URL override these defaults.
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        handle = _RedisHandle(pid=pid, url=url, client=client, take_script=client.register_script(_TAKE_LUA))
        _redis_handle = handle
    return handle


class RedisTokenBucket:
    """Buckets in Redis (``settings.REDIS_URL``), shared by every process on every machine."""

    def take(self, *, key: str, rate: float, want: int) -> Grant:
        _check_request(key, rate, want)
        if want == 0:
            return Grant(granted=0, wait_seconds=0.0)
        capacity = bucket_capacity(rate)
        # Keep the hash until the bucket would be full again (absent == full), plus a second.
        ttl_ms = math.ceil(capacity / rate * 1000) + 1000
        handle = _redis()
        granted, wait_us = handle.take_script(
            keys=[REDIS_KEY_PREFIX + key], args=[repr(float(rate)), capacity, want, ttl_ms],
            client=handle.client,
        )
        return Grant(granted=int(granted), wait_seconds=int(wait_us) / 1_000_000)


# --- Files (single machine) ----------------------------------------------------------------


def _bucket_path(directory: Path, key: str) -> Path:
    readable = _UNSAFE_FILENAME_CHARS.sub("_", key)[:64]
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return directory / f"{readable}-{digest}.bucket"


class FileTokenBucket:
    """Buckets in files under ``settings.VAR_DIR / "ratelimit"``: the single-machine fallback.

    Every take opens the key's file, locks it exclusively with ``flock`` (each open is its own
    lock, so threads of one process exclude each other too), reads, computes and writes back.
    One 16-byte file per key stays behind; there is one key per phone number.
    """

    def take(self, *, key: str, rate: float, want: int) -> Grant:
        _check_request(key, rate, want)
        if want == 0:
            return Grant(granted=0, wait_seconds=0.0)
        capacity = bucket_capacity(rate)
        directory = Path(settings.VAR_DIR) / FILE_DIR_NAME
        path = _bucket_path(directory, key)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            now = time.time()
            raw = os.pread(fd, _STATE.size, 0)
            if len(raw) == _STATE.size:
                tokens, ts = _STATE.unpack(raw)
            else:
                tokens, ts = float(capacity), now  # a new bucket is full
            if not (math.isfinite(tokens) and math.isfinite(ts)):
                tokens, ts = float(capacity), now
            granted, tokens, wait = _refill_and_take(tokens, ts, now, rate, capacity, want)
            os.pwrite(fd, _STATE.pack(tokens, now), 0)
        finally:
            os.close(fd)  # releases the lock
        return Grant(granted=granted, wait_seconds=wait)


# --- Helpers -------------------------------------------------------------------------------


def get_bucket() -> TokenBucket:
    """Redis when ``settings.REDIS_URL`` is set, else the single-machine file bucket."""
    if settings.REDIS_URL:
        return RedisTokenBucket()
    return FileTokenBucket()


def acquire(*, key: str, rate: float, want: int, timeout: float) -> int:
    """Block until ``want`` tokens are taken from ``key``'s bucket or ``timeout`` seconds pass;
    return how many were taken (send that many, give the rest back to the queue).

    A sender that claimed 200 rows of a 1,000/s number gets the 20 in the bucket at once and the
    rest over the next ~180 ms. Between takes it sleeps until the tokens it still needs (at most
    half a bucket, so that a late wake-up loses nothing to overflow) should have refilled, never
    more than :data:`MAX_SLEEP_SLICE` at a time and never past the deadline.
    """
    _check_request(key, rate, want)
    if not (isinstance(timeout, int | float) and timeout >= 0):
        raise ValueError(f"timeout must be a non-negative number of seconds, not {timeout!r}")
    deadline = time.monotonic() + timeout
    bucket = get_bucket()
    batch_cap = max(1, bucket_capacity(rate) // 2)
    got = 0
    while got < want:
        grant = bucket.take(key=key, rate=rate, want=want - got)
        got += grant.granted
        if got >= want:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        batch = min(want - got, batch_cap)
        nap = grant.wait_seconds + (batch - 1) / rate
        time.sleep(min(nap, remaining, MAX_SLEEP_SLICE))
    return got


class TokenGate:
    """Tokens handed out as a batch is posted: ``await gate(n)`` takes up to ``n`` tokens from
    ``key``'s bucket as soon as there are any, so each message can go out the moment its token
    is taken, and the provider sees exactly the bucket's pace. Returns 0 once ``timeout``
    seconds have passed since the gate was made without a token (the rest is not sent).

    Sleeps between takes as :func:`acquire` does, on the event loop, so posts already started
    go on meanwhile."""

    def __init__(self, *, key: str, rate: float, timeout: float) -> None:
        _check_request(key, rate, 1)
        self.key, self.rate = key, rate
        self.deadline = time.monotonic() + timeout
        self.bucket = get_bucket()
        self.batch_cap = max(1, bucket_capacity(rate) // 2)
        self.taken = 0

    async def __call__(self, want: int) -> int:
        while True:
            grant = self.bucket.take(key=self.key, rate=self.rate, want=want)
            if grant.granted:
                self.taken += grant.granted
                return grant.granted
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                return 0
            nap = grant.wait_seconds + (min(want, self.batch_cap) - 1) / self.rate
            await asyncio.sleep(min(nap, remaining, MAX_SLEEP_SLICE))


def pair_backoff_seconds(attempt: int) -> float:
    """How long to wait before retrying the same recipient after Meta's error 131056 (pair rate
    limit): Meta asks for 4^X seconds, X counting failed attempts from 0, here capped at 4^5 s."""
    if not isinstance(attempt, int) or attempt < 0:
        raise ValueError(f"attempt must be a non-negative integer, not {attempt!r}")
    return float(PAIR_BACKOFF_BASE ** min(attempt, PAIR_BACKOFF_MAX_ATTEMPT))
