"""The Cloud API emulator: an aiohttp application speaking Meta's Graph API for one or more
phone numbers (messages, media, templates, number info) plus a small control API under
``/_emulator/`` for tests and benchmarks.

``create_app(EmulatorConfig(...))`` builds the application; the ``cloudapi_emulator`` management
command runs it. All state lives in memory in one :class:`Emulator`.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import itertools
import json
import logging
import random
import re
import secrets
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiohttp import web

from .validation import (
    ERROR_DETAILS,
    GraphError,
    TemplateRecord,
    ValidatedSend,
    describe_template,
    error_body,
    parse_template_definition,
    phone_digits,
    reply_choices,
    unknown_object,
    validate_send,
)
from .webhooks import (
    KIND_INBOUND,
    KIND_TEMPLATE,
    OutboundMessage,
    WebhookCounters,
    WebhookDispatcher,
    WebhookJob,
    cancel_and_wait,
    inbound_payload,
    template_status_payload,
)

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 24 * 60 * 60
_VERSION_RE = re.compile(r"v\d+\.\d+")
_JSON = "application/json"

_REPLY_TEXTS = (
    "Thanks!",
    "Got it, thank you.",
    "Can you tell me more?",
    "Yes please",
    "When will it arrive?",
    "👍",
)
_PROFILE_NAMES = (
    "Ana Souza",
    "Ben Okafor",
    "Chen Wei",
    "Dana Levi",
    "Emil Novak",
    "Fatima Khan",
    "Greta Lund",
    "Hiro Tanaka",
    "Ines Garcia",
    "Jonas Berg",
)


@dataclass
class EmulatorConfig:
    """Everything the emulator can be told. All but host/port can change at runtime."""

    host: str = "127.0.0.1"
    port: int = 8001
    webhook_url: str | None = None
    app_secret: str = ""
    access_token: str | None = None
    # phone_number_id -> display number; empty: accept any phone number id
    numbers: dict[str, str] = field(default_factory=dict)
    waba_id: str = "emulator-waba"
    verified_name: str = "Parley Emulator"
    # seconds; each delay gets +/- jitter (a share of it)
    sent_delay: float = 0.1
    delivered_delay: float = 0.5
    read_delay: float = 2.0
    reply_delay: float = 1.5
    duplicate_delay: float = 0.3
    jitter: float = 0.3
    # shares of accepted messages, 0..1
    read_share: float = 1.0
    skip_delivered_share: float = 0.0
    duplicate_share: float = 0.0
    out_of_order_share: float = 0.0
    fail_share: float = 0.0
    fail_codes: tuple[int, ...] = (131026, 131049)
    reply_share: float = 0.0
    status_webhooks: bool = True
    # shares of send requests answered with an injected error
    rate_limit_share: float = 0.0
    rate_limit_status: int = 429
    server_error_share: float = 0.0
    latency_ms: float = 0.0
    enforce_window: bool = False
    seed: int | None = None
    template_review_delay: float = 1.0
    throughput_level: str = "STANDARD"
    messaging_limit: str = "TIER_UNLIMITED"
    # webhook delivery
    batch_size: int = 500
    flush_interval: float = 0.05
    webhook_concurrency: int = 8
    webhook_retries: int = 3
    webhook_backoff: float = 0.2
    webhook_timeout: float = 10.0
    max_stored_messages: int = 100_000


_SHARES = frozenset(
    {
        "read_share",
        "skip_delivered_share",
        "duplicate_share",
        "out_of_order_share",
        "fail_share",
        "reply_share",
        "rate_limit_share",
        "server_error_share",
    }
)
_SECONDS = frozenset(
    {
        "sent_delay",
        "delivered_delay",
        "read_delay",
        "reply_delay",
        "duplicate_delay",
        "jitter",
        "latency_ms",
        "template_review_delay",
        "flush_interval",
        "webhook_backoff",
        "webhook_timeout",
    }
)
_BOOLS = frozenset({"status_webhooks", "enforce_window"})
_INTS = frozenset(
    {"rate_limit_status", "batch_size", "webhook_concurrency", "webhook_retries", "max_stored_messages"}
)
_STRINGS = frozenset({"app_secret", "waba_id", "verified_name", "throughput_level", "messaging_limit"})
_OPTIONAL_STRINGS = frozenset({"webhook_url", "access_token"})
_FIXED = frozenset({"host", "port"})


def _coerce(name: str, value: Any) -> Any:
    """Validate one runtime config change; raises ValueError."""
    if name in _SHARES:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a number between 0 and 1")
        return float(value)
    if name in _SECONDS:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{name} must be a non-negative number")
        return float(value)
    if name in _BOOLS:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    if name in _INTS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer")
        return value
    if name in _STRINGS:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
        return value
    if name in _OPTIONAL_STRINGS:
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string or null")
        return value or None
    if name == "seed":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError("seed must be an integer or null")
        return value
    if name == "fail_codes":
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in value)
        ):
            raise ValueError("fail_codes must be a non-empty list of integers")
        return tuple(value)
    if name == "numbers":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ValueError("numbers must be an object of phone_number_id -> display number")
        return dict(value)
    if name in _FIXED:
        raise ValueError(f"{name} cannot change at runtime")
    raise ValueError(f"unknown setting {name}")


def default_templates() -> list[TemplateRecord]:
    """The templates a fresh emulator knows, all APPROVED."""
    specs: list[dict[str, Any]] = [
        {
            "template_id": "1000000000000001",
            "name": "hello_world",
            "language": "en_US",
            "category": "UTILITY",
            "components": [
                {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
                {
                    "type": "BODY",
                    "text": (
                        "Welcome and congratulations!! This message demonstrates your ability to "
                        "send a WhatsApp message notification from the Cloud API, hosted by Meta. "
                        "Thank you for taking the time to test with us."
                    ),
                },
                {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"},
            ],
        },
        {
            "template_id": "1000000000000002",
            "name": "order_update",
            "language": "en",
            "category": "UTILITY",
            "components": [
                {
                    "type": "BODY",
                    "text": "Hi {{1}}, your order {{2}} has shipped and is on its way.",
                    "example": {"body_text": [["Maria", "#1042"]]},
                },
            ],
        },
        {
            "template_id": "1000000000000003",
            "name": "appointment_reminder",
            "language": "en",
            "category": "UTILITY",
            "parameter_format": "NAMED",
            "components": [
                {
                    "type": "BODY",
                    "text": (
                        "Hi {{first_name}}, this is a reminder of your appointment at {{time}}. "
                        "Reply here if you need to reschedule."
                    ),
                    "example": {
                        "body_text_named_params": [
                            {"param_name": "first_name", "example": "Maria"},
                            {"param_name": "time", "example": "3:00 PM"},
                        ]
                    },
                },
            ],
        },
        {
            "template_id": "1000000000000004",
            "name": "promo_offer",
            "language": "en",
            "category": "MARKETING",
            "components": [
                {
                    "type": "HEADER",
                    "format": "IMAGE",
                    "example": {"header_handle": ["https://example.com/promo.jpg"]},
                },
                {
                    "type": "BODY",
                    "text": "Our spring sale is on! Use code {{1}} for 20% off your next order.",
                    "example": {"body_text": [["SPRING20"]]},
                },
                {"type": "FOOTER", "text": "Not interested? Tap Stop promotions"},
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": "Shop now"},
                        {"type": "QUICK_REPLY", "text": "Stop promotions"},
                    ],
                },
            ],
        },
    ]
    return [describe_template(status="APPROVED", **spec) for spec in specs]


@dataclass(slots=True)
class _Media:
    data: bytes
    mime_type: str
    sha256: str
    filename: str | None


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(str(index).encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise GraphError(100, "Invalid paging cursor.") from None


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(), status=status, content_type=_JSON
    )


class _ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Emulator:
    """The emulator's state and request handlers."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.dispatcher = WebhookDispatcher(config)
        self.loop_stalls = LoopStalls()
        self._instance = secrets.token_hex(4).upper()
        self._wamid_seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._id_base = 10**15 + (int(time.time()) % 10**6) * 10**8
        self._displays: dict[str, str] = {}
        self.reset()

    # -- state -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget messages, counters, windows, media and scheduled webhooks; restore templates."""
        self.rng = random.Random(self.config.seed)
        self.requests = 0
        self.message_requests = 0
        self.messages_accepted = 0
        self.read_receipts = 0
        self.injected_rate_limits = 0
        self.injected_server_errors = 0
        self.errors_by_code: dict[int, int] = {}
        self.by_recipient: dict[str, int] = {}
        self.by_callback_data: dict[str, int] = {}
        self.media_uploads = 0
        self.templates_created = 0
        self.inbound_injected = 0
        self.replies_scheduled = 0
        self.templates: dict[tuple[str, str], TemplateRecord] = {
            (t.name, t.language): t for t in default_templates()
        }
        self.media: dict[str, _Media] = {}
        self.windows: dict[tuple[str, str], float] = {}
        self.last_outbound: dict[tuple[str, str], str] = {}
        # (seq, wamid, phone_number_id, to, wa_id, type, callback data, accepted_at, raw body)
        self.messages: list[tuple[int, str, str, str, str, str, str | None, float, bytes]] = []
        self._message_seq = 0
        self.deleted_media: set[str] = set()
        self.dispatcher.clear()
        self.dispatcher.counters = WebhookCounters()
        self.loop_stalls.clear()

    def stats(self, *, summary: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "requests": self.requests,
            "message_requests": self.message_requests,
            "messages_accepted": self.messages_accepted,
            "read_receipts": self.read_receipts,
            "injected_rate_limits": self.injected_rate_limits,
            "injected_server_errors": self.injected_server_errors,
            "errors_by_code": {str(k): v for k, v in self.errors_by_code.items()},
            "recipients": len(self.by_recipient),
            "callback_data_values": len(self.by_callback_data),
            "duplicate_callback_data": sum(1 for v in self.by_callback_data.values() if v > 1),
            "media_uploads": self.media_uploads,
            "templates_created": self.templates_created,
            "inbound_injected": self.inbound_injected,
            "replies_scheduled": self.replies_scheduled,
            "pending_events": self.dispatcher.pending,
            "webhooks_in_flight": self.dispatcher.in_flight,
        }
        data.update(self.dispatcher.counters.as_dict())
        data.update(self.loop_stalls.as_dict())
        if not summary:
            data["by_recipient"] = self.by_recipient
            data["by_callback_data"] = self.by_callback_data
        return data

    def display_number(self, phone_number_id: str) -> str:
        display = self.config.numbers.get(phone_number_id) or self._displays.get(phone_number_id)
        if display is None:
            digest = int(hashlib.md5(phone_number_id.encode()).hexdigest(), 16)
            display = self._displays[phone_number_id] = f"1555{digest % 10**7:07d}"
        return display

    def _new_id(self) -> str:
        return str(self._id_base + next(self._ids))

    def _wamid(self, wa_id: str) -> str:
        raw = f"{wa_id}\x15\x02\x00\x11\x18\x12{self._instance}{next(self._wamid_seq):012X}\x00".encode()
        return "wamid.HBgL" + base64.b64encode(raw).decode()

    def _window_open(self, phone_number_id: str, wa_id: str) -> bool:
        opened = self.windows.get((phone_number_id, wa_id))
        return opened is not None and time.time() - opened < WINDOW_SECONDS

    def _known_number(self, phone_number_id: str) -> bool:
        numbers = self.config.numbers
        return not numbers or phone_number_id in numbers

    # -- Graph API ---------------------------------------------------------------------------

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization")
        if header and header[:7].lower() == "bearer ":
            token = header[7:].strip()
        else:
            token = request.query.get("access_token", "")
        if not token:
            raise GraphError(
                190,
                "An active access token must be used to query information about the current user.",
                message="An active access token must be used to query information about the current user.",
            )
        expected = self.config.access_token
        if expected is not None and not secrets.compare_digest(token.encode(), expected.encode()):
            raise GraphError(190, "Invalid OAuth access token - Cannot parse access token")

    def _error(self, err: GraphError) -> web.Response:
        self.errors_by_code[err.code] = self.errors_by_code.get(err.code, 0) + 1
        return _json(error_body(err), err.http_status)

    async def handle_graph(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        try:
            self._authenticate(request)
            if self.config.latency_ms:
                await asyncio.sleep(self.config.latency_ms / 1000.0)
            parts = request.path.strip("/").split("/")
            if parts and _VERSION_RE.fullmatch(parts[0]):
                del parts[0]
            method = request.method
            if len(parts) == 2:
                node, edge = parts
                if edge == "messages" and method == "POST":
                    return await self._send(request, node)
                if edge == "media" and method == "POST":
                    return await self._upload(request, node)
                if edge == "message_templates":
                    if method == "GET":
                        return self._list_templates(request)
                    if method == "POST":
                        return await self._create_template(request)
                    if method == "DELETE":
                        return self._delete_template(request)
                if edge == "phone_numbers" and method == "GET":
                    return self._list_numbers()
            elif len(parts) == 1 and parts[0]:
                node = parts[0]
                if method == "GET":
                    if node in self.media:
                        return self._media_info(request, node)
                    if node not in self.deleted_media and self._known_number(node):
                        return self._number_info(request, node)
                elif method == "DELETE" and self.media.pop(node, None) is not None:
                    self.deleted_media.add(node)
                    return _json({"success": True})
            raise unknown_object("/".join(parts), method)
        except GraphError as err:
            return self._error(err)

    async def _send(self, request: web.Request, phone_number_id: str) -> web.Response:
        config = self.config
        if config.numbers and phone_number_id not in config.numbers:
            raise unknown_object(phone_number_id, "post")
        self.message_requests += 1
        rng = self.rng
        if config.rate_limit_share and rng.random() < config.rate_limit_share:
            self.injected_rate_limits += 1
            raise GraphError(130429, ERROR_DETAILS[130429], http_status=config.rate_limit_status)
        if config.server_error_share and rng.random() < config.server_error_share:
            self.injected_server_errors += 1
            code = 131000 if rng.random() < 0.5 else 2
            raise GraphError(code, ERROR_DETAILS[code])
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            raise GraphError(100, "Request body is not valid JSON.") from None
        sent = validate_send(body, self.templates)
        if sent is None:
            self.read_receipts += 1
            return _json({"success": True})
        wa_id = sent.wa_id
        if config.enforce_window and sent.template is None and not self._window_open(phone_number_id, wa_id):
            raise GraphError(131047, ERROR_DETAILS[131047])

        wamid = self._wamid(wa_id)
        now = time.time()
        self.messages_accepted += 1
        self.by_recipient[wa_id] = self.by_recipient.get(wa_id, 0) + 1
        callback = sent.callback_data
        if callback is not None:
            self.by_callback_data[callback] = self.by_callback_data.get(callback, 0) + 1
        self._message_seq += 1
        self.messages.append(
            (self._message_seq, wamid, phone_number_id, sent.to, wa_id, sent.type, callback, now, raw)
        )
        if len(self.messages) > config.max_stored_messages + 1000:
            del self.messages[: len(self.messages) - config.max_stored_messages]
        self.last_outbound[(phone_number_id, wa_id)] = wamid
        if config.status_webhooks and config.webhook_url:
            self._schedule(phone_number_id, sent, wamid, body, now)

        message: dict[str, str] = {"id": wamid}
        if sent.template is not None:
            message["message_status"] = "accepted"
        return _json(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": sent.to, "wa_id": wa_id}],
                "messages": [message],
            }
        )

    def _schedule(
        self, phone_number_id: str, sent: ValidatedSend, wamid: str, body: dict[str, Any], wall: float
    ) -> None:
        """Plan this message's status webhooks (and maybe a reply) in the dispatcher's heap."""
        config = self.config
        rng = self.rng
        jitter = config.jitter

        def jittered(delay: float) -> float:
            return delay * (1.0 + jitter * (2.0 * rng.random() - 1.0)) if delay > 0 else 0.0

        now = asyncio.get_running_loop().time()
        category = sent.template.category.lower() if sent.template is not None else "service"
        msg = OutboundMessage(
            wamid,
            phone_number_id,
            self.display_number(phone_number_id),
            sent.wa_id,
            sent.callback_data,
            category,
        )
        dispatcher = self.dispatcher
        t_sent = jittered(config.sent_delay)
        if config.fail_share and rng.random() < config.fail_share:
            code = rng.choice(config.fail_codes)
            dispatcher.schedule_status(now + t_sent, msg, "failed", int(wall + t_sent), code)
            if config.duplicate_share and rng.random() < config.duplicate_share:
                t_dup = t_sent + jittered(config.duplicate_delay)
                dispatcher.schedule_status(now + t_dup, msg, "failed", int(wall + t_sent), code)
            return

        plan = [(t_sent, "sent")]
        t_delivered = t_sent + jittered(config.delivered_delay)
        last = t_delivered
        read = config.read_share > 0 and rng.random() < config.read_share
        t_read = t_delivered + jittered(config.read_delay) if read else 0.0
        skip_delivered = (
            read and config.skip_delivered_share > 0 and rng.random() < config.skip_delivered_share
        )
        if not skip_delivered:
            plan.append((t_delivered, "delivered"))
        if read:
            plan.append((t_read, "read"))
            last = t_read
        out_of_order = config.out_of_order_share > 0 and rng.random() < config.out_of_order_share
        duplicate = config.duplicate_share > 0 and rng.random() < config.duplicate_share
        if out_of_order:
            # Everything arrives together at the end, newest first; timestamps stay truthful.
            post_at = plan[-1][0]
            posts = [(post_at, offset, status) for offset, status in reversed(plan)]
        else:
            posts = [(offset, offset, status) for offset, status in plan]
        for post_at, offset, status in posts:
            dispatcher.schedule_status(now + post_at, msg, status, int(wall + offset))
        if duplicate:
            for post_at, offset, status in posts:
                dispatcher.schedule_status(
                    now + post_at + jittered(config.duplicate_delay), msg, status, int(wall + offset)
                )
        if config.reply_share > 0 and rng.random() < config.reply_share:
            self.replies_scheduled += 1
            choices = reply_choices(body, sent)
            dispatcher.schedule_call(
                now + last + jittered(config.reply_delay), partial(self._reply_job, msg, choices)
            )

    def _reply_job(self, msg: OutboundMessage, choices: list[dict[str, Any]]) -> WebhookJob:
        rng = self.rng
        message: dict[str, Any] = {}
        if choices:
            message["context"] = {"from": msg.display_phone_number, "id": msg.wamid}
        message.update(
            {
                "from": msg.recipient_id,
                "id": self._wamid(msg.recipient_id),
                "timestamp": str(int(time.time())),
            }
        )
        if choices:
            message.update(rng.choice(choices))
        else:
            message.update({"type": "text", "text": {"body": rng.choice(_REPLY_TEXTS)}})
        self.windows[(msg.phone_number_id, msg.recipient_id)] = time.time()
        payload = inbound_payload(
            self.config.waba_id,
            msg.phone_number_id,
            msg.display_phone_number,
            wa_id=msg.recipient_id,
            name=self._profile_name(msg.recipient_id),
            message=message,
        )
        return payload, KIND_INBOUND

    @staticmethod
    def _profile_name(wa_id: str) -> str:
        return _PROFILE_NAMES[int(wa_id) % len(_PROFILE_NAMES)] if wa_id.isdigit() else "Customer"

    # -- media -------------------------------------------------------------------------------

    async def _upload(self, request: web.Request, phone_number_id: str) -> web.Response:
        if not self._known_number(phone_number_id):
            raise unknown_object(phone_number_id, "post")
        form = await request.post()
        product = form.get("messaging_product")
        if product is None:
            raise GraphError(100, "The parameter messaging_product is required.")
        if product != "whatsapp":
            raise GraphError(100, f'Param messaging_product must be one of {{WHATSAPP}} - got "{product}".')
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            raise GraphError(100, "The parameter file is required.")
        data = upload.file.read()
        if not data:
            raise GraphError(131053, "The uploaded file is empty.")
        mime = form.get("type")
        mime_type = (
            mime if isinstance(mime, str) and mime else upload.content_type or "application/octet-stream"
        )
        media_id = self._new_id()
        self.media[media_id] = _Media(data, mime_type, hashlib.sha256(data).hexdigest(), upload.filename)
        self.media_uploads += 1
        return _json({"id": media_id})

    def _media_info(self, request: web.Request, media_id: str) -> web.Response:
        item = self.media[media_id]
        return _json(
            {
                "messaging_product": "whatsapp",
                "url": f"{request.scheme}://{request.host}/_emulator/media/{media_id}",
                "mime_type": item.mime_type,
                "sha256": item.sha256,
                "file_size": len(item.data),
                "id": media_id,
            }
        )

    async def handle_media_download(self, request: web.Request) -> web.StreamResponse:
        try:
            self._authenticate(request)
        except GraphError as err:
            return self._error(err)
        item = self.media.get(request.match_info["media_id"])
        if item is None:
            return self._error(GraphError(100, "Media not found.", http_status=404))
        headers = {}
        if item.filename:
            headers["Content-Disposition"] = f'attachment; filename="{item.filename}"'
        return web.Response(body=item.data, content_type=item.mime_type, headers=headers)

    # -- phone numbers -----------------------------------------------------------------------

    def _number(self, phone_number_id: str) -> dict[str, Any]:
        config = self.config
        return {
            "verified_name": config.verified_name,
            "code_verification_status": "VERIFIED",
            "display_phone_number": self.display_number(phone_number_id),
            "quality_rating": "GREEN",
            "platform_type": "CLOUD_API",
            "throughput": {"level": config.throughput_level},
            "whatsapp_business_manager_messaging_limit": config.messaging_limit,
            "name_status": "APPROVED",
            "id": phone_number_id,
        }

    def _number_info(self, request: web.Request, phone_number_id: str) -> web.Response:
        info = self._number(phone_number_id)
        fields = request.query.get("fields")
        if fields:
            wanted = {f.strip() for f in fields.split(",")}
            info = {k: v for k, v in info.items() if k in wanted or k == "id"}
        return _json(info)

    def _list_numbers(self) -> web.Response:
        data = [self._number(pnid) for pnid in self.config.numbers]
        return _json(
            {"data": data, "paging": {"cursors": {"before": _cursor(0), "after": _cursor(len(data))}}}
        )

    # -- templates ---------------------------------------------------------------------------

    def _list_templates(self, request: web.Request) -> web.Response:
        query = request.query
        records = [t for t in self.templates.values() if t.status != "DELETED"]
        if "name" in query:
            records = [t for t in records if t.name == query["name"]]
        if "status" in query:
            records = [t for t in records if t.status == query["status"].upper()]
        if "language" in query:
            records = [t for t in records if t.language == query["language"]]
        if "category" in query:
            records = [t for t in records if t.category == query["category"].upper()]
        try:
            limit = int(query.get("limit", "25"))
        except ValueError:
            raise GraphError(100, "Param limit must be an integer.") from None
        if not 1 <= limit <= 1000:
            raise GraphError(100, "Param limit must be between 1 and 1000.")
        start = _uncursor(query["after"]) if "after" in query else 0
        page = records[start : start + limit]
        data = [t.to_graph() for t in page]
        if "fields" in query:
            wanted = {f.strip() for f in query["fields"].split(",")} | {"id"}
            data = [{k: v for k, v in item.items() if k in wanted} for item in data]
        body: dict[str, Any] = {"data": data}
        if page:
            end = start + len(page)
            paging: dict[str, Any] = {"cursors": {"before": _cursor(start), "after": _cursor(end)}}
            if end < len(records):
                paging["next"] = str(request.url.update_query(after=_cursor(end), limit=str(limit)))
            if start > 0:
                paging["previous"] = str(
                    request.url.update_query(after=_cursor(max(0, start - limit)), limit=str(limit))
                )
            body["paging"] = paging
        return _json(body)

    async def _create_template(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            raise GraphError(100, "Request body is not valid JSON.") from None
        record = parse_template_definition(body, self._new_id())
        existing = self.templates.get((record.name, record.language))
        if existing is not None and existing.status != "DELETED":
            raise GraphError(
                100,
                f"Content in this language already exists for template {record.name} ({record.language}).",
                subcode=2388024,
            )
        self.templates[(record.name, record.language)] = record
        self.templates_created += 1
        self.dispatcher.schedule_call(
            asyncio.get_running_loop().time() + self.config.template_review_delay,
            partial(self._review_template, record),
        )
        return _json({"id": record.id, "status": record.status, "category": record.category})

    def _review_template(self, record: TemplateRecord) -> WebhookJob | None:
        if record.status != "PENDING" or self.templates.get((record.name, record.language)) is not record:
            return None
        if "reject" in record.name:
            record.status, record.reason = "REJECTED", "INVALID_FORMAT"
        else:
            record.status, record.reason = "APPROVED", "NONE"
        return self._template_job(record), KIND_TEMPLATE

    def _template_job(self, record: TemplateRecord) -> dict[str, Any]:
        return template_status_payload(
            self.config.waba_id,
            template_id=record.id,
            name=record.name,
            language=record.language,
            category=record.category,
            event=record.status,
            reason=record.reason,
        )

    def _delete_template(self, request: web.Request) -> web.Response:
        name = request.query.get("name")
        if not name:
            raise GraphError(100, "The parameter name is required.")
        hsm_id = request.query.get("hsm_id")
        keys = [
            key for key, t in self.templates.items() if t.name == name and (hsm_id is None or t.id == hsm_id)
        ]
        if not keys:
            raise GraphError(100, f"Message template {name} not found.")
        for key in keys:
            del self.templates[key]
        return _json({"success": True})

    # -- control API -------------------------------------------------------------------------

    async def _control_json(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise _ControlError(400, "body is not valid JSON") from None
        if not isinstance(data, dict):
            raise _ControlError(400, "body must be a JSON object")
        return data

    async def handle_control(self, request: web.Request) -> web.StreamResponse:
        action = request.match_info["action"]
        method = request.method
        try:
            if action == "stats" and method == "GET":
                return _json(self.stats(summary=request.query.get("summary") in ("1", "true")))
            if action == "messages" and method == "GET":
                return self._control_messages(request)
            if action == "inbound" and method == "POST":
                return await self._control_inbound(await self._control_json(request))
            if action == "reset" and method == "POST":
                self.reset()
                return _json({"ok": True})
            if action == "config" and method == "GET":
                return _json(self.config_dict())
            if action == "config" and method == "POST":
                self.update_config(await self._control_json(request))
                return _json(self.config_dict())
            if action == "template-status" and method == "POST":
                return await self._control_template_status(await self._control_json(request))
            if action == "flush" and method == "POST":
                await self.dispatcher.flush()
                return _json({"pending_events": self.dispatcher.pending})
            raise _ControlError(404, f"unknown control endpoint {method} /_emulator/{action}")
        except _ControlError as err:
            return _json({"error": err.message}, err.status)

    def config_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self.config)
        data["fail_codes"] = list(self.config.fail_codes)
        return data

    def update_config(self, changes: dict[str, Any]) -> None:
        try:
            coerced = {name: _coerce(name, value) for name, value in changes.items()}
        except ValueError as exc:
            raise _ControlError(400, str(exc)) from None
        for name, value in coerced.items():
            setattr(self.config, name, value)
        if "seed" in coerced:
            self.rng = random.Random(coerced["seed"])

    def _control_messages(self, request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
            limit = int(request.query.get("limit", "1000"))
        except ValueError:
            raise _ControlError(400, "since and limit must be integers") from None
        messages = self.messages
        first = messages[0][0] if messages else self._message_seq + 1
        start = max(0, since - first + 1)
        out = []
        for seq, wamid, pnid, to, wa_id, mtype, callback, accepted_at, raw in messages[
            start : start + max(0, limit)
        ]:
            out.append(
                {
                    "seq": seq,
                    "id": wamid,
                    "phone_number_id": pnid,
                    "to": to,
                    "wa_id": wa_id,
                    "type": mtype,
                    "biz_opaque_callback_data": callback,
                    "accepted_at": accepted_at,
                    "body": json.loads(raw),
                }
            )
        last = out[-1]["seq"] if out else max(since, 0)
        return _json({"messages": out, "last_seq": last, "total": self._message_seq})

    def _control_phone_number_id(self, data: dict[str, Any]) -> str:
        pnid = data.get("phone_number_id")
        if pnid is None and len(self.config.numbers) == 1:
            pnid = next(iter(self.config.numbers))
        if not isinstance(pnid, str) or not pnid:
            raise _ControlError(400, "phone_number_id is required")
        if not self._known_number(pnid):
            raise _ControlError(404, f"unknown phone_number_id {pnid}")
        return pnid

    async def _control_inbound(self, data: dict[str, Any]) -> web.Response:
        pnid = self._control_phone_number_id(data)
        sender = data.get("from")
        wa_id = phone_digits(sender) if isinstance(sender, str) else None
        if wa_id is None:
            raise _ControlError(400, "from must be a phone number")
        display = self.display_number(pnid)
        timestamp = data.get("timestamp")
        message: dict[str, Any] = {}
        context = data.get("context")
        interactive_reply = any(k in data for k in ("button_reply", "list_reply", "button"))
        if context is None and interactive_reply:
            context = self.last_outbound.get((pnid, wa_id))
        if isinstance(context, str):
            message["context"] = {"from": display, "id": context}
        elif isinstance(context, dict):
            message["context"] = context
        wamid = self._wamid(wa_id)
        message.update(
            {
                "from": wa_id,
                "id": wamid,
                "timestamp": str(int(timestamp) if isinstance(timestamp, int | float) else int(time.time())),
            }
        )
        if isinstance(data.get("message"), dict):
            message.update(data["message"])
        elif isinstance(data.get("button_reply"), dict):
            reply = data["button_reply"]
            message.update(
                {
                    "type": "interactive",
                    "interactive": {
                        "type": "button_reply",
                        "button_reply": {
                            "id": str(reply.get("id", "")),
                            "title": str(reply.get("title", "")),
                        },
                    },
                }
            )
        elif isinstance(data.get("list_reply"), dict):
            message.update(
                {
                    "type": "interactive",
                    "interactive": {"type": "list_reply", "list_reply": data["list_reply"]},
                }
            )
        elif isinstance(data.get("button"), dict):
            button = data["button"]
            message.update(
                {
                    "type": "button",
                    "button": {
                        "payload": str(button.get("payload", button.get("text", ""))),
                        "text": str(button.get("text", "")),
                    },
                }
            )
        elif isinstance(data.get("text"), str):
            message.update({"type": "text", "text": {"body": data["text"]}})
        else:
            raise _ControlError(400, "one of text, button_reply, list_reply, button or message is required")
        name = data.get("name")
        payload = inbound_payload(
            self.config.waba_id,
            pnid,
            display,
            wa_id=wa_id,
            name=name if isinstance(name, str) and name else self._profile_name(wa_id),
            message=message,
        )
        self.windows[(pnid, wa_id)] = time.time()
        self.inbound_injected += 1
        posted, status = await self.dispatcher.post(payload)
        if posted:
            self.dispatcher.counters.delivered(KIND_INBOUND, 1)
        return _json({"id": wamid, "wa_id": wa_id, "posted": posted, "status": status, "payload": payload})

    async def _control_template_status(self, data: dict[str, Any]) -> web.Response:
        name, language, status = data.get("name"), data.get("language"), data.get("status")
        if not isinstance(name, str) or not isinstance(language, str) or not isinstance(status, str):
            raise _ControlError(400, "name, language and status are required")
        record = self.templates.get((name, language))
        if record is None:
            raise _ControlError(404, f"unknown template {name} ({language})")
        record.status = status.upper()
        reason = data.get("reason")
        record.reason = reason if isinstance(reason, str) else "NONE"
        posted, http_status = await self.dispatcher.post(self._template_job(record))
        if posted:
            self.dispatcher.counters.delivered(KIND_TEMPLATE, 1)
        return _json({"id": record.id, "status": record.status, "posted": posted, "http_status": http_status})

    # -- lifecycle ---------------------------------------------------------------------------

    async def on_startup(self, app: web.Application) -> None:
        await self.dispatcher.start()
        self.loop_stalls.start()

    async def on_cleanup(self, app: web.Application) -> None:
        await self.loop_stalls.close()
        await self.dispatcher.close()


class LoopStalls:
    """How late the emulator's event loop runs a 5 ms timer: a request that arrives while the
    loop is held up (by the emulator's own work, or the operating system not scheduling it) is
    stamped late, and requests sent evenly are then counted together. The stalls tell such a
    burst at the receiver from a burst of the sender."""

    TICK = 0.005
    THRESHOLD = 0.02  # seconds late before a tick counts as a stall
    KEEP = 500

    def __init__(self) -> None:
        self.max_lag = 0.0
        self.stalls: list[tuple[float, float]] = []  # (wall time the stall ended, seconds late)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="emulator-loop-stalls")

    def clear(self) -> None:
        self.max_lag = 0.0
        self.stalls.clear()

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.TICK
            await asyncio.sleep(self.TICK)
            lag = loop.time() - due
            if lag > self.max_lag:
                self.max_lag = lag
            if lag >= self.THRESHOLD:
                self.stalls.append((time.time(), lag))
                del self.stalls[: -self.KEEP]

    def as_dict(self) -> dict[str, Any]:
        return {"loop_lag_max_ms": round(self.max_lag * 1000, 1),
                "loop_stalls": [[round(t, 3), round(lag * 1000, 1)] for t, lag in self.stalls]}


EMULATOR_KEY = web.AppKey("emulator", Emulator)


def create_app(config: EmulatorConfig) -> web.Application:
    """The aiohttp application; its :class:`Emulator` is ``app[EMULATOR_KEY]``."""
    emulator = Emulator(config)
    app = web.Application(client_max_size=110 * 1024 * 1024)
    app[EMULATOR_KEY] = emulator
    app.router.add_get("/_emulator/media/{media_id}", emulator.handle_media_download)
    app.router.add_route("*", "/_emulator/{action}", emulator.handle_control)
    app.router.add_route("*", "/{tail:.*}", emulator.handle_graph)
    app.on_startup.append(emulator.on_startup)
    app.on_cleanup.append(emulator.on_cleanup)
    return app
