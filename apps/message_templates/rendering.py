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


# --- the WhatsApp bubble (template pages and the builder's live preview) ----------------------

_FORMATTING = (
    (re.compile(r"\*([^*\n]+)\*"), "strong"),
    (re.compile(r"(?<![A-Za-z0-9])_([^_\n]+)_(?![A-Za-z0-9])"), "em"),
    (re.compile(r"~([^~\n]+)~"), "s"),
    (re.compile(r"```([^`]+)```"), "code"),
)


def _formatted(text: str, part: str, examples: dict[str, str] | None) -> str:
    """Escaped text with WhatsApp's *bold*, _italic_, ~strike~ and ```mono```, each variable in a
    highlighted span (its example when one is given)."""
    from django.utils.html import escape

    pieces: list[str] = []
    position = 0
    for match in PLACEHOLDER.finditer(text or ""):
        pieces.append(escape(text[position:match.start()]))
        name = match.group(1)
        example = (examples or {}).get(f"{part}.{name}", "")
        shown = escape(example) if example else escape(match.group(0))
        title = escape(match.group(0))
        css = "var is-filled" if example else "var"
        pieces.append(f'<span class="{css}" title="{title}">{shown}</span>')
        position = match.end()
    pieces.append(escape(text[position:]))
    html = "".join(pieces)
    for pattern, tag in _FORMATTING:
        html = pattern.sub(rf"<{tag}>\1</{tag}>", html)
    return html.replace("\n", "<br>")


def template_bubble(components: list[dict], *, examples: dict[str, str] | None = None) -> dict[str, Any]:
    """What the customer sees: ``header`` (HTML) or ``header_media`` ("image", "video",
    "document", "location"), ``body`` (HTML), ``footer`` (text) and ``buttons``
    (``[{"kind", "text", "detail"}]``). Every string that came from a template is escaped."""
    from django.utils.safestring import mark_safe

    result: dict[str, Any] = {"header": "", "header_media": "", "body": "", "footer": "", "buttons": []}
    for component in components or []:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            fmt = str(component.get("format", "TEXT")).upper()
            if fmt == "TEXT":
                result["header"] = mark_safe(_formatted(str(component.get("text", "")), "header", examples))  # noqa: S308
            else:
                result["header_media"] = MEDIA_FORMATS.get(fmt, fmt.lower())
        elif kind == "BODY":
            result["body"] = mark_safe(_formatted(str(component.get("text", "")), "body", examples))  # noqa: S308
        elif kind == "FOOTER":
            result["footer"] = str(component.get("text", ""))
        elif kind == "BUTTONS":
            for button in component.get("buttons") or []:
                if not isinstance(button, dict):
                    continue
                btype = str(button.get("type", "")).upper()
                text = str(button.get("text", "")) or ("Copy offer code" if btype == "COPY_CODE" else "")
                detail = str(button.get("url") or button.get("phone_number") or button.get("example") or "")
                if isinstance(button.get("example"), list):
                    detail = str(button.get("url", ""))
                result["buttons"].append({"kind": btype.lower(), "text": text, "detail": detail})
    return result
