"""Webhooks from the emulator to Parley: Meta's payload shapes, the signature, and a dispatcher
that keeps scheduled events in one heap and posts due status updates in batches.

At 1,000 messages/s with three statuses each, one POST per status would be 3,000 POSTs/s. The
dispatcher instead wakes every ``flush_interval`` seconds, pops everything that is due and posts
it in batches of up to ``batch_size`` statuses (Meta batches up to 1,000 per POST), through one
pooled client session, at most ``webhook_concurrency`` POSTs at a time.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import aiohttp

from .validation import webhook_error

logger = logging.getLogger(__name__)

_STATUS = 0
_CALL = 1

# Kinds of delivered webhook content, for the counters.
KIND_STATUS = "status"
KIND_INBOUND = "inbound"
KIND_TEMPLATE = "template"

# A scheduled callable returns the payload to post and its kind, or None to post nothing.
WebhookJob = tuple[dict[str, Any], str]


class WebhookSettings(Protocol):
    webhook_url: str | None
    app_secret: str
    waba_id: str
    batch_size: int
    flush_interval: float
    webhook_concurrency: int
    webhook_retries: int
    webhook_backoff: float
    webhook_timeout: float


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Stop one of the emulator's background loops and wait until it has."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


def sign(secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256`` value: ``sha256=`` + hex HMAC-SHA256(app secret, raw body)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclass(slots=True)
class OutboundMessage:
    """What a status webhook needs to know about an accepted message."""

    wamid: str
    phone_number_id: str
    display_phone_number: str
    recipient_id: str
    callback_data: str | None
    category: str  # "service" for session messages, else the template category in lower case


def status_payload(
    msg: OutboundMessage, status: str, timestamp: int, error_code: int | None = None
) -> dict[str, Any]:
    """One ``statuses[]`` entry (protocol.md A5)."""
    item: dict[str, Any] = {
        "id": msg.wamid,
        "status": status,
        "timestamp": str(timestamp),
        "recipient_id": msg.recipient_id,
    }
    if status == "sent" or status == "delivered":
        service = msg.category == "service"
        conversation_key = f"{msg.phone_number_id}:{msg.recipient_id}:{msg.category}:{timestamp // 86400}"
        conversation: dict[str, Any] = {"id": hashlib.md5(conversation_key.encode()).hexdigest()}
        if status == "sent":
            conversation["expiration_timestamp"] = str(timestamp + 86400)
        conversation["origin"] = {"type": msg.category}
        item["conversation"] = conversation
        item["pricing"] = {
            "billable": not service,
            "pricing_model": "PMP",
            "type": "free_customer_service" if service else "regular",
            "category": msg.category,
        }
    elif status == "failed" and error_code is not None:
        item["errors"] = [webhook_error(error_code)]
    if msg.callback_data is not None:
        item["biz_opaque_callback_data"] = msg.callback_data
    return item


def messages_change(
    phone_number_id: str,
    display_phone_number: str,
    *,
    statuses: list[dict[str, Any]] | None = None,
    messages: list[dict[str, Any]] | None = None,
    contacts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id},
    }
    if contacts is not None:
        value["contacts"] = contacts
    if messages is not None:
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return {"value": value, "field": "messages"}


def envelope(waba_id: str, changes: list[dict[str, Any]], *, entry_time: int | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": waba_id}
    if entry_time is not None:
        entry["time"] = entry_time
    entry["changes"] = changes
    return {"object": "whatsapp_business_account", "entry": [entry]}


def inbound_payload(
    waba_id: str,
    phone_number_id: str,
    display_phone_number: str,
    *,
    wa_id: str,
    name: str,
    message: dict[str, Any],
) -> dict[str, Any]:
    """A customer's message (``messages[]`` + ``contacts[]``)."""
    return envelope(
        waba_id,
        [
            messages_change(
                phone_number_id,
                display_phone_number,
                contacts=[{"profile": {"name": name}, "wa_id": wa_id}],
                messages=[message],
            )
        ],
    )


def template_status_payload(
    waba_id: str,
    *,
    template_id: str,
    name: str,
    language: str,
    category: str,
    event: str,
    reason: str = "NONE",
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "event": event,
        "message_template_id": int(template_id) if template_id.isdigit() else template_id,
        "message_template_name": name,
        "message_template_language": language,
        "reason": reason,
        "message_template_category": category,
    }
    return envelope(
        waba_id,
        [{"value": value, "field": "message_template_status_update"}],
        entry_time=int(time.time()),
    )


