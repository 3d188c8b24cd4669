"""The throughput path (``send_batch`` over one pooled aiohttp session) and both transports
against real sockets: a local aiohttp server that answers like Meta (and like Gupshup), with
errors, rate limits, a slow answer and a dropped connection."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web

from apps.phone_numbers.models import PhoneNumber
from apps.providers.backends import base as backend_base
from apps.providers.backends.gupshup import GupshupBackend
from apps.providers.backends.meta_cloud import MetaCloudBackend
from apps.providers.exceptions import (
    ProviderConfigurationError,
    ProviderPermanentError,
    ProviderTransientError,
    ProviderUnknownOutcome,
    UnsupportedFeature,
)
from apps.providers.outbound import OutboundMessage, SendResult

PHONE_NUMBER_ID = "106540352242922"
TOKEN = "EAAG-batch-token"
SLOW_SECONDS = 3.0


@dataclass
class FakeProvider:
    """Answers like Meta's /messages (and Gupshup's /wa/api/v1/msg) and records what it saw."""

    url: str = ""
    bodies: list[Any] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)
    inflight: int = 0
    max_inflight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def behaviour(index: int) -> str:
        if index == 123:
            return "slow"
        return {5: "server_error", 9: "throttled", 17: "window_closed"}.get(index % 40, "ok")

    def _enter(self, request: web.Request) -> None:
        with self.lock:
            self.peers.add(request.transport.get_extra_info("peername"))
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)

    def _leave(self) -> None:
        with self.lock:
            self.inflight -= 1

    async def meta(self, request: web.Request) -> web.Response:
        self._enter(request)
        try:
            body = await request.json()
            with self.lock:
                self.bodies.append(body)
                self.auth.append(request.headers.get("Authorization", ""))
            index = int(body["biz_opaque_callback_data"].split("-")[1])
            kind = self.behaviour(index)
            if kind == "slow":
                await asyncio.sleep(SLOW_SECONDS)
            if kind == "server_error":
                return web.json_response({"error": {"message": "(#131000) Something went wrong", "code": 131000,
                                                    "type": "OAuthException"}}, status=500)
            if kind == "throttled":
                return web.json_response({"error": {"message": "(#130429) Rate limit hit", "code": 130429}},
                                         status=429, headers={"Retry-After": "2"})
            if kind == "window_closed":
                return web.json_response({"error": {"message": "(#131047) Re-engagement message", "code": 131047,
                                                    "error_data": {"details": "24 hours"}}}, status=400)
            return web.json_response({"messaging_product": "whatsapp",
                                      "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                                      "messages": [{"id": f"wamid.{index}"}]})
        finally:
            self._leave()

    async def gupshup(self, request: web.Request) -> web.Response:
        self._enter(request)
        try:
            fields = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
            with self.lock:
                self.bodies.append(fields)
                self.auth.append(request.headers.get("apikey", ""))
            return web.json_response({"status": "submitted", "messageId": f"gs-{fields['destination']}"},
                                     status=202)
        finally:
            self._leave()


@pytest.fixture
def provider_server() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    loop = asyncio.new_event_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = web.Application()
    app.router.add_post("/{version}/{phone_number_id}/messages", fake.meta)
    app.router.add_post("/wa/api/v1/msg", fake.gupshup)
    runner = web.AppRunner(app, shutdown_timeout=SLOW_SECONDS + 1)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.SockSite(runner, sock, backlog=512).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def silent_server() -> Iterator[tuple[str, str]]:
    """A raw TCP server: one path accepts and never answers, the other reads the request and
    hangs up without answering. Yields (slow_url, drop_url) sharing one port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    stop = threading.Event()
    held: list[socket.socket] = []

    def handle(conn: socket.socket) -> None:
        conn.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        if b" /drop/" in data.split(b"\r\n", 1)[0]:
            conn.close()
        else:
            held.append(conn)  # keep it open, never answer

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/slow", f"http://127.0.0.1:{port}/drop"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def closed_port_url() -> str:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def meta_backend(url: str, **options: Any) -> MetaCloudBackend:
    number = PhoneNumber(provider="meta_cloud", phone_number_id=PHONE_NUMBER_ID, graph_api_url=url,
                         credentials={"access_token": TOKEN})
    return MetaCloudBackend(phone_number=number, **options)


def text(index: int) -> OutboundMessage:
    return OutboundMessage(to=f"1650555{index:04d}", type="text", content={"body": f"hello {index}"},
                           callback_data=f"msg-{index}")


