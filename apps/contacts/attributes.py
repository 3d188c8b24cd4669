"""Typed custom attributes: reading what a person typed (a form field, a CSV cell, a filter
value) into the JSON value stored in ``Contact.attributes``."""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from apps.core.exceptions import ApplicationError

from .models import AttributeDefinition

T = AttributeDefinition.Type

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TRUE_WORDS = frozenset({"true", "yes", "y", "1", "on", "t", "si", "sí", "oui", "ja"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "off", "f", "non", "nein"})
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d")


class InvalidAttributeValue(ApplicationError):
    code = "invalid_attribute_value"


def key_from_label(label: str) -> str:
    """'Signup date' -> 'signup_date' (a key that reads well in filters and exports)."""
    key = re.sub(r"[^a-z0-9]+", "_", label.strip().lower()).strip("_")
    if key and not key[0].isalpha():
        key = f"a_{key}"
    return key[:64]


def parse_value(type: str, raw: Any) -> Any:
    """The stored JSON value for ``raw`` (a string from a form or a file, or already a JSON
    value), or ``None`` when it is blank. Raises ``InvalidAttributeValue`` with a sentence
    saying what was expected."""
    if raw is None:
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if text == "":
            return None
    else:
        text = str(raw)
    if type == T.TEXT:
        return text[:1000] if isinstance(raw, str) else text
    if type == T.NUMBER:
        if isinstance(raw, bool):
            raise InvalidAttributeValue(f"“{text}” is not a number.")
        if isinstance(raw, int | float) and math.isfinite(raw):
            return raw
        if text.isdigit() and len(text) < 16:
            return int(text)
        cleaned = text.replace(" ", "").replace("\u00a0", "")
        if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?", cleaned):
            cleaned = cleaned.replace(",", "")  # 1,234.5
        elif re.fullmatch(r"[-+]?\d+,\d+", cleaned):
            cleaned = cleaned.replace(",", ".")  # 12,5 (decimal comma)
        try:
            number = Decimal(cleaned)
        except InvalidOperation:
            raise InvalidAttributeValue(f"“{text}” is not a number.") from None
        if not number.is_finite():
            raise InvalidAttributeValue(f"“{text}” is not a number.")
        if number == number.to_integral_value() and abs(number) < 2**53:
            return int(number)
        return float(number)
    if type == T.DATE:
        if isinstance(raw, datetime):
            return raw.date().isoformat()
        if isinstance(raw, date):
            return raw.isoformat()
        if len(text) == 10 and text[4] == "-" and text[7] == "-":
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError:
                pass
        candidate = text[:10] if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ].*", text) else text
        for fmt in DATE_FORMATS:
            try:
                return datetime.strptime(candidate, fmt).date().isoformat()
            except ValueError:
                continue
        raise InvalidAttributeValue(f"“{text}” is not a date; write it as YYYY-MM-DD (e.g. 2025-03-31).")
    if type == T.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        word = text.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise InvalidAttributeValue(f"“{text}” is not yes or no.")
    raise InvalidAttributeValue(f"Unknown attribute type {type!r}.")


def display_value(type: str, value: Any) -> str:
    """How a stored value reads on a page or in an export."""
    if value is None:
        return ""
    if type == T.BOOLEAN or isinstance(value, bool):
        return "Yes" if value else "No"
    if type == T.DATE and isinstance(value, str):
        try:
            return date.fromisoformat(value).strftime("%b %-d, %Y")
        except ValueError:
            return value
    return str(value)
