"""The provider backend contract, modelled on anymail's backends.

``send()`` is a template method that subclasses do not override::

    request = self.build_request(message)        # pure; may raise UnsupportedFeature
    answer  = <HTTP transport>                   # ProviderTransientError / ProviderUnknownOutcome
    result  = self.parse_send_response(answer.status_code, answer.headers, answer.body, request, message)

``send_batch()`` does the same for many messages concurrently over a pooled aiohttp session kept
from one batch to the next: the throughput path. ``send()`` uses a module-level pooled ``requests.Session``.

Both transports tell apart a failure *before* the request left (connection refused, DNS, TLS,
connect timeout → ``ProviderTransientError``, safe to retry) from one *after* it was sent (read
timeout, connection dropped mid-answer → ``ProviderUnknownOutcome``, never retried blindly).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import email.utils
import json as jsonlib
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode

import aiohttp
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from apps.providers.errors import ErrorExplanation
from apps.providers.exceptions import (
    ProviderConfigurationError,
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    ProviderUnknownOutcome,
    UnsupportedFeature,
)
from apps.providers.outbound import OutboundMessage, SendResult

if TYPE_CHECKING:
    from apps.phone_numbers.models import PhoneNumber

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 15.0
DEFAULT_BATCH_CONCURRENCY = 64
EXCERPT_CHARS = 500
USER_AGENT = "Parley/1.0"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_session: requests.Session | None = None
_session_lock = threading.Lock()


def _forget_session_after_fork() -> None:
    # A forked worker must not share the parent's pooled sockets.
    global _session, _session_lock
    _session = None
    _session_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_session_after_fork)


def http_session() -> requests.Session:
    """The process-wide pooled session for single sends and management calls."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                session = requests.Session()
                adapter = HTTPAdapter(pool_connections=32, pool_maxsize=64, max_retries=0)
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                session.headers["User-Agent"] = USER_AGENT
                _session = session
    return _session


def dump_json(value: Any) -> str:
    """Compact JSON, as sent on the wire (request bodies and Gupshup's JSON-in-form fields)."""
    return jsonlib.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ProviderRequest:
    """Everything needed to make one HTTP request; built by ``build_request`` without I/O.

    Exactly one of ``json`` (sent as UTF-8 JSON), ``data`` (form-encoded, or multipart fields
    when ``files`` is given) or nothing is the body. ``files`` maps a field name to
    ``(filename, content, mime_type)``.
    """

    method: str
    url: str
    headers: dict[str, str]
    json: Any = None
    data: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None

    def body_bytes(self) -> bytes | None:
        if self.files is not None:
            raise ValueError("multipart requests are encoded by the transport")
        if self.json is not None:
            return dump_json(self.json).encode()
        if self.data is not None:
            return urlencode(self.data).encode()
        return None


@dataclass(frozen=True)
class HttpAnswer:
    status_code: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    duration_ms: int

    def json(self) -> Any:
        return parse_json(self.body)


def parse_json(body: bytes) -> Any:
    """The decoded JSON body, or None when it is empty or not JSON."""
    if not body:
        return None
    try:
        return jsonlib.loads(body)
    except ValueError:
        return None


def excerpt(body: bytes) -> str:
    return body[:EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:EXCERPT_CHARS]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(seconds, 0.0)


