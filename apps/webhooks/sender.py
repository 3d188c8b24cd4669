"""HTTP for tenant-facing webhooks: sign one Parley event and POST it to an endpoint.

Parley-format bodies carry ``Parley-Signature`` (``signing``); Meta-format bodies carry Meta's
``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(endpoint secret, raw body)>`` instead, the
endpoint's secret playing the part of the app secret.

``post_event`` never raises for what the network or the receiver does: a refused URL, a DNS
failure, a timeout, a reset connection or a non-2xx answer all come back as a ``PostResult``
that the caller records as an attempt. Anything else is a bug and propagates.

SSRF: unless private URLs are allowed (``WEBHOOKS_ALLOW_PRIVATE_URLS``, which follows ``DEBUG``
when unset), the host is resolved and every address it resolves to must be public; then the
socket's actual peer is checked again right after connecting and before a byte is sent, so a
DNS answer that changes between the two (rebinding) cannot reach an internal address either.
Environment proxies are ignored for the same reason.
"""

from __future__ import annotations

import codecs
import hashlib
import hmac
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from apps.core.netsafety import blocked_reason

from . import signing

TIMEOUT_SECONDS = 10.0
USER_AGENT = "Parley-Webhooks/1"
EXCERPT_BYTES = 2048
# Bodies up to this size are read to the end so the connection can be reused; larger ones
# are cut off (and the connection dropped) once the excerpt is in hand.
DRAIN_BYTES = 64 * 1024
ERROR_CHARS = 2000
ALLOWED_SCHEMES = ("http", "https")


class UnsafeURLError(Exception):
    """The URL is not one Parley posts to (scheme, host, or a non-public address)."""


@dataclass(frozen=True)
class PostResult:
    status_code: int | None = None
    response_excerpt: str = ""
    error: str = ""
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def private_urls_allowed() -> bool:
    allowed = getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_URLS", None)
    return bool(settings.DEBUG) if allowed is None else bool(allowed)


def _refusal(host: str, address: str, reason: str) -> str:
    shown = host if host == address else f"{host} ({address})"
    return (f"{shown} is a {reason} address; webhooks are only posted to public addresses "
            "(WEBHOOKS_ALLOW_PRIVATE_URLS allows private ones)")


def check_url(url: str) -> None:
    """Raise ``UnsafeURLError`` unless ``url`` is http(s) with a host and, when private URLs are
    not allowed, every address the host resolves to is public. DNS failures raise ``OSError``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURLError(f"invalid URL: {exc}") from exc
    if parts.scheme not in ALLOWED_SCHEMES:
        raise UnsafeURLError(f"unsupported URL scheme {parts.scheme!r}; use http or https")
    host = parts.hostname
    if not host:
        raise UnsafeURLError("the URL has no host")
    if private_urls_allowed():
        return
    port = port or (443 if parts.scheme == "https" else 80)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for info in infos:
        address = str(info[4][0])
        reason = blocked_reason(address)
        if reason:
            raise UnsafeURLError(_refusal(host, address, reason))


class _PeerCheckMixin:
    """Checks the connected peer before anything is written to the socket."""

    host: str

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        if not private_urls_allowed():
            address = str(sock.getpeername()[0])
            reason = blocked_reason(address)
            if reason:
                sock.close()
                raise UnsafeURLError(_refusal(self.host, address, reason))
        return sock


class _CheckedHTTPConnection(_PeerCheckMixin, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_PeerCheckMixin, HTTPSConnection):
    pass


class _CheckedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class CheckedAdapter(HTTPAdapter):
    """A requests adapter whose connections refuse non-public peers (see ``_PeerCheckMixin``)."""

    def init_poolmanager(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _CheckedHTTPConnectionPool,
            "https": _CheckedHTTPSConnectionPool,
        }


_local = threading.local()


def _session() -> requests.Session:
    """One pooled session per thread (``requests.Session`` is not thread-safe)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False
        adapter = CheckedAdapter(max_retries=0, pool_connections=32, pool_maxsize=4)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _local.session = session
    return session


