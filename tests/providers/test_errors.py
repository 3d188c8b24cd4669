"""The error-code tables, their explanations, and the exception classes built from them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.exceptions import SuspiciousOperation

from apps.providers.backends.base import build_provider_error, http_status_error, parse_retry_after
from apps.providers.errors import (
    GUPSHUP_ERRORS,
    META_ERRORS,
    ErrorExplanation,
    explain,
    explain_gupshup_message,
)
from apps.providers.exceptions import (
    ProviderConfigurationError,
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    ProviderUnknownOutcome,
    UnsupportedFeature,
    WebhookValidationFailure,
)

# protocol.md A4: the table, the [PYWA] additions, 132018 and 470.
META_TABLE_CODES = [0, 190, 3, 10, 4, 80007, 130429, 131048, 131056, 133016, 368, 131031, 1, 2, 33, 100, 130472,
                    131000, 131005, 131008, 131009, 131016, 131021, 131026, 131042, 131045, 131047, 131051, 131052,
                    131053, 131057, 132000, 132001, 132005, 132007, 132012, 132015, 132016, 132068, 132069, 133000,
                    133004, 135000]
META_EXTRA_CODES = [131030, 131037, 131049, 131050, 131062, 131063, 131064, 130497, 137000, 131020, 131041, 131059,
                    132018, 470]
META_TRANSIENT = {4, 80007, 130429, 131056, 133016, 1, 2, 131000, 131016, 131057, 133004}
GUPSHUP_CODES = [500, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1010, 1011, 1012, 4001, 4002, 4003, 4004, 4005]


@pytest.mark.parametrize("code", META_TABLE_CODES + META_EXTRA_CODES)
def test_every_documented_meta_code_is_explained(code):
    explained = explain("meta_cloud", code)
    assert explained.known
    assert explained.code == code
    assert explained.title
    assert explained.explanation.endswith(".") and len(explained.explanation) > 30
    assert explained.transient is (code in META_TRANSIENT)


@pytest.mark.parametrize("code", [200, 250, 299])
def test_permission_range(code):
    explained = explain("meta_cloud", code)
    assert explained.known and not explained.transient and explained.category == "auth"


@pytest.mark.parametrize("code", range(133005, 133016))
def test_registration_range(code):
    explained = explain("meta_cloud", code)
    assert explained.known and not explained.transient


@pytest.mark.parametrize(("code", "retry_after"), [(130429, 1.0), (4, 60.0), (80007, 60.0), (131057, 60.0)])
def test_backoff_policy(code, retry_after):
    explained = explain("meta_cloud", code)
    assert explained.transient and explained.retry_after == retry_after


def test_pair_rate_limit_is_flagged():
    explained = explain("meta_cloud", 131056)
    assert explained.transient and explained.pair_rate_limited and explained.retry_after is None
    assert not any(info.pair_rate_limited for code, info in META_ERRORS.items() if code != 131056)


def test_legacy_470_reads_like_131047():
    assert explain("meta_cloud", 470).title == explain("meta_cloud", 131047).title
    assert "template" in explain("meta_cloud", 470).explanation


@pytest.mark.parametrize("code", [190, 0, 10, 131005])
def test_auth_codes_are_configuration_problems(code):
    assert explain("meta_cloud", code).category == "auth"


def test_unknown_code_fallback():
    explained = explain("meta_cloud", 987654)
    assert not explained.known
    assert explained.transient is False
    assert "987654" in explained.explanation and "987654" in explained.title


def test_no_code_fallback():
    explained = explain("gupshup", None)
    assert not explained.known and explained.code is None and explained.explanation


@pytest.mark.parametrize("code", GUPSHUP_CODES)
def test_every_gupshup_code_is_explained(code):
    explained = explain("gupshup", code)
    assert explained.known and explained.title and explained.explanation.endswith(".")
    assert explained.transient is (code in {500, 4001, 4002})


def test_gupshup_rate_limit_backs_off():
    assert explain("gupshup", 4001).retry_after == 60.0


@pytest.mark.parametrize("provider", ["gupshup", "gupshup_partner"])
def test_gupshup_passes_meta_codes_through(provider):
    assert explain(provider, 131047).title == META_ERRORS[131047].title
    assert explain(provider, 1002).title == GUPSHUP_ERRORS[1002].title


def test_meta_does_not_know_gupshup_codes():
    assert not explain("meta_cloud", 1002).known


@pytest.mark.parametrize(("text", "transient", "category"), [
    ("Invalid Destination", False, "recipient"),
    ("invalid app details.", False, "config"),
    ("Authentication Failed", False, "auth"),
    ("Too Many Requests", True, "rate_limit"),
])
def test_gupshup_messages(text, transient, category):
    explained = explain_gupshup_message("gupshup", text)
    assert explained.known and explained.transient is transient and explained.category == category


def test_unknown_gupshup_message():
    explained = explain_gupshup_message("gupshup", "Something odd")
    assert not explained.known and explained.title == "Something odd" and explained.explanation


# -- exceptions -----------------------------------------------------------------------------------

def test_exception_hierarchy():
    assert issubclass(ProviderTransientError, ProviderError)
    assert issubclass(ProviderPermanentError, ProviderError)
    assert issubclass(ProviderUnknownOutcome, ProviderError)
    assert issubclass(UnsupportedFeature, ProviderPermanentError)
    assert issubclass(ProviderConfigurationError, ProviderPermanentError)
    assert issubclass(WebhookValidationFailure, ProviderError)
    assert issubclass(WebhookValidationFailure, SuspiciousOperation)
    assert not issubclass(ProviderUnknownOutcome, ProviderTransientError)


def test_exception_defaults_and_attributes():
    assert ProviderTransientError("x").transient is True
    assert ProviderPermanentError("x").transient is False
    assert ProviderUnknownOutcome("x").transient is False
    error = ProviderTransientError("boom", provider="meta_cloud", code=130429, title="Throughput", explanation="Slow down.",
                                   retry_after=2.0, status_code=400, response_excerpt="{}", fbtrace_id="F")
    assert str(error) == "boom" and error.message == "boom"
    assert (error.code, error.title, error.explanation, error.retry_after) == (130429, "Throughput", "Slow down.", 2.0)
    assert error.as_dict()["error_class"] == "ProviderTransientError"
    assert error.as_dict()["code"] == 130429
    assert "130429" in repr(error)
    assert str(ProviderPermanentError(explanation="Words.")) == "Words."


# -- building errors ------------------------------------------------------------------------------

def test_is_transient_overrides_the_table():
    explained = explain("meta_cloud", 100)
    error = build_provider_error(explained, status_code=400, headers={}, body=b"{}", transient=True)
    assert type(error) is ProviderTransientError


def test_unknown_code_takes_transience_from_status():
    explained = explain("meta_cloud", 987654)
    assert type(build_provider_error(explained, status_code=503, headers={}, body=b"")) is ProviderTransientError
    assert type(build_provider_error(explained, status_code=400, headers={}, body=b"")) is ProviderPermanentError


def test_retry_after_header_beats_policy():
    explained = explain("meta_cloud", 130429)
    error = build_provider_error(explained, status_code=400, headers={"retry-after": "9"}, body=b"")
    assert error.retry_after == 9.0
    error = build_provider_error(explained, status_code=400, headers={"Retry-After": "4"}, body=b"")
    assert error.retry_after == 4.0


def test_auth_errors_become_configuration_errors():
    error = build_provider_error(explain("meta_cloud", 190), status_code=401, headers={}, body=b"")
    assert type(error) is ProviderConfigurationError


def test_details_are_added_to_the_explanation():
    error = build_provider_error(explain("meta_cloud", 131047), status_code=400, headers={}, body=b"x" * 2000,
                                 details="24 hours have passed")
    assert error.details == "24 hours have passed"
    assert error.explanation.endswith("Provider says: 24 hours have passed")
    assert len(error.response_excerpt) == 500


@pytest.mark.parametrize(("status", "cls"), [(429, ProviderTransientError), (500, ProviderTransientError),
                                             (503, ProviderTransientError), (401, ProviderConfigurationError),
                                             (403, ProviderConfigurationError), (400, ProviderPermanentError),
                                             (404, ProviderPermanentError)])
def test_http_status_errors(status, cls):
    assert type(http_status_error("meta_cloud", status, {}, b"")) is cls


def test_parse_retry_after():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None


def test_error_explanation_is_frozen():
    explained = ErrorExplanation("meta_cloud", 1, "t", "e.", True)
    with pytest.raises(AttributeError):
        explained.code = 2  # type: ignore[misc]
