"""Template variables for campaigns: which values a template needs, where each comes from for a
contact (the campaign's mapping), and the send components built from them.

A mapping is ``{variable: {"source": ..., "key": ..., "value": ..., "fallback": ...}}``:

* ``name``        the contact's name (or WhatsApp profile name)
* ``first_name``  the first word of that name
* ``wa_id``       the contact's number, ``+`` and digits
* ``attribute``   ``contact.attributes[key]``
* ``literal``     ``value``, the same for everyone

``fallback`` is used when the source gives nothing. Variable names are the template's own:
``"1"``, ``"2"`` … for positional templates, ``"first_name"`` … for named ones; a text header's
are ``"header.1"`` (or ``"header.<name>"``), a media header's link is ``"header.media"`` and a URL
button's suffix is ``"button.<index>"``. An explicit recipient may carry its own values, which
win over the mapping.

Pure functions: no database.
"""

from __future__ import annotations

import re
from typing import Any

from apps.message_templates.rendering import render_body, template_shape

SOURCES = ("name", "first_name", "wa_id", "attribute", "literal")
# WhatsApp refuses parameter text with new lines, tabs or more than four spaces in a row (132007).
_BAD_WHITESPACE = re.compile(r"[\r\n\t]+|\s{5,}")
MAX_VALUE_LENGTH = 1024


def template_variables(*, template) -> list[str]:
    """The variable names the template needs, body first, then header and URL buttons."""
    shape = template_shape(template.components or [])
    names = list(shape.body)
    names += [f"header.{name}" for name in shape.header_text]
    if shape.header_media in ("image", "video", "document"):
        names.append("header.media")
    names += [f"button.{index}" for index in sorted(shape.url_buttons)]
    return names


def unsupported_template_reason(*, template) -> str:
    """Why a campaign cannot fill this template ('' when it can)."""
    shape = template_shape(template.components or [])
    if shape.header_media == "location":
        return "Templates with a location header cannot be used in a campaign."
    if any(count > 1 for count in shape.url_buttons.values()):
        return "A URL button with more than one variable is not supported."
    return ""


def clean_value(value: Any) -> str:
    text = "" if value is None else str(value)
    return _BAD_WHITESPACE.sub(" ", text).strip()[:MAX_VALUE_LENGTH]


def _from_source(rule: dict, contact) -> str:
    source = rule.get("source") or "literal"
    if source == "literal":
        return clean_value(rule.get("value"))
    if contact is None:
        return ""
    if source == "name":
        return clean_value(contact.name or contact.profile_name)
    if source == "first_name":
        full = clean_value(contact.name or contact.profile_name)
        return full.split(" ")[0] if full else ""
    if source == "wa_id":
        return f"+{contact.wa_id}" if contact.wa_id else ""
    if source == "attribute":
        value = (contact.attributes or {}).get(str(rule.get("key") or ""))
        return "" if isinstance(value, dict | list) else clean_value(value)
    return ""


def resolve_variables(*, template, mapping: dict, contact, given: dict | None = None,
                      names: list[str] | None = None) -> tuple[dict[str, str], list[str]]:
    """The values for one contact (``{variable: text}``) and the variables that had no value and
    no fallback. ``given``: an explicit recipient's own values; ``names``: the template's
    variables when the caller already has them (planning resolves thousands per template)."""
    names = template_variables(template=template) if names is None else names
    given = given or {}
    values: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        value = clean_value(given.get(name)) if given.get(name) not in (None, "") else ""
        if not value:
            rule = mapping.get(name) if isinstance(mapping, dict) else None
            if isinstance(rule, dict):
                value = _from_source(rule, contact) or clean_value(rule.get("fallback"))
            elif isinstance(rule, str):  # a bare string is a literal
                value = clean_value(rule)
        if value:
            values[name] = value
        else:
            missing.append(name)
    return values, missing


def mapping_problems(*, template, mapping: dict) -> list[str]:
    """Why a mapping cannot fill the template for every contact (names: variables uncovered)."""
    problems = []
    if not isinstance(mapping, dict):
        return ["The variable mapping must be an object."]
    for name in template_variables(template=template):
        rule = mapping.get(name)
        if isinstance(rule, str) and rule.strip():
            continue
        if not isinstance(rule, dict):
            problems.append(f"Variable {{{{{name}}}}} has no value: map it to a contact field or give a text.")
            continue
        source = rule.get("source") or "literal"
        if source not in SOURCES:
            problems.append(f"Variable {{{{{name}}}}}: unknown source {source!r} (use one of {', '.join(SOURCES)}).")
        elif source == "attribute" and not str(rule.get("key") or "").strip():
            problems.append(f"Variable {{{{{name}}}}}: say which attribute (key).")
        elif source == "literal" and not clean_value(rule.get("value")) and not clean_value(rule.get("fallback")):
            problems.append(f"Variable {{{{{name}}}}}: the text is empty.")
    return problems


def _text_parameter(name: str, value: str, named: bool) -> dict:
    if named:
        return {"type": "text", "parameter_name": name, "text": value}
    return {"type": "text", "text": value}


def send_components(*, template, values: dict[str, str]) -> list[dict]:
    """Meta's send-shape components for the template filled with ``values``."""
    shape = template_shape(template.components or [])
    named = template.parameter_format == "named"
    components: list[dict] = []
    if shape.header_text:
        components.append({"type": "header", "parameters": [
            _text_parameter(name, values.get(f"header.{name}", ""), named) for name in shape.header_text]})
    elif shape.header_media in ("image", "video", "document"):
        components.append({"type": "header", "parameters": [
            {"type": shape.header_media, shape.header_media: {"link": values.get("header.media", "")}}]})
    if shape.body:
        components.append({"type": "body", "parameters": [
            _text_parameter(name, values.get(name, ""), named) for name in shape.body]})
    for index in sorted(shape.url_buttons):
        components.append({"type": "button", "sub_type": "url", "index": str(index),
                           "parameters": [{"type": "text", "text": values.get(f"button.{index}", "")}]})
    return components


def template_content(*, template, values: dict[str, str]) -> tuple[dict, str]:
    """The message content to queue and the body as the customer will read it."""
    components = send_components(template=template, values=values)
    content = {"name": template.name, "language": {"code": template.language}}
    if components:
        content["components"] = components
    body = render_body(stored=template.components or [], parameter_format=template.parameter_format,
                       send_components=components)
    return content, body
