"""The contacts page's query string <-> the ``selectors.contact_filter`` shape.

``?q=ana&tag=vip&tag=lisbon&tag_mode=all&opt_in=opted_in&a_key=plan&a_op=eq&a_val=gold``
is ``{"q": "ana", "tags": ["vip", "lisbon"], "opt_in": "opted_in",
"attributes": [{"key": "plan", "op": "eq", "value": "gold"}]}``. Attribute values are typed
with the attribute's definition (a number compares as a number, a date as an ISO date).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.http import QueryDict

from .attributes import InvalidAttributeValue, parse_value
from .models import AttributeDefinition, Contact
from .selectors import ATTRIBUTE_OPERATORS

OPERATOR_LABELS = {
    "eq": "is", "ne": "is not", "contains": "contains", "exists": "is set", "missing": "is not set",
    "gt": "is more than", "gte": "is at least", "lt": "is less than", "lte": "is at most",
}
VALUELESS = ("exists", "missing")


@dataclass
class ParsedFilters:
    filters: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # attribute rows as typed, for the form

    @property
    def active(self) -> bool:
        return bool(self.filters)


def filters_from_query(query: QueryDict, definitions: list[AttributeDefinition]) -> ParsedFilters:
    types = {d.key: d.type for d in definitions}
    parsed = ParsedFilters()
    filters = parsed.filters
    q = query.get("q", "").strip()
    if q:
        filters["q"] = q[:200]
    tags = list(dict.fromkeys(t.strip() for t in query.getlist("tag") if t.strip()))
    if tags:
        filters["any_tags" if query.get("tag_mode") == "any" else "tags"] = tags
    opt_in = query.get("opt_in", "")
    if opt_in in Contact.OptIn.values:
        filters["opt_in"] = opt_in
    elif opt_in:
        parsed.errors.append(f"Unknown opt-in state “{opt_in}”.")
    rules = []
    for key, op, raw in zip(query.getlist("a_key"), query.getlist("a_op"), query.getlist("a_val"), strict=False):
        key = key.strip()
        parsed.rows.append({"key": key, "op": op, "value": raw})
        if not key:
            continue
        if op not in ATTRIBUTE_OPERATORS:
            parsed.errors.append(f"Unknown comparison “{op}”.")
            continue
        rule: dict[str, Any] = {"key": key, "op": op}
        if op not in VALUELESS:
            kind = types.get(key, AttributeDefinition.Type.TEXT)
            if op == "contains":
                kind = AttributeDefinition.Type.TEXT
            try:
                value = parse_value(kind, raw)
            except InvalidAttributeValue as exc:
                parsed.errors.append(f"{key}: {exc.message}")
                continue
            if value is None:
                parsed.errors.append(f"Give a value to compare “{key}” with.")
                continue
            rule["value"] = value
        rules.append(rule)
    if rules:
        filters["attributes"] = rules
    return parsed


def filters_to_query(filters: dict[str, Any] | None) -> str:
    """The query string that shows ``filters`` on the contacts page (a saved segment's link)."""
    filters = filters or {}
    pairs: list[tuple[str, Any]] = []
    if filters.get("q"):
        pairs.append(("q", filters["q"]))
    for tag in filters.get("tags") or ():
        pairs.append(("tag", tag))
    if filters.get("any_tags"):
        pairs += [("tag", tag) for tag in filters["any_tags"]] + [("tag_mode", "any")]
    if filters.get("opt_in"):
        pairs.append(("opt_in", filters["opt_in"]))
    for rule in filters.get("attributes") or ():
        value = rule.get("value", "")
        if isinstance(value, bool):
            value = "yes" if value else "no"
        pairs += [("a_key", rule.get("key", "")), ("a_op", rule.get("op", "eq")), ("a_val", value)]
    return urlencode(pairs)


def describe_filters(filters: dict[str, Any] | None) -> list[str]:
    """Short phrases for the chips above the list and the segments menu."""
    filters = filters or {}
    words = []
    if filters.get("q"):
        words.append(f"“{filters['q']}”")
    if filters.get("tags"):
        words.append("tagged " + " + ".join(filters["tags"]))
    if filters.get("any_tags"):
        words.append("tagged " + " or ".join(filters["any_tags"]))
    if filters.get("opt_in"):
        words.append(dict(Contact.OptIn.choices).get(filters["opt_in"], filters["opt_in"]).lower())
    for rule in filters.get("attributes") or ():
        value = rule.get("value", "")
        if isinstance(value, bool):
            value = "yes" if value else "no"
        op = OPERATOR_LABELS.get(rule.get("op", "eq"), rule.get("op"))
        words.append(f"{rule.get('key')} {op}" + ("" if rule.get("op") in VALUELESS else f" {value}"))
    return words
