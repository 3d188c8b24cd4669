from __future__ import annotations

import hashlib
import hmac

import pytest

from apps.webhooks import signing

SECRET = "whsec_signing_test"
BODY = b'{"id":"evt_1","type":"message.received"}'
NOW = 1_750_000_000


def test_sign_is_the_documented_hmac():
    header = signing.sign(SECRET, BODY, NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"


def test_round_trip():
    header = signing.sign(SECRET, BODY, NOW)
    assert signing.verify(SECRET, BODY, header, now=NOW)
    assert signing.verify(SECRET, BODY, header, tolerance=300, now=NOW + 299)


@pytest.mark.parametrize("body", [BODY + b" ", BODY.replace(b"received", b"sent"), b""])
def test_tampered_body_fails(body):
    header = signing.sign(SECRET, BODY, NOW)
    assert not signing.verify(SECRET, body, header, now=NOW)


def test_wrong_secret_fails():
    header = signing.sign(SECRET, BODY, NOW)
    assert not signing.verify("whsec_other", BODY, header, now=NOW)
    assert not signing.verify("", BODY, header, now=NOW)


def test_old_and_future_timestamps_fail():
    header = signing.sign(SECRET, BODY, NOW)
    assert not signing.verify(SECRET, BODY, header, now=NOW + 301)
    assert not signing.verify(SECRET, BODY, header, now=NOW - 301)
    assert signing.verify(SECRET, BODY, header, tolerance=3600, now=NOW + 301)


def test_changed_timestamp_fails():
    header = signing.sign(SECRET, BODY, NOW)
    forged = header.replace(f"t={NOW}", f"t={NOW + 1}")
    assert not signing.verify(SECRET, BODY, forged, now=NOW)


@pytest.mark.parametrize("header", ["", "garbage", "t=abc,v1=00", f"t={NOW}", "v1=deadbeef", f"t={NOW},v2=00"])
def test_malformed_headers_fail(header):
    assert not signing.verify(SECRET, BODY, header, now=NOW)


def test_any_of_several_signatures_matches():
    good = signing.sign(SECRET, BODY, NOW).split(",")[1]
    header = f"t={NOW},v1={'0' * 64},{good}"
    assert signing.verify(SECRET, BODY, header, now=NOW)


def test_verify_uses_the_clock_by_default():
    import time

    header = signing.sign(SECRET, BODY, int(time.time()))
    assert signing.verify(SECRET, BODY, header)


def test_sign_needs_a_secret():
    with pytest.raises(ValueError):
        signing.sign("", BODY, NOW)
