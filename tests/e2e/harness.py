"""Real processes for end-to-end tests: Celery workers and the Cloud API emulator run as
subprocesses against the test database and the configured broker, the web app is pytest-django's
live server, and a small HTTP receiver stands in for a tenant's webhook endpoint."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
QUEUES = "sending,webhooks,events,default"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def wait_until(check: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.1, what: str = "",
               describe: Callable[[], str] | None = None) -> Any:
    """Poll ``check`` until it is truthy; on timeout fail with ``describe()`` (the state that
    was waited on) when given, else the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    state = describe() if describe else f"last: {last!r}"
    raise AssertionError(f"timed out after {timeout} s waiting for {what or check} ({state})")


def database_url() -> str:
    """The URL of the test database this process uses, for the subprocesses."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url(),
           "CELERY_TASK_ALWAYS_EAGER": "0", "PARLEY_REAL_BACKENDS": "1", "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen | None = None

    def start(self) -> Process:
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout=20)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def worker(env: dict[str, str], log_dir: Path, *, name: str = "worker", concurrency: int = 2) -> Process:
    return Process(name, [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", QUEUES,
                          "--concurrency", str(concurrency), "-l", "WARNING", "--without-heartbeat",
                          "--without-gossip", "--without-mingle", "-n", f"{name}-{os.getpid()}@%h"],
                   env, log_dir / f"{name}.log").start()


@dataclass
class Emulator:
    process: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.url}/_emulator/{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()


def emulator(env: dict[str, str], log_dir: Path, *, webhook_url: str, app_secret: str, args: list[str] = ()) -> Emulator:
    port = free_port()
    process = Process("emulator", [sys.executable, "manage.py", "cloudapi_emulator", "--port", str(port),
                                   "--webhook-url", webhook_url, "--app-secret", app_secret, *args],
                      env, log_dir / "emulator.log").start()
    wait_for_port(port)
    return Emulator(process, port)


@dataclass
class Receiver:
    """A tenant's webhook endpoint: records every POST with its headers."""

    posts: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append({"headers": dict(self.headers), "body": body, "json": json.loads(body)})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def types(self) -> list[str]:
        return [p["json"]["type"] for p in self.posts]

    def close(self) -> None:
        self.server.shutdown()