@pytest.fixture(autouse=True)
def graph_version(settings):
    settings.META_GRAPH_API_VERSION = "v23.0"


def test_send_batch_is_concurrent_pooled_and_order_preserving(provider_server, monkeypatch):
    sessions: list[aiohttp.ClientSession] = []
    real_session = aiohttp.ClientSession

    def counting_session(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        session = real_session(*args, **kwargs)
        sessions.append(session)
        return session

    monkeypatch.setattr(backend_base.aiohttp, "ClientSession", counting_session)
    backend_base.close_batch_transports()  # start from no kept session
    concurrency = 16
    backend = meta_backend(provider_server.url, read_timeout=1.0)
    messages = [text(i) for i in range(200)]

    started = time.monotonic()
    results = backend.send_batch(messages, concurrency=concurrency)
    elapsed = time.monotonic() - started

    assert len(results) == 200
    assert len(provider_server.bodies) == 200
    assert len(sessions) == 1
    assert provider_server.max_inflight <= concurrency
    assert provider_server.max_inflight >= 2
    # One connection per concurrent slot; the timed-out request's connection is replaced once.
    assert len(provider_server.peers) <= concurrency + 1
    assert set(provider_server.auth) == {f"Bearer {TOKEN}"}
    # The slow answer held one slot only: the batch did not wait for it serially.
    assert elapsed < 15

    for index, result in enumerate(results):
        kind = FakeProvider.behaviour(index)
        if kind == "ok":
            assert isinstance(result, SendResult), (index, result)
            assert result.provider_message_id == f"wamid.{index}"
            assert result.wa_id == messages[index].to
            assert result.duration_ms >= 0
        elif kind == "server_error":
            assert isinstance(result, ProviderTransientError) and result.code == 131000
        elif kind == "throttled":
            assert isinstance(result, ProviderTransientError)
            assert (result.code, result.retry_after, result.status_code) == (130429, 2.0, 429)
        elif kind == "window_closed":
            assert type(result) is ProviderPermanentError and result.code == 131047
        else:
            assert isinstance(result, ProviderUnknownOutcome), (index, result)

    sent = {body["biz_opaque_callback_data"]: body for body in provider_server.bodies}
    assert sent["msg-7"] == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505550007",
                             "type": "text", "text": {"body": "hello 7"}, "biz_opaque_callback_data": "msg-7"}


def test_send_batch_keeps_its_connections_from_one_batch_to_the_next(provider_server):
    backend = meta_backend(provider_server.url)
    first = backend.send_batch([text(i) for i in range(40, 45)], concurrency=4)
    peers = set(provider_server.peers)
    assert 1 <= len(peers) <= 4
    second = backend.send_batch([text(i) for i in range(80, 85)], concurrency=4)
    # The same pooled connections carried the second batch: no new client port appeared.
    assert provider_server.peers == peers
    assert [r.provider_message_id for r in first + second] == [f"wamid.{i}" for i in [*range(40, 45), *range(80, 85)]]


def test_a_gate_paces_the_batch_and_the_rest_is_left_unposted(provider_server):
    grants = iter([2, 1, 0])

    async def gate(want: int) -> int:
        return min(want, next(grants))

    results = meta_backend(provider_server.url).send_batch([text(i) for i in range(40, 45)], concurrency=4, gate=gate)
    assert [r.provider_message_id if r else None for r in results] == ["wamid.40", "wamid.41", "wamid.42", None, None]
    assert len(provider_server.bodies) == 3


def test_a_failing_gate_still_sees_the_posts_it_granted_through(provider_server):
    calls = 0

    async def gate(want: int) -> int:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ConnectionError("the rate limiter's store went away")
        return 2

    with pytest.raises(ConnectionError):
        meta_backend(provider_server.url).send_batch([text(i) for i in range(40, 45)], concurrency=4, gate=gate)
    assert sorted(b["biz_opaque_callback_data"] for b in provider_server.bodies) == ["msg-40", "msg-41"]
    assert provider_server.inflight == 0  # both answered before the error went on


def test_a_forked_worker_process_opens_its_own_loop_and_connections(provider_server):
    backend = meta_backend(provider_server.url)
    backend.send_batch([text(40)], concurrency=2)
    parent = backend_base._batch_transport()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what a prefork worker process inherits must not be reused
        try:
            ok = backend.send_batch([text(41)], concurrency=2)[0].provider_message_id == "wamid.41"
            ok = ok and backend_base._batch_transport() is not parent
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert backend_base._batch_transport() is parent


