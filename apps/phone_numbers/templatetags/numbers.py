"""Small display helpers for the numbers settings pages."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django import template
from django.utils import timezone

register = template.Library()

RECENT = timedelta(hours=24)


@register.filter
def limit_tier(value: str | None) -> str:
    """Meta's messaging limit tier in words: TIER_1K → '1K customers / 24 h'."""
    if not value:
        return ""
    text = str(value).upper().removeprefix("TIER_")
    if text == "UNLIMITED":
        return "Unlimited"
    if re.fullmatch(r"\d+[KM]?", text):
        return f"{text} customers / 24 h"
    return str(value)


@register.filter
def is_recent(value: datetime | None) -> bool:
    return bool(value) and timezone.now() - value < RECENT