def int_or_none(value: Any) -> int | None:
    """An integer from a JSON value (int or digit string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def unreadable_success(provider: str, status_code: int, body: bytes) -> ProviderUnknownOutcome:
    """A 2xx answer without a readable message id: the message was probably sent."""
    return ProviderUnknownOutcome(
        f"{provider}: HTTP {status_code} without a message id",
        provider=provider,
        title="Accepted without a message id",
        explanation="The provider accepted the request but its answer has no message id. The message "
                    "was probably sent; Parley waits for the status webhook to learn its id.",
        status_code=status_code,
        response_excerpt=excerpt(body),
    )


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value by case-insensitive name."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def is_transient_status(status_code: int | None) -> bool:
    return status_code is not None and (status_code >= 500 or status_code == 429)


def build_provider_error(
    explained: ErrorExplanation,
    *,
    status_code: int | None,
    headers: Mapping[str, str],
    body: bytes,
    transient: bool | None = None,
    details: str = "",
    error_subcode: int | None = None,
    fbtrace_id: str = "",
    provider_message: str = "",
) -> ProviderError:
    """Turn an explained error into the right ProviderError subclass.

    Transience: an explicit ``transient`` (Meta's ``is_transient``) wins; then a known code's
    table entry; then the HTTP status (5xx and 429 are transient).
    """
    if transient is None:
        transient = explained.transient if explained.known else is_transient_status(status_code)
    retry_after = parse_retry_after(header(headers, "retry-after"))
    if retry_after is None and transient:
        retry_after = explained.retry_after
    explanation = explained.explanation
    if details:
        explanation = f"{explanation} Provider says: {details}"
    if transient:
        cls: type[ProviderError] = ProviderTransientError
    elif explained.category in ("auth", "config") or (not explained.known and status_code in (401, 403)):
        cls = ProviderConfigurationError
    else:
        cls = ProviderPermanentError
    code_part = f" {explained.code}" if explained.code is not None else ""
    status_part = f" (HTTP {status_code})" if status_code is not None else ""
    text = f"{explained.provider} error{code_part}{status_part}: {explained.title}"
    if provider_message and provider_message != explained.title:
        text = f"{text} - {provider_message}"
    return cls(
        text,
        provider=explained.provider,
        code=explained.code,
        error_subcode=error_subcode,
        title=explained.title,
        explanation=explanation,
        details=details,
        transient=transient,
        retry_after=retry_after,
        pair_rate_limited=explained.pair_rate_limited,
        status_code=status_code,
        response_excerpt=excerpt(body),
        fbtrace_id=fbtrace_id,
    )


def http_status_error(provider: str, status_code: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """An error answer whose body Parley cannot read: judge by the HTTP status alone."""
    if status_code == 429:
        title, words = "Too many requests", "The provider is rate limiting requests. Parley retries later."
    elif status_code >= 500:
        title, words = "Provider server error", "The provider had a server error. Parley retries later."
    elif status_code in (401, 403):
        title, words = "Not authorised", "The provider rejected the credentials. Update the number's credentials."
    else:
        title, words = "Request rejected", f"The provider rejected the request with HTTP {status_code}."
    explained = ErrorExplanation(provider, None, title, words, is_transient_status(status_code), known=False)
    return build_provider_error(explained, status_code=status_code, headers=headers, body=body)


def _requests_failed_before_sending(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError | requests.exceptions.ProxyError):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason: Any = exc.args[0] if exc.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        # NewConnectionError and NameResolutionError subclass ConnectTimeoutError in urllib3 2.
        return isinstance(reason, ConnectTimeoutError)
    return False


def _aiohttp_failed_before_sending(exc: BaseException) -> bool:
    return isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)


class BaseBackend:
    """One phone number's connection to its provider."""

    provider_name: ClassVar[str]

    def __init__(self, *, phone_number: PhoneNumber, **options: Any) -> None:
        if not getattr(self, "provider_name", ""):
            raise TypeError(f"{type(self).__name__} must set provider_name")
        self.phone_number = phone_number
        self.connect_timeout = float(options.pop("connect_timeout", DEFAULT_CONNECT_TIMEOUT))
        self.read_timeout = float(options.pop("read_timeout", DEFAULT_READ_TIMEOUT))
        self.session: requests.Session | None = options.pop("session", None)
        if options:
            raise TypeError(f"{type(self).__name__} got unknown options: {', '.join(sorted(options))}")

    # -- sending (template methods) -------------------------------------------------------

    def send(self, message: OutboundMessage) -> SendResult:
        request = self.build_request(message)
        answer = self.perform(request)
        result = self.parse_send_response(answer.status_code, answer.headers, answer.body, request, message)
        return replace(result, duration_ms=answer.duration_ms)

    def send_batch(
        self, messages: Sequence[OutboundMessage], *, concurrency: int = DEFAULT_BATCH_CONCURRENCY,
        gate: Callable[[int], Awaitable[int]] | None = None,
    ) -> list[SendResult | ProviderError | None]:
        """Send many messages concurrently over a pooled aiohttp session.

        ``gate``, when given, paces the batch: ``await gate(n)`` grants up to ``n`` more sends
        (a rate limiter's tokens, see apps.providers.ratelimit.TokenGate) and each granted
        message is posted at once; when the gate grants 0, the messages not yet posted are left
        alone. Returns one entry per message, in input order: a SendResult, the ProviderError
        that message met (a message that cannot be built is never posted), or None for a
        message the gate left unposted (nothing was sent: it may simply go again later).
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        results: list[SendResult | ProviderError | None] = [None] * len(messages)
        prepared: list[tuple[int, ProviderRequest]] = []
        for index, message in enumerate(messages):
            try:
                prepared.append((index, self.build_request(message)))
            except ProviderError as exc:
                results[index] = exc
        if prepared:
            posted = _run_coroutine(self._send_prepared(prepared, messages, results, concurrency, gate))
            if posted < len(prepared) and gate is None:
                raise RuntimeError("send_batch left messages unposted without a gate")
        return results

    async def _send_prepared(
        self,
        prepared: list[tuple[int, ProviderRequest]],
        messages: Sequence[OutboundMessage],
        results: list[SendResult | ProviderError | None],
        concurrency: int,
        gate: Callable[[int], Awaitable[int]] | None,
    ) -> int:
        """Post what the gate grants (everything without one); returns how many were posted."""
        session = await _batch_session(concurrency)
        # sock_connect, not connect: waiting for a free pooled connection is not a timeout.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout, sock_read=self.read_timeout)

        outgoing = _Outgoing()

        async def one(index: int, request: ProviderRequest) -> None:
            mark = outgoing.start()
            try:
                answer = await self._perform_async(session, request, timeout, mark)
                result = self.parse_send_response(
                    answer.status_code, answer.headers, answer.body, request, messages[index]
                )
                results[index] = replace(result, duration_ms=answer.duration_ms)
            except ProviderError as exc:
                results[index] = exc
            finally:
                mark.written()

        posts: list[asyncio.Task] = []
        posted = 0
        try:
            while posted < len(prepared):
                if gate is not None:
                    # Ask for more tokens only once the posts already granted are on the wire: a
                    # post that waits for a connection (a cold start, every pooled connection
                    # busy) would otherwise go out late and bunch with the next ones, and the
                    # provider would see more than the budget in a second.
                    await outgoing.at_most(GATE_UNSENT_LIMIT)
                granted = len(prepared) - posted if gate is None else await gate(len(prepared) - posted)
                if granted <= 0:
                    break
                posts += [asyncio.ensure_future(one(index, request))
                          for index, request in prepared[posted:posted + granted]]
                posted += granted
        finally:
            # Even when the gate fails (its store unreachable), the posts already made are seen
            # through to their answers before the error goes on.
            await asyncio.gather(*posts)
        return posted

    # -- transports -----------------------------------------------------------------------

    def perform(self, request: ProviderRequest) -> HttpAnswer:
        """Make one request with the pooled ``requests`` session."""
        session = self.session or http_session()
        timeout = (self.connect_timeout, self.read_timeout)
        started = time.monotonic()
        try:
            if request.files is not None:
                response = session.request(request.method, request.url, headers=request.headers,
                                           data=request.data, files=request.files, timeout=timeout)
            else:
                response = session.request(request.method, request.url, headers=request.headers,
                                           data=request.body_bytes(), timeout=timeout)
            body = response.content
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as exc:
            raise self.configuration_error(f"invalid provider URL {request.url!r}: {exc}") from exc
        except requests.RequestException as exc:
            raise self.transport_error(request, exc, before_sending=_requests_failed_before_sending(exc)) from exc
        return HttpAnswer(
            status_code=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=body,
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    async def _perform_async(self, session: aiohttp.ClientSession, request: ProviderRequest,
                             timeout: aiohttp.ClientTimeout, mark: _PostMark | None = None) -> HttpAnswer:
        if request.files is not None:
            raise ValueError("send_batch does not upload files")
        started = time.monotonic()
        try:
            async with session.request(request.method, request.url, headers=request.headers,
                                       data=request.body_bytes(), timeout=timeout,
                                       trace_request_ctx=mark) as response:
                body = await response.read()
                status_code = response.status
                headers = {k.lower(): v for k, v in response.headers.items()}
        except aiohttp.InvalidURL as exc:
            raise self.configuration_error(f"invalid provider URL {request.url!r}: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self.transport_error(request, exc, before_sending=_aiohttp_failed_before_sending(exc)) from exc
        return HttpAnswer(status_code, headers, body, int((time.monotonic() - started) * 1000))

    def transport_error(self, request: ProviderRequest, exc: BaseException, *, before_sending: bool) -> ProviderError:
        reason = f"{type(exc).__name__}: {exc}"
        if before_sending:
            return ProviderTransientError(
                f"{self.provider_name}: could not connect ({reason})",
                provider=self.provider_name,
                title="Could not connect to the provider",
                explanation="Parley could not open a connection to the provider, so nothing was sent. "
                            "It will try again.",
                details=reason,
                transient=True,
            )
        if request.method.upper() in SAFE_METHODS:
            return ProviderTransientError(
                f"{self.provider_name}: no answer to {request.method} ({reason})",
                provider=self.provider_name,
                title="No answer from the provider",
                explanation="The provider did not answer in time. The request only reads data and "
                            "can be repeated.",
                details=reason,
                transient=True,
            )
        return ProviderUnknownOutcome(
            f"{self.provider_name}: request sent but no answer ({reason})",
            provider=self.provider_name,
            title="No answer from the provider",
            explanation="The request reached the provider but no answer came back (timeout or dropped "
                        "connection). The message may have been sent; Parley waits for the provider's "
                        "status webhook instead of sending it again.",
            details=reason,
        )

    # -- helpers for subclasses -----------------------------------------------------------

    def configuration_error(self, problem: str) -> ProviderConfigurationError:
        number = getattr(self.phone_number, "display_number", "") or "this number"
        return ProviderConfigurationError(
            f"{self.provider_name}: {problem}",
            provider=self.provider_name,
            title="Number not configured",
            explanation=f"The phone number {number} is not fully set up for {self.provider_name}: "
                        f"{problem}. Fix it in the number's settings.",
        )

    def credential(self, key: str) -> str:
        credentials = self.phone_number.credentials or {}
        value = credentials.get(key) if isinstance(credentials, Mapping) else None
        if not isinstance(value, str) or not value.strip():
            raise self.configuration_error(f"the credential {key!r} is missing")
        return value.strip()

    def require(self, attribute: str) -> str:
        value = getattr(self.phone_number, attribute, "") or ""
        if not str(value).strip():
            raise self.configuration_error(f"{attribute} is empty")
        return str(value).strip()

    def request_json(self, request: ProviderRequest) -> Any:
        """Perform a management request and return its JSON, raising ProviderError on errors."""
        answer = self.perform(request)
        data = answer.json()
        if not 200 <= answer.status_code < 300 or data is None:
            raise self.error_from_answer(answer.status_code, answer.headers, answer.body)
        return data

    def download(self, url: str, headers: dict[str, str]) -> tuple[bytes, str]:
        answer = self.perform(ProviderRequest("GET", url, headers))
        if not 200 <= answer.status_code < 300:
            if answer.status_code == 404:
                raise ProviderPermanentError(
                    f"{self.provider_name}: media URL not found (HTTP 404)",
                    provider=self.provider_name, title="Media URL expired or missing",
                    explanation="The media URL no longer works (media URLs expire after a few minutes). "
                                "Fetch a fresh URL for the media id and download again.",
                    status_code=404, response_excerpt=excerpt(answer.body),
                )
            raise self.error_from_answer(answer.status_code, answer.headers, answer.body)
        content_type = answer.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
        return answer.body, content_type

    def error_from_answer(self, status_code: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        """The ProviderError an error answer stands for. Backends read their error envelopes."""
        return http_status_error(self.provider_name, status_code, headers, body)

    def unsupported(self, what: str, hint: str = "") -> UnsupportedFeature:
        explanation = f"{self.provider_name} cannot {what}."
        if hint:
            explanation = f"{explanation} {hint}"
        return UnsupportedFeature(explanation, provider=self.provider_name, title="Not supported by this provider",
                                  explanation=explanation)

    # -- hooks ----------------------------------------------------------------------------

    def build_request(self, message: OutboundMessage) -> ProviderRequest:
        raise NotImplementedError(f"{type(self).__name__}.build_request")

    def parse_send_response(
        self, status_code: int, headers: Mapping[str, str], body: bytes, request: ProviderRequest,
        message: OutboundMessage,
    ) -> SendResult:
        raise NotImplementedError(f"{type(self).__name__}.parse_send_response")

    def upload_media(self, *, content: bytes, mime_type: str, filename: str) -> str:
        raise NotImplementedError(f"{type(self).__name__}.upload_media")

    def get_media_url(self, media_id: str) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__}.get_media_url")

    def download_media(self, url: str) -> tuple[bytes, str]:
        raise NotImplementedError(f"{type(self).__name__}.download_media")

    def list_templates(self) -> Iterator[dict[str, Any]]:
        raise NotImplementedError(f"{type(self).__name__}.list_templates")

    def create_template(self, payload: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__}.create_template")

    def delete_template(self, *, name: str, template_id: str = "") -> dict[str, Any]:
        raise self.unsupported("delete templates through its API",
                               "Delete the template in the provider's console, then sync templates.")

    def check_connection(self) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__}.check_connection")


# A gated batch asks for more tokens only while at most this many granted posts are still
# waiting to be written (for a connection to open or come free).
GATE_UNSENT_LIMIT = 8


class _PostMark:
    """One post of a batch, until its request headers are on the wire (or it fails first)."""

    __slots__ = ("outgoing", "pending")

    def __init__(self, outgoing: _Outgoing) -> None:
        self.outgoing, self.pending = outgoing, True

    def written(self) -> None:
        if self.pending:
            self.pending = False
            self.outgoing.unsent -= 1
            self.outgoing.changed.set()


class _Outgoing:
    """How many of a batch's posts are granted but not yet written."""

    def __init__(self) -> None:
        self.unsent = 0
        self.changed = asyncio.Event()

    def start(self) -> _PostMark:
        self.unsent += 1
        return _PostMark(self)

    async def at_most(self, limit: int) -> None:
        while self.unsent > limit:
            self.changed.clear()
            await self.changed.wait()


async def _on_headers_sent(session: aiohttp.ClientSession, context: Any, params: Any) -> None:
    mark = context.trace_request_ctx
    if isinstance(mark, _PostMark):
        mark.written()


_HEADERS_SENT = aiohttp.TraceConfig()
_HEADERS_SENT.on_request_headers_sent.append(_on_headers_sent)
_HEADERS_SENT.freeze()


# The batch transport keeps one event loop per thread (a worker process has one) and, on it, one
# pooled aiohttp session per concurrency: the connections to the provider stay open from one
# batch to the next instead of being opened again for every batch. A pooled connection idle for
# longer than BATCH_KEEPALIVE_SECONDS is closed rather than reused, well inside the keep-alive
# servers allow (Meta's Graph API and the emulator keep idle connections far longer), so a POST
# is not written onto a connection the server has already dropped.
BATCH_KEEPALIVE_SECONDS = 10.0


class _BatchTransport:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.sessions: dict[int, aiohttp.ClientSession] = {}

    def usable(self) -> bool:
        return self.pid == os.getpid() and not self.loop.is_closed()

    async def session(self, concurrency: int) -> aiohttp.ClientSession:
        session = self.sessions.get(concurrency)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency,
                                             keepalive_timeout=BATCH_KEEPALIVE_SECONDS)
            session = self.sessions[concurrency] = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": USER_AGENT}, trace_configs=[_HEADERS_SENT])
        return session

    def close(self) -> None:
        if not self.usable():
            return
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            self.loop.run_until_complete(session.close())
        self.loop.close()


_batch_local = threading.local()
_batch_transports: list[_BatchTransport] = []


def _batch_transport() -> _BatchTransport:
    transport = getattr(_batch_local, "transport", None)
    if transport is None or not transport.usable():
        transport = _batch_local.transport = _BatchTransport()
        _batch_transports.append(transport)
    return transport


async def _batch_session(concurrency: int) -> aiohttp.ClientSession:
    """The running thread's pooled session for ``concurrency``."""
    return await _batch_transport().session(concurrency)


@atexit.register
def close_batch_transports() -> None:
    """Close the kept sessions and loops (at exit, so aiohttp has no unclosed session to warn of)."""
    while _batch_transports:
        _batch_transports.pop().close()


def _run_coroutine(coro: Any) -> Any:
    """Run a batch coroutine on this thread's kept loop; from a thread that already runs an event
    loop, on a helper thread whose loop and sessions are closed when it ends."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _batch_transport().loop.run_until_complete(coro)

    def helper() -> Any:
        transport = _batch_transport()
        try:
            return transport.loop.run_until_complete(coro)
        finally:
            _batch_transports.remove(transport)
            transport.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(helper).result()
