"""Gupshup Partner v3 callbacks: Meta's envelope with Gupshup's extras.

Differences from Meta handled here: the extra status ``enqueued`` (→ accepted); ``statuses[].gs_id``
(Gupshup's message id, which its v3 send API answered, so it is the ``provider_message_id``);
top-level ``gs_app_id``, which names the number when ``metadata`` is missing; ``entry[].id``
and ``object`` may be missing; timestamps in seconds or milliseconds. Billing events keep the
v2 envelope even on v3 subscriptions, so a v2-shaped body is read by the v2 parser.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.providers.events import ACCEPTED, PROVIDER_GUPSHUP_PARTNER, Event, ParseError

from ._common import item_list, opt_str
from .gupshup import parse_v2
from .meta import STATUS_MAP as META_STATUS_MAP
from .meta import Dialect, foreign_object, parse_entries

STATUS_MAP: Mapping[str, str] = {**META_STATUS_MAP, "enqueued": ACCEPTED}


def parse_gupshup_partner(payload: Any) -> list[Event]:
    """Every event in a Gupshup Partner v3 callback body. ParseError if it is not one."""
    if not isinstance(payload, dict):
        raise ParseError(f"Gupshup v3 callback body is a {type(payload).__name__}, not an object")
    if "entry" not in payload:
        if "type" in payload and "payload" in payload:
            return parse_v2(payload, provider=PROVIDER_GUPSHUP_PARTNER)
        raise ParseError("Gupshup v3 callback has no 'entry'")
    dialect = Dialect(
        provider=PROVIDER_GUPSHUP_PARTNER,
        status_map=STATUS_MAP,
        gs_ids=True,
        app_route_key=opt_str(payload.get("gs_app_id")) or "",
    )
    foreign = foreign_object(payload, dialect)
    if foreign is not None:
        return [foreign]
    return parse_entries(item_list(payload["entry"], "'entry'"), dialect)
