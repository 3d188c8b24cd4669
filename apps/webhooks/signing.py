"""The ``Parley-Signature`` header of tenant-facing webhooks.

``Parley-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``

The timestamp is signed with the body, so a captured request cannot be replayed later than the
receiver's tolerance. A header may carry several ``v1`` values (one per secret while a secret is
being rotated); a receiver accepts the request when any of them matches.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Parley-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    if not secret:
        raise ValueError("a webhook secret is required to sign a request")
    return f"t={int(timestamp)},{SCHEME}={_digest(secret, body, int(timestamp))}"


def parse(header: str) -> tuple[int | None, list[str]]:
    """``(timestamp, [v1 signatures])`` from a header value; ``(None, [])`` when malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in (header or "").split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not value.isdigit():
                return None, []
            timestamp = int(value)
        elif key == SCHEME and value:
            signatures.append(value.lower())
    return timestamp, signatures


def verify(secret: str, body: bytes, header: str, tolerance: int = DEFAULT_TOLERANCE_SECONDS,
           *, now: int | None = None) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its timestamp is within
    ``tolerance`` seconds of ``now`` (default: the current time). Constant-time comparison."""
    if not secret:
        return False
    timestamp, signatures = parse(header)
    if timestamp is None or not signatures:
        return False
    current = int(time.time()) if now is None else int(now)
    if tolerance is not None and abs(current - timestamp) > tolerance:
        return False
    expected = _digest(secret, body, timestamp)
    matched = False
    for candidate in signatures:
        # Compare against every value (no early exit) so timing says nothing about which matched.
        matched |= hmac.compare_digest(expected, candidate)
    return matched
