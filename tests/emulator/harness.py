"""Run the Cloud API emulator on a random 127.0.0.1 port next to a tiny webhook receiver that
stands in for Parley's ``/webhooks/meta/`` and checks every signature."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from apps.providers.emulator.server import EMULATOR_KEY, Emulator, EmulatorConfig, create_app

SECRET = "test-app-secret"
TOKEN = "test-token"
PNID = "1001"
DISPLAY = "15550001001"

# Fast, deterministic defaults for tests: no jitter, tiny delays, manual flushing unless a test
# turns the background flusher on.
FAST: dict[str, Any] = {
    "app_secret": SECRET,
    "numbers": {PNID: DISPLAY},
    "sent_delay": 0.0,
    "delivered_delay": 0.02,
    "read_delay": 0.02,
    "reply_delay": 0.02,
    "duplicate_delay": 0.02,
    "jitter": 0.0,
    "template_review_delay": 0.0,
    "flush_interval": 3600.0,
    "webhook_backoff": 0.01,
    "webhook_retries": 2,
    "seed": 7,
}


@dataclass
class Receiver:
    """Collects webhook POSTs; answers 401 to a bad signature, 500 while ``fail_next`` > 0."""

    secret: str
    fail_next: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    failed: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Hub-Signature-256", ""), expected):
            self.bad_signatures += 1
            return web.Response(status=401)
        if self.fail_next > 0:
            self.fail_next -= 1
            self.failed += 1
            return web.Response(status=500)
        assert request.headers["Content-Type"].startswith("application/json")
        self.posts.append(json.loads(body))
        return web.Response(text="ok")

    def changes(self, field_name: str = "messages") -> list[dict[str, Any]]:
        return [
            change["value"]
            for post in self.posts
            for entry in post["entry"]
            for change in entry["changes"]
            if change["field"] == field_name
        ]

    def statuses(self) -> list[dict[str, Any]]:
        return [s for value in self.changes() for s in value.get("statuses", [])]

    def messages(self) -> list[dict[str, Any]]:
        return [m for value in self.changes() for m in value.get("messages", [])]


@dataclass
class Harness:
    base: str
    session: aiohttp.ClientSession
    receiver: Receiver
    emulator: Emulator

    async def request(
        self, method: str, path: str, *, token: str | None = TOKEN, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.base + path, headers=headers, **kwargs) as response:
            raw = await response.read()
            try:
                return response.status, json.loads(raw)
            except ValueError:
                return response.status, raw

    async def send(
        self, body: Any, *, pnid: str = PNID, version: str = "v21.0", **kwargs: Any
    ) -> tuple[int, Any]:
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return await self.request(
            "POST",
            f"/{version}/{pnid}/messages",
            data=data,
            headers={"Content-Type": "application/json"},
            **kwargs,
        )

    async def control(self, method: str, action: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        if body is not None:
            kwargs["data"] = json.dumps(body)
        return await self.request(method, f"/_emulator/{action}", token=None, **kwargs)

    async def stats(self) -> dict[str, Any]:
        status, data = await self.control("GET", "stats")
        assert status == 200
        return data

    async def settle(self, seconds: float = 0.1) -> None:
        """Let scheduled events fall due, then flush them and wait for in-flight POSTs."""
        await asyncio.sleep(seconds)
        await self.emulator.dispatcher.flush()
        await self.drain()

    async def drain(self, timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.emulator.dispatcher.in_flight:
            assert asyncio.get_running_loop().time() < deadline, "webhook POSTs did not finish"
            await asyncio.sleep(0.005)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            assert asyncio.get_running_loop().time() < deadline, "condition not reached"
            await asyncio.sleep(0.01)


@asynccontextmanager
async def running(*, webhooks: bool = True, **overrides: Any) -> AsyncIterator[Harness]:
    receiver = Receiver(SECRET)
    receiver_app = web.Application()
    receiver_app.router.add_post("/webhooks/meta/", receiver.handle)
    receiver_runner = web.AppRunner(receiver_app, access_log=None)
    await receiver_runner.setup()
    receiver_site = web.TCPSite(receiver_runner, "127.0.0.1", 0)
    await receiver_site.start()
    receiver_port = receiver_runner.addresses[0][1]

    settings = dict(FAST)
    if webhooks:
        settings["webhook_url"] = f"http://127.0.0.1:{receiver_port}/webhooks/meta/"
    settings.update(overrides)
    app = create_app(EmulatorConfig(**settings))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            yield Harness(f"http://127.0.0.1:{port}", session, receiver, app[EMULATOR_KEY])
    finally:
        await runner.cleanup()
        await receiver_runner.cleanup()


def run(scenario: Callable[[Harness], Any], **overrides: Any) -> None:
    """Run ``async def scenario(h)`` against a fresh emulator and receiver."""

    async def main() -> None:
        async with running(**overrides) as harness:
            await scenario(harness)

    asyncio.run(main())


def text(to: str = "+1 (650) 555-1234", body: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}, **extra}


def template(
    name: str, language: str, components: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    tmpl: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components is not None:
        tmpl["components"] = components
    return {
        "messaging_product": "whatsapp",
        "to": "16505551234",
        "type": "template",
        "template": tmpl,
        **extra,
    }


def body_params(*values: str) -> dict[str, Any]:
    return {"type": "body", "parameters": [{"type": "text", "text": v} for v in values]}
