"""Processes and environment for the benchmarks.

Chooses the database and broker (PostgreSQL and Redis when they answer on 127.0.0.1, else
SQLite and the filesystem broker under ``var/bench/``), prepares a fresh database, and starts
the web server (granian, or gunicorn for a comparison), Celery workers, the Cloud API emulator
and load generators as subprocesses. Every subprocess runs in its own session (process group):
Ctrl-C in the terminal reaches only the bench, which then stops each group it started --
SIGTERM, then SIGKILL -- on the way out.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import BenchmarkBroken

ROOT = Path(__file__).resolve().parent.parent
# PARLEY_BENCH_DIR, PARLEY_BENCH_DATABASE and PARLEY_BENCH_REDIS_DBS ("broker,cache") let two
# runs share one machine without dropping each other's database or folders.
BENCH_DIR = Path(os.environ.get("PARLEY_BENCH_DIR") or ROOT / "var" / "bench")
RUN_DIR = BENCH_DIR / "run"  # PARLEY_VAR_DIR of every process: nothing collides with `make run`
LOG_DIR = BENCH_DIR / "logs"
HOST = "127.0.0.1"
POSTGRES_PORT = 5432
REDIS_PORT = 6379
POSTGRES_ADMIN_URL = f"postgresql://postgres@{HOST}:{POSTGRES_PORT}/postgres"
DATABASE_NAME = os.environ.get("PARLEY_BENCH_DATABASE") or "parley_bench"
BROKER_REDIS_DB, CACHE_REDIS_DB = (int(n) for n in (os.environ.get("PARLEY_BENCH_REDIS_DBS") or "2,3").split(","))
# Environment variables of the caller that must not leak into the benchmark's processes.
SCRUBBED = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "CELERY_TASK_ALWAYS_EAGER", "DJANGO_SETTINGS_MODULE",
            "PARLEY_VAR_DIR", "DEBUG", "PARLEY_REAL_BACKENDS")
STOP_TIMEOUT = 15.0
WEB_SERVERS = ("granian", "gunicorn")


def web_layout(params: dict[str, Any], pid: int) -> str:
    """How a benchmark's ``web_server``, ``web_workers`` and ``web_threads`` ran, for its result."""
    workers, threads = params["web_workers"], params["web_threads"]
    if params["web_server"] == "granian":
        return f"granian (WSGI), {workers} workers x {threads} threads, pid {pid}"
    return f"gunicorn, {workers} gthread workers x {threads} threads (--preload, keep-alive 5 s), pid {pid}"


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    with socket.socket() as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Environment:
    """What every process of the run shares: the database, the broker, the settings."""

    database: str  # "postgresql" | "sqlite"
    broker: str  # "redis" | "filesystem"
    database_url: str
    broker_url: str
    redis_url: str
    env: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, str]:
        database = (f"PostgreSQL {HOST}:{POSTGRES_PORT}/{DATABASE_NAME}" if self.database == "postgresql"
                    else f"SQLite {self.database_url.removeprefix('sqlite:///')}")
        broker = (f"Redis {HOST}:{REDIS_PORT} db {BROKER_REDIS_DB} (REDIS_URL db {CACHE_REDIS_DB})"
                  if self.broker == "redis" else f"filesystem broker under {RUN_DIR / 'broker'}")
        return {"database": database, "broker": broker, "settings": "config.settings.local, DEBUG=0"}


def select_environment(*, database: str = "auto", broker: str = "auto") -> Environment:
    if database == "auto":
        database = "postgresql" if port_open(POSTGRES_PORT) else "sqlite"
    if broker == "auto":
        broker = "redis" if port_open(REDIS_PORT) else "filesystem"
    if database == "postgresql":
        database_url = f"postgres://postgres@{HOST}:{POSTGRES_PORT}/{DATABASE_NAME}"
    elif database == "sqlite":
        database_url = f"sqlite:///{RUN_DIR / 'parley.sqlite3'}"
    else:
        raise ValueError(f"unknown database {database!r}")
    if broker == "redis":
        broker_url, redis_url = f"redis://{HOST}:{REDIS_PORT}/{BROKER_REDIS_DB}", f"redis://{HOST}:{REDIS_PORT}/{CACHE_REDIS_DB}"
    elif broker == "filesystem":
        broker_url, redis_url = "filesystem://", ""
    else:
        raise ValueError(f"unknown broker {broker!r}")
    env = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "0",
        "ALLOWED_HOSTS": f"{HOST},localhost",
        "WEBHOOKS_ALLOW_PRIVATE_URLS": "1",
        "PARLEY_VAR_DIR": str(RUN_DIR),
        "PARLEY_BENCH_VIEWS": "1",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    if redis_url:
        env["REDIS_URL"] = redis_url
    return Environment(database=database, broker=broker, database_url=database_url, broker_url=broker_url,
                       redis_url=redis_url, env=env)


