"""A closed-loop HTTP load generator, run in its own process so that it never shares an
interpreter (or a GIL) with what it measures.

``python -m bench.loadgen SPEC.json RESULT.json``: ``concurrency`` aiohttp connections POST the
spec's bodies to ``url`` -- request i sends body i modulo the number of bodies -- until
``requests`` have been answered or ``time_limit`` seconds have passed. With a ``rate`` (requests
per second) the load is open-loop instead: request i is due at ``i / rate`` seconds after the
start, whatever the answers before it, and its latency counts from when it was due (so a server
that falls behind is charged for the queue it causes); ``concurrency`` caps the connections. The
result has the
status codes (per request too, when asked), latency percentiles, and wall-clock times of the
first request and the last answer.

The spec's ``bodies`` file is JSON: ``[[body text, {header: value}], ...]``. This module does not
import Django: the parent side is :func:`run_load`.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

REQUEST_TIMEOUT = 30.0


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    raw = json.loads(Path(spec["bodies"]).read_text())
    bodies = [(body.encode(), headers) for body, headers in raw]
    total = int(spec["requests"])
    concurrency = int(spec["concurrency"])
    time_limit = float(spec["time_limit"])
    rate = float(spec.get("rate") or 0)
    codes = [0] * total
    latencies = [math.nan] * total
    errors: Counter[str] = Counter()
    issued = 0
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started_wall = time.time()
        started = time.perf_counter()
        deadline = started + time_limit
        last_end = started

        async def worker() -> None:
            nonlocal issued, last_end
            while issued < total and time.perf_counter() < deadline:
                index = issued
                issued += 1
                body, headers = bodies[index % len(bodies)]
                t0 = time.perf_counter()
                if rate:
                    due = started + index / rate
                    if due > t0:
                        await asyncio.sleep(due - t0)
                    t0 = due
                try:
                    async with session.post(spec["url"], data=body, headers=headers) as response:
                        await response.read()
                        codes[index] = response.status
                except (TimeoutError, aiohttp.ClientError) as exc:
                    codes[index] = -1  # counted as a non-200 answer, with its kind in "errors"
                    errors[type(exc).__name__] += 1
                end = time.perf_counter()
                latencies[index] = end - t0
                last_end = max(last_end, end)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    done = [latency for latency in latencies[:issued]]
    done.sort()
    elapsed = last_end - started
    status_counts = Counter(codes[:issued])
    result = {
        "url": spec["url"],
        "concurrency": concurrency,
        "offered_rate": rate or None,
        "requested": total,
        "completed": issued,
        "timed_out": issued < total,
        "first_request_at": started_wall,
        "last_answer_at": started_wall + elapsed,
        "elapsed_s": elapsed,
        "requests_per_s": issued / elapsed if elapsed > 0 else math.nan,
        "status_counts": {str(code): count for code, count in sorted(status_counts.items())},
        "non_200": issued - status_counts.get(200, 0),
        "errors": dict(errors),
        "p50_ms": percentile(done, 0.50) * 1000,
        "p90_ms": percentile(done, 0.90) * 1000,
        "p99_ms": percentile(done, 0.99) * 1000,
        "max_ms": (done[-1] if done else math.nan) * 1000,
    }
    if spec.get("per_request_codes"):
        result["codes"] = codes[:issued]
    return result


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python -m bench.loadgen SPEC.json RESULT.json")
    spec = json.loads(Path(argv[0]).read_text())
    result = asyncio.run(_load(spec))
    Path(argv[1]).write_text(json.dumps(result))


# --- the parent's side --------------------------------------------------------------------


@dataclass
class Load:
    """What one load run measured (see :func:`_load` for the keys of ``raw``)."""

    raw: dict[str, Any]

    @property
    def rps(self) -> float:
        return self.raw["requests_per_s"]

    @property
    def p50_ms(self) -> float:
        return self.raw["p50_ms"]

    @property
    def p99_ms(self) -> float:
        return self.raw["p99_ms"]

    @property
    def non_200(self) -> int:
        return self.raw["non_200"]

    def summary(self) -> dict[str, Any]:
        return {key: value for key, value in self.raw.items() if key != "codes"}


def write_bodies(path: Path, bodies: list[tuple[bytes, dict[str, str]]]) -> Path:
    path.write_text(json.dumps([[body.decode(), headers] for body, headers in bodies]))
    return path


def run_load(*, name: str, url: str, bodies: Path, requests: int, concurrency: int, time_limit: float,
             environment_env: dict[str, str], per_request_codes: bool = False, rate: float = 0) -> Load:
    """Run the load generator as a subprocess and return what it measured."""
    from .procs import RUN_DIR, run_once

    spec_path = RUN_DIR / f"load-{name}.spec.json"
    result_path = RUN_DIR / f"load-{name}.result.json"
    result_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps({"url": url, "bodies": str(bodies), "requests": requests,
                                     "concurrency": concurrency, "time_limit": time_limit,
                                     "per_request_codes": per_request_codes, "rate": rate}))
    run_once(f"load-{name}", [sys.executable, "-m", "bench.loadgen", str(spec_path), str(result_path)],
             environment_env, timeout=time_limit + 60)
    return Load(json.loads(result_path.read_text()))


if __name__ == "__main__":
    main(sys.argv[1:])
