"""What a stored template expects at send time, and what it looks like filled in.

Stored components use Meta's creation shape (``HEADER``/``BODY``/``FOOTER``/``BUTTONS``,
``{{1}}`` or ``{{first_name}}`` placeholders); sends use Meta's send shape (``header``/``body``/
``button`` components with ``parameters``). Pure functions: no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MEDIA_FORMATS = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "document", "LOCATION": "location"}


def placeholders(text: str) -> list[str]:
    """Distinct placeholder names in order of first appearance."""
    seen: list[str] = []
    for name in PLACEHOLDER.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


def _component(components: list[dict], kind: str) -> dict | None:
    return next((c for c in components or [] if str(c.get("type", "")).upper() == kind), None)


@dataclass
class TemplateShape:
    body: list[str] = field(default_factory=list)
    header_text: list[str] = field(default_factory=list)
    header_media: str | None = None  # "image" | "video" | "document" | "location"
    url_buttons: dict[int, int] = field(default_factory=dict)  # button index -> placeholder count


def template_shape(components: list[dict]) -> TemplateShape:
    shape = TemplateShape()
    body = _component(components, "BODY")
    if body:
        shape.body = placeholders(body.get("text", ""))
    header = _component(components, "HEADER")
    if header:
        fmt = str(header.get("format", "TEXT")).upper()
        if fmt == "TEXT":
            shape.header_text = placeholders(header.get("text", ""))
        else:
            shape.header_media = MEDIA_FORMATS.get(fmt)
    buttons = _component(components, "BUTTONS")
    for index, button in enumerate((buttons or {}).get("buttons", [])):
        if str(button.get("type", "")).upper() == "URL":
            count = len(placeholders(button.get("url", "")))
            if count:
                shape.url_buttons[index] = count
    return shape


def _send_component(components: list[dict], kind: str, index: int | None = None) -> dict | None:
    for component in components or []:
        if str(component.get("type", "")).lower() != kind:
            continue
        if index is None or str(component.get("index", "")) == str(index):
            return component
    return None


def parameter_problems(*, stored: list[dict], parameter_format: str, send_components: list[dict]) -> list[str]:
    """Why a send's parameters do not fit the stored template; empty when they do."""
    shape = template_shape(stored)
    problems: list[str] = []
    body = _send_component(send_components, "body")
    given = list((body or {}).get("parameters", []))
    if parameter_format == "named":
        names = [str(p.get("parameter_name", "")) for p in given]
        if sorted(names) != sorted(shape.body):
            problems.append(f"body expects named parameters {shape.body or 'none'}, got {names or 'none'}")
    elif len(given) != len(shape.body):
        problems.append(f"body expects {len(shape.body)} parameter(s), got {len(given)}")
    header = _send_component(send_components, "header")
    header_params = list((header or {}).get("parameters", []))
    if shape.header_media:
        if len(header_params) != 1 or header_params[0].get("type") != shape.header_media:
            problems.append(f"header expects one {shape.header_media} parameter")
    elif len(header_params) != len(shape.header_text):
        problems.append(f"header expects {len(shape.header_text)} parameter(s), got {len(header_params)}")
    for index, count in shape.url_buttons.items():
        button = _send_component(send_components, "button", index)
        got = len((button or {}).get("parameters", []))
        if got != count:
            problems.append(f"URL button {index} expects {count} parameter(s), got {got}")
    return problems


def _parameter_text(parameter: dict[str, Any]) -> str:
    kind = parameter.get("type")
    if kind == "text":
        return str(parameter.get("text", ""))
    if kind in ("currency", "date_time"):
        return str((parameter.get(kind) or {}).get("fallback_value", ""))
    return str(parameter.get(kind, "")) if kind else ""


def render_body(*, stored: list[dict], parameter_format: str, send_components: list[dict]) -> str:
    """The body text as the customer will read it."""
    body = _component(stored, "BODY")
    text = (body or {}).get("text", "")
    params = list((_send_component(send_components, "body") or {}).get("parameters", []))
    if parameter_format == "named":
        values = {str(p.get("parameter_name")): _parameter_text(p) for p in params}
    else:
        values = {str(i): _parameter_text(p) for i, p in enumerate(params, start=1)}
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