def reset_state(environment: Environment) -> None:
    """A fresh run directory, log directory, database and Redis databases."""
    for folder in (RUN_DIR, LOG_DIR):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    if environment.database == "postgresql":
        import psycopg

        try:
            admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            raise BenchmarkBroken(f"PostgreSQL answers on {HOST}:{POSTGRES_PORT} but {POSTGRES_ADMIN_URL} "
                                  f"cannot log in: {exc}") from exc
        with admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE_NAME} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {DATABASE_NAME}")
    if environment.broker == "redis":
        import redis

        for url in (environment.broker_url, environment.redis_url):
            client = redis.Redis.from_url(url, socket_connect_timeout=5)
            client.flushdb()
            client.close()


def migrate(environment: Environment) -> None:
    run_once("migrate", [sys.executable, "manage.py", "migrate", "--noinput"], environment.env, timeout=600)


def run_once(name: str, args: list[str], env: dict[str, str], *, timeout: float) -> None:
    """Run a command to completion in its own process group; raise with its log on failure."""
    process = Process(name, args, env).start()
    try:
        code = process.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.stop()
        raise BenchmarkBroken(f"{name} did not finish within {timeout:.0f} s:\n{process.tail()}") from None
    finally:
        process.stop()
    if code != 0:
        raise BenchmarkBroken(f"{name} exited with {code}:\n{process.tail()}")


@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    popen: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return LOG_DIR / f"{self.name}.log"

    def start(self) -> Process:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return  # the whole group is already gone

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after STOP_TIMEOUT; reaps the leader. Members
        that outlive the leader (prefork children) get the SIGKILL too."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(timeout=STOP_TIMEOUT)
        if group_members(self.pid):
            self._signal_group(signal.SIGKILL)

    def tail(self, chars: int = 3000) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-chars:]