@dataclass(slots=True)
class WebhookCounters:
    webhooks_posted: int = 0
    webhook_failures: int = 0
    webhook_attempt_errors: int = 0
    status_events_posted: int = 0
    inbound_messages_posted: int = 0
    template_events_posted: int = 0
    events_dropped: int = 0

    def delivered(self, kind: str, count: int) -> None:
        if kind == KIND_STATUS:
            self.status_events_posted += count
        elif kind == KIND_INBOUND:
            self.inbound_messages_posted += count
        else:
            self.template_events_posted += count

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class WebhookDispatcher:
    """Scheduled webhook events in a heap, flushed in batches by one background task."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.counters = WebhookCounters()
        self._heap: list[tuple[float, int, int, Any]] = []
        self._seq = itertools.count()
        self._session: aiohttp.ClientSession | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_failure_log = 0.0
        self._suppressed_failures = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        concurrency = max(1, self.settings.webhook_concurrency)
        self._semaphore = asyncio.Semaphore(concurrency)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency + 8),
            timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout),
        )
        self._ticker = asyncio.create_task(self._run(), name="emulator-webhook-flusher")

    async def close(self) -> None:
        await cancel_and_wait(self._ticker)
        self._ticker = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- scheduling ------------------------------------------------------------------------

    def schedule_status(
        self, due: float, msg: OutboundMessage, status: str, timestamp: int, error_code: int | None = None
    ) -> None:
        """Post ``status`` for ``msg`` once the loop clock reaches ``due``."""
        heapq.heappush(self._heap, (due, next(self._seq), _STATUS, (msg, status, timestamp, error_code)))

    def schedule_call(self, due: float, build: Callable[[], WebhookJob | None]) -> None:
        """Call ``build`` at ``due`` and post what it returns, on its own."""
        heapq.heappush(self._heap, (due, next(self._seq), _CALL, build))

    def clear(self) -> None:
        self._heap.clear()

    @property
    def pending(self) -> int:
        return len(self._heap)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # -- flushing --------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            # Wake at least twice a second so a runtime change of flush_interval takes effect.
            interval = self.settings.flush_interval
            await asyncio.sleep(min(interval, 0.5))
            now = loop.time()
            if now - last < interval:
                continue
            last = now
            try:
                await self.flush()
            except Exception:
                logger.exception("emulator: flushing scheduled webhooks failed")

    async def flush(self) -> None:
        """Post everything that is due now."""
        now = asyncio.get_running_loop().time()
        heap = self._heap
        batch_size = max(1, self.settings.batch_size)
        groups: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        count = 0
        while heap and heap[0][0] <= now:
            _, _, kind, data = heapq.heappop(heap)
            if kind == _CALL:
                # Calls change emulator state (a template gets approved), so they always run.
                job = data()
                if job is None:
                    continue
                if self.settings.webhook_url:
                    await self._submit(job[0], job[1], 1)
                else:
                    self.counters.events_dropped += 1
            elif not self.settings.webhook_url:
                self.counters.events_dropped += 1
            else:
                msg, status, timestamp, error_code = data
                group = groups.get(msg.phone_number_id)
                if group is None:
                    group = groups[msg.phone_number_id] = (msg.display_phone_number, [])
                group[1].append(status_payload(msg, status, timestamp, error_code))
                count += 1
                if count >= batch_size:
                    await self._submit(self._status_envelope(groups), KIND_STATUS, count)
                    groups = {}
                    count = 0
        if count:
            await self._submit(self._status_envelope(groups), KIND_STATUS, count)

    def _status_envelope(self, groups: dict[str, tuple[str, list[dict[str, Any]]]]) -> dict[str, Any]:
        changes = [
            messages_change(pnid, display, statuses=statuses) for pnid, (display, statuses) in groups.items()
        ]
        return envelope(self.settings.waba_id, changes)

    async def _submit(self, payload: dict[str, Any], kind: str, count: int) -> None:
        assert self._semaphore is not None, "dispatcher not started"
        await self._semaphore.acquire()
        task = asyncio.create_task(self._deliver(payload, kind, count))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, payload: dict[str, Any], kind: str, count: int) -> None:
        assert self._semaphore is not None
        try:
            ok, _ = await self.post(payload)
            if ok:
                self.counters.delivered(kind, count)
            else:
                self.counters.events_dropped += count
        finally:
            self._semaphore.release()

    # -- posting ---------------------------------------------------------------------------

    async def post(self, payload: dict[str, Any]) -> tuple[bool, int | None]:
        """Sign and POST one payload, retrying with backoff. Returns (delivered, last HTTP status)."""
        url = self.settings.webhook_url
        if not url:
            return False, None
        if self._session is None:
            raise RuntimeError("webhook dispatcher not started")
        body = encode(payload)
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(self.settings.app_secret, body),
        }
        retries = max(0, self.settings.webhook_retries)
        status: int | None = None
        last_error = ""
        for attempt in range(retries + 1):
            try:
                async with self._session.post(url, data=body, headers=headers) as response:
                    status = response.status
                    await response.read()
                if 200 <= status < 300:
                    self.counters.webhooks_posted += 1
                    return True, status
                last_error = f"HTTP {status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            self.counters.webhook_attempt_errors += 1
            if attempt < retries:
                await asyncio.sleep(self.settings.webhook_backoff * (2**attempt))
        self.counters.webhook_failures += 1
        self._log_failure(url, last_error, retries + 1)
        return False, status

    def _log_failure(self, url: str, error: str, attempts: int) -> None:
        now = time.monotonic()
        if now - self._last_failure_log < 5.0:
            self._suppressed_failures += 1
            return
        suppressed, self._suppressed_failures = self._suppressed_failures, 0
        self._last_failure_log = now
        logger.warning(
            "emulator: webhook POST to %s failed after %d attempts (%s); %d more failures since the last report",
            url,
            attempts,
            error,
            suppressed,
        )
