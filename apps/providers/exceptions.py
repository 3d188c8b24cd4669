"""Errors raised by provider backends.

Every failure a backend reports is a ``ProviderError`` that says what happened in words an
agent can read (``title``, ``explanation``) and what the caller should do with it:

``ProviderTransientError``
    Nothing was delivered and trying again later can work: HTTP 5xx and 429, throughput and
    rate limits (130429, 4, 80007, 131056 …), and connection failures *before* the request
    left this machine. Honour ``retry_after`` when it is set.
``ProviderPermanentError``
    The provider refused the message; sending it again unchanged fails again.
    ``UnsupportedFeature`` and ``ProviderConfigurationError`` are permanent too.
``ProviderUnknownOutcome``
    The request was sent but no readable answer came back (read timeout, connection dropped
    mid-answer, a 2xx without a message id). The message may or may not have gone out, and the
    provider has no idempotency key, so it must never be resent blindly: wait for a status
    webhook carrying ``biz_opaque_callback_data`` to settle it.
"""

from __future__ import annotations

from django.core.exceptions import SuspiciousOperation


class ProviderError(Exception):
    """Base class. Attributes are always present; unknown ones are ``None`` or ``""``."""

    default_transient: bool = False

    def __init__(
        self,
        message: str = "",
        *,
        provider: str = "",
        code: int | None = None,
        error_subcode: int | None = None,
        title: str = "",
        explanation: str = "",
        details: str = "",
        transient: bool | None = None,
        retry_after: float | None = None,
        pair_rate_limited: bool = False,
        status_code: int | None = None,
        response_excerpt: str = "",
        fbtrace_id: str = "",
    ) -> None:
        self.provider = provider
        self.code = code
        self.error_subcode = error_subcode
        self.title = title
        self.explanation = explanation
        self.details = details
        self.transient = self.default_transient if transient is None else transient
        self.retry_after = retry_after
        self.pair_rate_limited = pair_rate_limited
        self.status_code = status_code
        self.response_excerpt = response_excerpt
        self.fbtrace_id = fbtrace_id
        super().__init__(message or explanation or title or self.__class__.__name__)

    @property
    def message(self) -> str:
        return str(self)

    def as_dict(self) -> dict[str, object]:
        """A JSON-serialisable summary, for attempt records and API error bodies."""
        return {
            "error_class": self.__class__.__name__,
            "provider": self.provider,
            "code": self.code,
            "error_subcode": self.error_subcode,
            "title": self.title,
            "explanation": self.explanation,
            "details": self.details,
            "transient": self.transient,
            "retry_after": self.retry_after,
            "pair_rate_limited": self.pair_rate_limited,
            "status_code": self.status_code,
            "fbtrace_id": self.fbtrace_id,
            "message": str(self),
        }

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({str(self)!r}, code={self.code!r}, status_code={self.status_code!r}, "
            f"transient={self.transient!r}, retry_after={self.retry_after!r})"
        )


class ProviderTransientError(ProviderError):
    """Not delivered; retry with backoff (honour ``retry_after``)."""

    default_transient = True


class ProviderPermanentError(ProviderError):
    """Refused; do not retry the same message."""

    default_transient = False


class ProviderUnknownOutcome(ProviderError):
    """Sent, answer lost: the message may have gone out. Never retried blindly."""

    default_transient = False


class UnsupportedFeature(ProviderPermanentError):
    """The provider cannot do what the message asks (a type, a field, an operation)."""


class ProviderConfigurationError(ProviderPermanentError):
    """The phone number is not set up to talk to its provider (missing or rejected credentials,
    missing ids). Fix the number's settings; retrying the message alone does not help."""


class WebhookValidationFailure(ProviderError, SuspiciousOperation):
    """A webhook failed authentication; Django turns SuspiciousOperation into HTTP 400."""