def build_headers(*, secret: str, body: bytes, event_id: str, event_type: str,
                  timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Parley-Event-Id": event_id,
        "Parley-Event-Type": event_type,
        signing.HEADER: signing.sign(secret, body, timestamp),
    }


META_SIGNATURE_HEADER = "X-Hub-Signature-256"


def meta_signature(secret: str, body: bytes) -> str:
    """Meta's ``X-Hub-Signature-256`` value for ``body``."""
    if not secret:
        raise ValueError("a webhook secret is required to sign a request")
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def build_meta_headers(*, secret: str, body: bytes, event_id: str, event_type: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Parley-Event-Id": event_id,
        "Parley-Event-Type": event_type,
        META_SIGNATURE_HEADER: meta_signature(secret, body),
    }


def _elapsed_ms(started: float) -> int:
    return max(0, int((time.monotonic() - started) * 1000))


def _clip(text: str) -> str:
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def _excerpt(raw: bytes) -> str:
    """``raw`` as text of at most ``EXCERPT_BYTES`` UTF-8 bytes (a character cut in half at the
    end is dropped; invalid bytes become U+FFFD)."""
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(raw[:EXCERPT_BYTES], final=False)
    while len(text.encode("utf-8")) > EXCERPT_BYTES:
        text = text[:-1]
    return text


def _read_excerpt(response: requests.Response, deadline: float) -> tuple[str, str]:
    """The first ``EXCERPT_BYTES`` of the body, and an error text if reading it failed."""
    kept = bytearray()
    total = 0
    try:
        for chunk in response.iter_content(chunk_size=8192):
            if len(kept) < EXCERPT_BYTES:
                kept += chunk[: EXCERPT_BYTES - len(kept)]
            total += len(chunk)
            if total > DRAIN_BYTES or time.monotonic() > deadline:
                break
    except requests.RequestException as exc:
        return _excerpt(bytes(kept)), _clip(f"error reading the response: {exc}")
    return _excerpt(bytes(kept)), ""


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float = TIMEOUT_SECONDS) -> PostResult:
    """POST ``body`` to ``url`` once: no redirects, no retries, ``timeout`` per connect and read."""
    started = time.monotonic()
    try:
        check_url(url)
        response = _session().post(url, data=body, headers=headers, timeout=timeout,
                                   allow_redirects=False, stream=True)
    except UnsafeURLError as exc:
        return PostResult(error=_clip(f"refused: {exc}"), duration_ms=_elapsed_ms(started))
    except requests.Timeout as exc:
        return PostResult(error=_clip(f"timeout: no answer within {timeout:g} s ({exc})"),
                          duration_ms=_elapsed_ms(started))
    except requests.RequestException as exc:
        return PostResult(error=_clip(f"connection error: {exc}"), duration_ms=_elapsed_ms(started))
    except OSError as exc:  # DNS resolution in check_url
        return PostResult(error=_clip(f"connection error: {exc}"), duration_ms=_elapsed_ms(started))
    with response:
        excerpt, read_error = _read_excerpt(response, deadline=started + timeout)
    return PostResult(status_code=response.status_code, response_excerpt=excerpt, error=read_error,
                      duration_ms=_elapsed_ms(started))


def post_event(*, url: str, secret: str, event_id: str, event_type: str, body: bytes,
               timeout: float = TIMEOUT_SECONDS) -> PostResult:
    """Sign ``body`` (the JSON envelope, exactly as sent) with ``secret`` and POST it."""
    headers = build_headers(secret=secret, body=body, event_id=event_id, event_type=event_type)
    return post(url, body=body, headers=headers, timeout=timeout)


def post_meta_event(*, url: str, secret: str, event_id: str, event_type: str, body: bytes,
                    timeout: float = TIMEOUT_SECONDS) -> PostResult:
    """Sign ``body`` (Meta's webhook envelope, exactly as sent) the way Meta does and POST it."""
    headers = build_meta_headers(secret=secret, body=body, event_id=event_id, event_type=event_type)
    return post(url, body=body, headers=headers, timeout=timeout)