def _proc_stats() -> Iterator[tuple[int, str, list[str]]]:
    """Every live process as (pid, command name, the /proc/<pid>/stat fields after the name)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited while we looked
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        yield int(entry.name), stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()


def group_members(pgid: int) -> list[int]:
    """The live processes of one process group (from /proc)."""
    return [pid for pid, _, fields in _proc_stats() if int(fields[2]) == pgid and fields[0] != "Z"]


def group_rss_mb(pgid: int) -> float:
    """Resident memory of a whole process group (a Celery worker and its pool), in MB."""
    total_kb = 0
    for pid in group_members(pgid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


# Servers the benchmarks use but do not start: their CPU time is the benchmark's, not foreign.
SERVICES = frozenset({"postgres", "redis-server"})
KTHREADD_PID = 2


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    busy: float  # seconds of busy CPU on the whole machine (/proc/stat)
    ours: float  # seconds of CPU used by this process and every descendant it has reaped
    services: float  # seconds of CPU used by PostgreSQL and Redis (with their reaped children)
    kernel: float  # seconds of interrupts, softirqs (loopback networking) and kernel threads (I/O)


def _proc_cpu(ticks: int) -> tuple[float, float]:
    """CPU seconds of the PostgreSQL and Redis processes, and of kernel threads, from /proc."""
    services = kernel = 0
    for pid, name, fields in _proc_stats():
        used = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        if name in SERVICES:
            services += used
        elif int(fields[1]) == KTHREADD_PID or pid == KTHREADD_PID:
            kernel += used
    return services / ticks, kernel / ticks


def cpu_snapshot() -> CpuSnapshot:
    ticks = os.sysconf("SC_CLK_TCK")
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    busy = (sum(values[:8]) - idle) / ticks  # user..steal; guest time is already counted in user
    interrupts = (values[5] + values[6]) / ticks  # irq + softirq: charged to no process
    services, kernel_threads = _proc_cpu(ticks)
    times = os.times()
    return CpuSnapshot(wall=time.monotonic(), busy=busy, services=services, kernel=interrupts + kernel_threads,
                       ours=times.user + times.system + times.children_user + times.children_system)


def cpu_shares(before: CpuSnapshot) -> dict[str, float]:
    """Where the machine's CPU went since ``before``, as shares of its capacity: the bench's own
    processes, PostgreSQL + Redis, the kernel (interrupts, loopback networking, I/O threads) and
    everything else ("foreign": other people's work). Valid once the benchmark's processes are
    stopped and reaped (their CPU time then counts as ours). A foreign share above a few percent
    means something else ran and the figures are low."""
    after = cpu_snapshot()
    capacity = (after.wall - before.wall) * (os.cpu_count() or 1)
    if capacity <= 0:
        return {"bench": 0.0, "services": 0.0, "kernel": 0.0, "foreign": 0.0, "idle": 1.0}
    shares = {"bench": (after.ours - before.ours) / capacity,
              "services": (after.services - before.services) / capacity,
              "kernel": (after.kernel - before.kernel) / capacity}
    busy = (after.busy - before.busy) / capacity
    shares["foreign"] = max(0.0, busy - sum(shares.values()))
    shares["idle"] = max(0.0, 1.0 - busy)
    return {key: round(value, 3) for key, value in shares.items()}


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds used so far by a process group (members alive now, with the children they
    have reaped): sample before and after a phase, the difference is what the phase cost."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in group_members(pgid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / ticks


def services_cpu_seconds() -> float:
    """CPU seconds used so far by PostgreSQL and Redis."""
    return _proc_cpu(os.sysconf("SC_CLK_TCK"))[0]


class Processes:
    """The processes of one benchmark; all stopped when the ``with`` block ends, however it ends."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.started: list[Process] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop_all()

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()
        self.started.clear()

    def start(self, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> Process:
        env = {**self.environment.env, **(extra_env or {})}
        process = Process(name, args, env).start()
        self.started.append(process)
        return process

    def check_alive(self) -> None:
        for process in self.started:
            if not process.alive():
                raise BenchmarkBroken(f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}")

    def cpu_sample(self) -> dict[str, float]:
        """CPU seconds used so far by each running process group, by PostgreSQL + Redis, and by
        this process with the one-shot children it has reaped (the load generators)."""
        sample = {process.name: group_cpu_seconds(process.pid) for process in self.started if process.alive()}
        sample["postgres+redis"] = services_cpu_seconds()
        times = os.times()
        sample["bench + load generators"] = times.user + times.system + times.children_user + times.children_system
        sample["_wall"] = time.monotonic()
        return sample

    @staticmethod
    def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
        """Where the CPU went between two samples: seconds and cores (seconds per wall second)."""
        wall = after["_wall"] - before["_wall"]
        used: dict[str, Any] = {"wall_s": round(wall, 2)}
        for name, start in before.items():
            if name != "_wall" and name in after:
                seconds = after[name] - start
                used[name] = {"cpu_s": round(seconds, 2), "cores": round(seconds / wall, 2) if wall > 0 else None}
        return used

    # -- the processes the benchmarks use ----------------------------------------------------

    def web(self, *, port: int, params: dict[str, Any]) -> Process:
        """Parley's WSGI application served as a benchmark's ``params`` say: ``web_server``
        "granian" (as the Procfile serves it, less its access log, whose cost measured nothing
        beside the machine's noise, and only HTTP/1.1) or "gunicorn" (gthread workers, the
        application loaded once before the fork), ``web_workers`` processes of ``web_threads``
        threads."""
        server, workers, threads = params["web_server"], params["web_workers"], params["web_threads"]
        if server not in WEB_SERVERS:
            raise BenchmarkBroken(f"unknown web server {server!r}: one of {', '.join(WEB_SERVERS)}")
        if server == "granian":
            args = [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", HOST, "--port", str(port),
                    "--workers", str(workers), "--blocking-threads", str(threads), "--http", "1", "--no-ws",
                    "--backlog", "2048", "--log-level", "warning", "config.wsgi:application"]
        else:
            args = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"{HOST}:{port}", "--workers",
                    str(workers), "--worker-class", "gthread", "--threads", str(threads), "--backlog", "2048",
                    "--keep-alive", "5", "--log-level", "warning", "--preload"]
        process = self.start("web", args)
        self.wait_for_http(f"http://{HOST}:{port}/_bench/bare/", process)
        return process

    def celery_worker(self, *, name: str, queues: str, concurrency: int, nice: int = 0) -> Process:
        ready = RUN_DIR / f"{name}.ready"
        ready.unlink(missing_ok=True)
        process = self.start(name, [
            sys.executable, "-m", "bench.worker", str(ready), *(["--nice", str(nice)] if nice else []),
            "--", "-Q", queues, "--concurrency", str(concurrency),
            "--pool", "prefork", "--loglevel", "WARNING", "--without-heartbeat", "--without-gossip", "--without-mingle",
            "--hostname", f"bench-{name}@%h",
        ])
        self.wait_until(ready.exists, timeout=60, what=f"{name} to be ready")
        return process

    def emulator(self, *, port: int, args: list[str]) -> Process:
        process = self.start("emulator", [sys.executable, "manage.py", "cloudapi_emulator", "--host", HOST,
                                          "--port", str(port), *args])
        self.wait_for_http(f"http://{HOST}:{port}/_emulator/stats?summary=1", process)
        return process

    # -- waiting -----------------------------------------------------------------------------

    def wait_until(self, check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.05) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            self.check_alive()
            if time.monotonic() >= deadline:
                raise BenchmarkBroken(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)

    def wait_for_http(self, url: str, process: Process, timeout: float = 60) -> None:
        def answers() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return response.status == 200
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False  # not listening yet; check_alive() catches a process that died

        self.wait_until(answers, timeout=timeout, what=f"{process.name} to answer {url}", interval=0.1)


@dataclass
class Context:
    """What a benchmark gets: the environment, whether this is a quick run, where to write."""

    environment: Environment
    quick: bool

    @contextmanager
    def processes(self) -> Iterator[Processes]:
        with Processes(self.environment) as processes:
            yield processes

    @property
    def cpus(self) -> int:
        return os.cpu_count() or 1