def test_send_batch_form_encoded_and_build_failures_keep_their_place(provider_server, settings):
    settings.GUPSHUP_API_URL = provider_server.url
    number = PhoneNumber(provider="gupshup", provider_app_id="DemoApp", display_number="917834811114",
                         credentials={"api_key": "k-1"})
    backend = GupshupBackend(phone_number=number)
    messages = [
        OutboundMessage(to="9170000000", type="text", content={"body": "a"}),
        OutboundMessage(to="9170000001", type="reaction", content={"message_id": "x", "emoji": "👍"}),
        OutboundMessage(to="9170000002", type="image", content={"link": "https://cdn.example/i.jpg"}),
    ]
    results = backend.send_batch(messages, concurrency=4)
    assert isinstance(results[0], SendResult) and results[0].provider_message_id == "gs-9170000000"
    assert isinstance(results[1], UnsupportedFeature)
    assert isinstance(results[2], SendResult) and results[2].provider_message_id == "gs-9170000002"
    assert len(provider_server.bodies) == 2
    assert set(provider_server.auth) == {"k-1"}
    image = next(b for b in provider_server.bodies if b["destination"] == "9170000002")
    assert image == {"channel": "whatsapp", "source": "917834811114", "destination": "9170000002",
                     "src.name": "DemoApp", "message": json.dumps(
                         {"type": "image", "originalUrl": "https://cdn.example/i.jpg",
                          "previewUrl": "https://cdn.example/i.jpg"}, separators=(",", ":"))}


def test_send_batch_connection_refused_is_transient(settings):
    backend = meta_backend(closed_port_url(), connect_timeout=2)
    results = backend.send_batch([text(i) for i in range(5)], concurrency=2)
    assert all(type(r) is ProviderTransientError for r in results), results


def test_send_batch_dropped_connection_is_unknown_outcome(silent_server):
    _, drop_url = silent_server
    backend = meta_backend(drop_url, read_timeout=2)
    results = backend.send_batch([text(1), text(2)], concurrency=2)
    assert all(type(r) is ProviderUnknownOutcome for r in results), results


def test_send_batch_read_timeout_is_unknown_outcome(silent_server):
    slow_url, _ = silent_server
    backend = meta_backend(slow_url, read_timeout=0.3)
    results = backend.send_batch([text(1)], concurrency=1)
    assert type(results[0]) is ProviderUnknownOutcome


def test_send_batch_missing_credentials_posts_nothing(provider_server):
    number = PhoneNumber(provider="meta_cloud", phone_number_id=PHONE_NUMBER_ID, graph_api_url=provider_server.url)
    results = MetaCloudBackend(phone_number=number).send_batch([text(1), text(2)])
    assert all(type(r) is ProviderConfigurationError for r in results)
    assert provider_server.bodies == []


def test_send_batch_empty():
    assert meta_backend("http://127.0.0.1:9").send_batch([]) == []


def test_send_batch_rejects_bad_concurrency():
    with pytest.raises(ValueError):
        meta_backend("http://127.0.0.1:9").send_batch([text(1)], concurrency=0)


def test_send_batch_from_inside_a_running_event_loop(provider_server):
    backend = meta_backend(provider_server.url)

    async def caller() -> list[Any]:
        return backend.send_batch([text(1), text(2)], concurrency=2)

    results = asyncio.run(caller())
    assert [r.provider_message_id for r in results] == ["wamid.1", "wamid.2"]


# -- the single-send transport (pooled requests.Session) against real sockets ----------------------

def test_send_over_real_socket(provider_server):
    result = meta_backend(provider_server.url).send(text(3))
    assert result.provider_message_id == "wamid.3"
    assert result.duration_ms >= 0


def test_send_connection_refused_is_transient():
    with pytest.raises(ProviderTransientError) as info:
        meta_backend(closed_port_url()).send(text(1))
    assert info.value.transient is True


def test_send_read_timeout_is_unknown_outcome(silent_server):
    slow_url, _ = silent_server
    with pytest.raises(ProviderUnknownOutcome) as info:
        meta_backend(slow_url, read_timeout=0.3).send(text(1))
    assert info.value.transient is False


def test_send_dropped_connection_is_unknown_outcome(silent_server):
    _, drop_url = silent_server
    with pytest.raises(ProviderUnknownOutcome):
        meta_backend(drop_url, read_timeout=2).send(text(1))


def test_single_sends_share_one_pooled_session(provider_server):
    backend = meta_backend(provider_server.url)
    for index in range(5):
        backend.send(text(index))
    assert backend_base.http_session() is backend_base.http_session()
    assert len(provider_server.peers) == 1
