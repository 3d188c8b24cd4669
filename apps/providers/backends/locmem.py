"""A backend that sends nothing: it records every message in ``outbox`` and answers with
scripted results. For tests of everything around the provider (like Django's locmem mail
backend and anymail's test backend)."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from apps.providers.exceptions import ProviderError
from apps.providers.outbound import OutboundMessage, SendResult

from .base import BaseBackend, _run_coroutine

# Trusted by test settings (PARLEY_TRUSTED_MEDIA_HOSTS); it never resolves.
MEDIA_HOST = "media.locmem.invalid"
outbox: list[tuple[str, OutboundMessage]] = []
_scripted: deque[SendResult | ProviderError] = deque()
_lock = threading.Lock()
_counter = itertools.count(1)


def reset() -> None:
    with _lock:
        outbox.clear()
        _scripted.clear()


def script(*results: SendResult | ProviderError) -> None:
    """Queue the answers for the next sends, in order; afterwards every send succeeds."""
    with _lock:
        _scripted.extend(results)


class LocmemBackend(BaseBackend):
    provider_name = "locmem"

    def _answer(self, message: OutboundMessage) -> SendResult:
        with _lock:
            outbox.append((self.phone_number.phone_number_id or self.phone_number.display_number, message))
            scripted = _scripted.popleft() if _scripted else None
            n = next(_counter)
        if isinstance(scripted, ProviderError):
            raise scripted
        if scripted is not None:
            return scripted
        return SendResult(provider_message_id=f"wamid.LOCMEM{n:012d}", wa_id=message.to, message_status=None,
                          raw={"messages": [{"id": f"wamid.LOCMEM{n:012d}"}]}, status_code=200, duration_ms=0)

    def send(self, message: OutboundMessage) -> SendResult:
        return self._answer(message)

    def send_batch(self, messages: Sequence[OutboundMessage], *, concurrency: int = 64,
                   gate: Callable[[int], Awaitable[int]] | None = None) -> list[SendResult | ProviderError | None]:
        """As the real backends: what ``gate`` grants is "posted" (recorded), the rest is None."""
        results: list[SendResult | ProviderError | None] = [None] * len(messages)

        async def post() -> None:
            posted = 0
            while posted < len(messages):
                granted = len(messages) - posted if gate is None else await gate(len(messages) - posted)
                if granted <= 0:
                    return
                for index in range(posted, min(len(messages), posted + granted)):
                    try:
                        results[index] = self._answer(messages[index])
                    except ProviderError as exc:
                        results[index] = exc
                posted += granted

        _run_coroutine(post())
        return results

    def get_media_url(self, media_id: str) -> dict[str, Any]:
        return {"url": f"https://{MEDIA_HOST}/{media_id}", "mime_type": "image/jpeg", "id": media_id}

    def download_media(self, url: str) -> tuple[bytes, str]:
        return b"locmem media bytes for " + url.encode(), "image/jpeg"

    def upload_media(self, *, content: bytes, mime_type: str, filename: str) -> str:
        return f"locmem-media-{next(_counter)}"

    def check_connection(self) -> dict[str, Any]:
        return {"ok": True}
