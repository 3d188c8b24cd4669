"""E.164 normalization for WhatsApp ids (digits only, no '+'), built on phonenumbers."""

from __future__ import annotations

import functools

import phonenumbers

from .exceptions import ApplicationError


class InvalidPhoneNumber(ApplicationError):
    code = "invalid_recipient"
    http_status = 422


def normalize_wa_id(raw: str | int | None, *, default_region: str | None = None) -> str:
    """'+1 (650) 555-1234' -> '16505551234'.

    Numbers without '+' are read as international (country code first) unless
    ``default_region`` (ISO 3166 alpha-2, e.g. "IN") says how to read a national number.
    We require a *possible* number (right length for its country) rather than a *valid* one,
    because WhatsApp test numbers (+1 555 …) are not in the numbering plan.
    """
    text = str(raw or "").strip()
    if not text:
        raise InvalidPhoneNumber("The phone number is empty.", details={"input": text})
    return _normalized(text, default_region)


@functools.lru_cache(maxsize=16_384)
def _normalized(text: str, default_region: str | None) -> str:
    """normalize_wa_id's parsing, remembered per input (a send to a known customer parses the
    same text again; a refusal raises and is not remembered)."""
    candidates = []
    if text.startswith("+"):
        candidates.append((text, None))
    elif text.startswith("00"):
        candidates.append(("+" + text[2:], None))
    else:
        if default_region:
            candidates.append((text, default_region.upper()))
        candidates.append(("+" + text, None))
    for number, region in candidates:
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164).lstrip("+")
    raise InvalidPhoneNumber(f"{text!r} is not a possible phone number in international format.",
                             details={"input": text})


def format_display(wa_id: str) -> str:
    """'16505551234' -> '+1 650-555-1234' for people; falls back to '+digits'."""
    try:
        parsed = phonenumbers.parse("+" + wa_id.lstrip("+"), None)
    except phonenumbers.NumberParseException:
        return "+" + wa_id.lstrip("+")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
