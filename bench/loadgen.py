"""An HTTP load generator, closed or open loop, run in its own process so that it never shares an
interpreter (or a GIL) with what it measures.

``python -m bench.loadgen SPEC.json RESULT.json``: ``concurrency`` keep-alive connections POST the
spec's bodies to ``url`` -- request i sends body i modulo the number of bodies -- until
``requests`` have been answered or ``time_limit`` seconds have passed. With a ``rate`` (requests
per second) the load is open-loop instead: request i is due at ``i / rate`` seconds after the
start, whatever the answers before it, and its latency counts from when it was due (so a server
that falls behind is charged for the queue it causes); ``concurrency`` caps the connections. The
result has the
status codes (per request too, when asked), latency percentiles, and wall-clock times of the
first request and the last answer.

The client is a minimal HTTP/1.1 one on asyncio's protocols: every request's bytes are built
before the clock starts, and an answer is read by its ``Content-Length`` (or its chunks). The
load generator shares the benchmark's two cores with the server it measures, so what it spends
per request is taken from the server: aiohttp's client spent about 0.4 ms of CPU per request,
this one about 0.15 ms.

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
from urllib.parse import urlsplit

REQUEST_TIMEOUT = 30.0
_HEADER_END = b"\r\n\r\n"


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.1 this client can read."""


def request_bytes(*, host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One keep-alive POST, ready for the wire."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()
              if name.lower() not in ("host", "content-length", "connection")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Answer:
    """Reads one HTTP/1.1 response from the bytes a connection receives."""

    __slots__ = ("status", "close", "_length", "_chunked", "_body_start")

    def __init__(self) -> None:
        self.status = 0
        self.close = False
        self._length = -1
        self._chunked = False
        self._body_start = -1

    def complete(self, buffer: bytearray) -> int:
        """How many bytes of ``buffer`` the whole response takes, or 0 while it is incomplete."""
        if self._body_start < 0:
            end = buffer.find(_HEADER_END)
            if end < 0:
                return 0
            head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
            parts = head[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise ProtocolError(f"not an HTTP/1.x status line: {head[0][:100]!r}")
            self.status = int(parts[1])
            self.close = parts[0] == "HTTP/1.0"
            for line in head[1:]:
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    self._length = int(value)
                elif name == "transfer-encoding":
                    self._chunked = "chunked" in value
                elif name == "connection":
                    self.close = value == "close"
            self._body_start = end + len(_HEADER_END)
            if not self._chunked and self._length < 0:
                if self.status in (204, 304) or 100 <= self.status < 200:
                    self._length = 0
                else:
                    raise ProtocolError("an answer without Content-Length or chunks")
        if not self._chunked:
            total = self._body_start + self._length
            return total if len(buffer) >= total else 0
        position = self._body_start
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return 0
            size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
            if size == 0:  # the last chunk: the answer ends after the (possibly empty) trailers
                end = buffer.find(_HEADER_END, line_end)
                return end + len(_HEADER_END) if end >= 0 else 0
            position = line_end + 2 + size + 2
            if len(buffer) < position:
                return 0


class _Connection(asyncio.Protocol):
    """One keep-alive connection: a request at a time, its answer's status."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: _Answer | None = None
        self.waiter: asyncio.Future[int] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.answer is None or self.waiter is None or self.waiter.done():
            return
        try:
            used = self.answer.complete(self.buffer)
        except (ProtocolError, ValueError) as exc:
            self.waiter.set_exception(ProtocolError(str(exc)))
            return
        if used:
            del self.buffer[:used]
            self.waiter.set_result(self.answer.status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("the server closed the connection"))

    def send(self, request: bytes) -> asyncio.Future[int]:
        self.answer = _Answer()
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)  # type: ignore[union-attr]
        return self.waiter

    @property
    def reusable(self) -> bool:
        return not self.lost and self.answer is not None and not self.answer.close and not self.buffer

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    url = urlsplit(spec["url"])
    host, port = url.hostname or "127.0.0.1", url.port or 80
    path = url.path + (f"?{url.query}" if url.query else "")
    raw = json.loads(Path(spec["bodies"]).read_text())
    requests_ = [request_bytes(host=host, port=port, path=path, body=body.encode(), headers=headers)
                 for body, headers in raw]
    total = int(spec["requests"])
    concurrency = int(spec["concurrency"])
    time_limit = float(spec["time_limit"])
    rate = float(spec.get("rate") or 0)
    codes = [0] * total
    latencies = [math.nan] * total
    errors: Counter[str] = Counter()
    issued = 0
    loop = asyncio.get_running_loop()
    started_wall = time.time()
    started = time.perf_counter()
    deadline = started + time_limit
    last_end = started

    async def worker() -> None:
        nonlocal issued, last_end
        connection: _Connection | None = None
        while issued < total and time.perf_counter() < deadline:
            index = issued
            issued += 1
            request = requests_[index % len(requests_)]
            t0 = time.perf_counter()
            if rate:
                due = started + index / rate
                if due > t0:
                    await asyncio.sleep(due - t0)
                t0 = due
            try:
                if connection is None or not connection.reusable:
                    if connection is not None:
                        connection.close()
                    connection = None
                    _, connection = await asyncio.wait_for(
                        loop.create_connection(_Connection, host, port), REQUEST_TIMEOUT)
                codes[index] = await asyncio.wait_for(connection.send(request), REQUEST_TIMEOUT)
            except (TimeoutError, OSError, ProtocolError) as exc:
                codes[index] = -1  # counted as a non-200 answer, with its kind in "errors"
                errors[type(exc).__name__] += 1
                if connection is not None:
                    connection.close()
                    connection = None
            end = time.perf_counter()
            latencies[index] = end - t0
            last_end = max(last_end, end)
        if connection is not None:
            connection.close()

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
