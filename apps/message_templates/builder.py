"""The template builder: a draft typed into the form becomes exactly the body of Meta's
``POST /<WABA_ID>/message_templates`` (protocol.md A8), after checking Meta's rules so the
obvious rejections are explained before anything is submitted.

Pure functions, no database: ``draft_from_data`` reads the form's fields (a QueryDict or a
dict of lists), ``draft_problems`` lists what is wrong per field, ``build_payload`` builds the
request body, and ``draft_components`` the components the live preview shows (also for a draft
that is not valid yet).

Meta's limits enforced here: name ``^[a-z0-9_]+$`` ≤ 512; header text ≤ 60 characters with at
most one variable; body ≤ 1,024 characters, variables not at its very start or end, positional
ones numbered {{1}}…{{n}} without gaps, named ones lowercase ``[a-z][a-z0-9_]*``; an example for
every variable; footer ≤ 60 characters without variables; at most 10 buttons, quick replies
together, at most 2 URL buttons, 1 phone number button and 1 copy-code button; button text ≤ 25
characters; a URL button's URL ≤ 2,000 characters with at most one variable, at its end; a copy
code example ≤ 15 characters; authentication templates: Meta's fixed body, an optional security
recommendation, a code expiry of 1–90 minutes and one copy-code button.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .rendering import placeholders

NAME_RE = re.compile(r"^[a-z0-9_]+$")
NAMED_VAR_RE = re.compile(r"^[a-z][a-z0-9_]*$")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")
PHONE_RE = re.compile(r"^\+?[0-9]{6,20}$")

CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
PARAMETER_FORMATS = ("positional", "named")
HEADER_TYPES = ("none", "text", "image", "video", "document")
BUTTON_KINDS = ("quick_reply", "url", "phone_number", "copy_code")
BUTTON_LABELS = {"quick_reply": "Quick reply", "url": "Visit website", "phone_number": "Call phone number",
                 "copy_code": "Copy offer code"}

MAX_NAME = 512
MAX_HEADER_TEXT = 60
MAX_BODY = 1024
MAX_FOOTER = 60
MAX_BUTTONS = 10
MAX_BUTTON_TEXT = 25
MAX_URL = 2000
MAX_COPY_CODE = 15
MAX_URL_BUTTONS = 2
MAX_PHONE_BUTTONS = 1
MAX_COPY_CODE_BUTTONS = 1
MAX_PHONE = 20

# Meta's fixed wording for authentication templates (what it shows for the body and footer).
AUTH_BODY = "*{{1}}* is your verification code."
AUTH_SECURITY = "For your security, do not share this code."

LANGUAGES = (
    ("en", "English"), ("en_US", "English (US)"), ("en_GB", "English (UK)"), ("es", "Spanish"),
    ("es_MX", "Spanish (Mexico)"), ("es_ES", "Spanish (Spain)"), ("pt_BR", "Portuguese (Brazil)"),
    ("pt_PT", "Portuguese (Portugal)"), ("fr", "French"), ("de", "German"), ("it", "Italian"),
    ("nl", "Dutch"), ("hi", "Hindi"), ("id", "Indonesian"), ("ar", "Arabic"), ("tr", "Turkish"),
    ("ru", "Russian"), ("ja", "Japanese"), ("ko", "Korean"), ("zh_CN", "Chinese (China)"),
    ("zh_HK", "Chinese (Hong Kong)"), ("zh_TW", "Chinese (Taiwan)"), ("ms", "Malay"), ("th", "Thai"),
    ("vi", "Vietnamese"), ("pl", "Polish"), ("sw", "Swahili"), ("ur", "Urdu"), ("bn", "Bengali"),
    ("ta", "Tamil"), ("te", "Telugu"), ("mr", "Marathi"), ("fil", "Filipino"),
)


@dataclass
class ButtonDraft:
    kind: str
    text: str = ""
    value: str = ""  # the URL (url) or the phone number (phone_number)
    example: str = ""  # the URL variable's example (url) or the code (copy_code)


@dataclass
class TemplateDraft:
    name: str = ""
    category: str = "UTILITY"
    language: str = "en_US"
    parameter_format: str = "positional"
    header_type: str = "none"
    header_text: str = ""
    header_media_example: str = ""
    body: str = ""
    footer: str = ""
    examples: dict[str, str] = field(default_factory=dict)  # "body.<var>" / "header.<var>" -> example
    buttons: list[ButtonDraft] = field(default_factory=list)
    # Authentication templates
    security_recommendation: bool = True
    code_expiration_minutes: str = "10"
    otp_button_text: str = "Copy code"

    @property
    def is_authentication(self) -> bool:
        return self.category == "AUTHENTICATION"

    @property
    def body_variables(self) -> list[str]:
        return placeholders(self.body)

    @property
    def header_variables(self) -> list[str]:
        return placeholders(self.header_text) if self.header_type == "text" else []

    def variables(self) -> list[tuple[str, str]]:
        """``[(part, name), …]``: every variable that needs an example, header first."""
        if self.is_authentication:
            return []
        return [("header", n) for n in self.header_variables] + [("body", n) for n in self.body_variables]

    def example(self, part: str, name: str) -> str:
        return self.examples.get(f"{part}.{name}", "")

    def variables_signature(self) -> str:
        return ",".join(f"{part}.{name}" for part, name in self.variables())


def _get(data: Mapping[str, Any], key: str, default: str = "") -> str:
    value = data.get(key, default)
    if isinstance(value, list | tuple):
        value = value[0] if value else default
    return str(value if value is not None else default)


def _getlist(data: Mapping[str, Any], key: str) -> list[str]:
    if hasattr(data, "getlist"):
        return [str(v) for v in data.getlist(key)]
    value = data.get(key, [])
    return [str(v) for v in (value if isinstance(value, list | tuple) else [value])]


def draft_from_data(data: Mapping[str, Any]) -> TemplateDraft:
    """Read the builder's fields. Nothing is rejected here; ``draft_problems`` says what is wrong."""
    examples = {}
    for key in data:
        for prefix, part in (("example_body_", "body"), ("example_header_", "header")):
            if key.startswith(prefix):
                examples[f"{part}.{key[len(prefix):]}"] = _get(data, key).strip()
    kinds, texts = _getlist(data, "button_kind"), _getlist(data, "button_text")
    values, button_examples = _getlist(data, "button_value"), _getlist(data, "button_example")
    buttons = []
    for index, kind in enumerate(kinds):
        def at(items: list[str], i: int = index) -> str:
            return items[i].strip() if i < len(items) else ""
        buttons.append(ButtonDraft(kind=kind.strip(), text=at(texts), value=at(values), example=at(button_examples)))
    return TemplateDraft(
        name=_get(data, "name").strip(),
        category=_get(data, "category", "UTILITY").strip().upper(),
        language=_get(data, "language", "en_US").strip(),
        parameter_format=_get(data, "parameter_format", "positional").strip().lower(),
        header_type=_get(data, "header_type", "none").strip().lower() or "none",
        header_text=_get(data, "header_text").strip(),
        header_media_example=_get(data, "header_media_example").strip(),
        body=_get(data, "body").replace("\r\n", "\n").strip(),
        footer=_get(data, "footer").strip(),
        examples=examples,
        buttons=buttons,
        security_recommendation=_get(data, "security_recommendation") in ("on", "true", "1"),
        code_expiration_minutes=_get(data, "code_expiration_minutes", "10").strip(),
        otp_button_text=_get(data, "otp_button_text", "Copy code").strip(),
    )


# --- rules ------------------------------------------------------------------------------------

def _check_variables(problems: dict[str, list[str]], key: str, names: list[str], draft: TemplateDraft,
                     text: str, what: str) -> None:
    if draft.parameter_format == "named":
        bad = [n for n in names if not NAMED_VAR_RE.match(n)]
        if bad:
            problems.setdefault(key, []).append(
                f"Named variables use lowercase letters, digits and underscores and start with a letter: "
                f"{', '.join('{{' + n + '}}' for n in bad)}.")
    else:
        bad = [n for n in names if not n.isdigit()]
        if bad:
            problems.setdefault(key, []).append(
                f"Positional templates number their variables {{{{1}}}}, {{{{2}}}}…; "
                f"{', '.join('{{' + n + '}}' for n in bad)} is not a number (or choose named variables).")
        elif names and sorted(int(n) for n in names) != list(range(1, len(names) + 1)):
            problems.setdefault(key, []).append(
                f"The {what}'s variables must be numbered {{{{1}}}} to {{{{{len(names)}}}}} without gaps.")
    if re.search(r"\{\{[^}]*$|^[^{]*\}\}", text) or "{{}}" in text:
        problems.setdefault(key, []).append(f"The {what} has an unfinished variable: write it as {{{{1}}}} or {{{{name}}}}.")


def draft_problems(draft: TemplateDraft) -> dict[str, list[str]]:
    """``{field: [message, …]}``; empty when the draft may be submitted."""
    problems: dict[str, list[str]] = {}

    def add(key: str, message: str) -> None:
        problems.setdefault(key, []).append(message)

    if not draft.name:
        add("name", "Give the template a name.")
    elif len(draft.name) > MAX_NAME:
        add("name", f"The name is longer than {MAX_NAME} characters.")
    elif not NAME_RE.match(draft.name):
        add("name", "Use only lowercase letters a–z, digits and underscores (for example order_update).")
    if draft.category not in CATEGORIES:
        add("category", "Choose Marketing, Utility or Authentication.")
    if not LANGUAGE_RE.match(draft.language):
        add("language", "Choose a language code such as en_US or pt_BR.")
    if draft.parameter_format not in PARAMETER_FORMATS:
        add("parameter_format", "Choose positional ({{1}}) or named ({{first_name}}) variables.")

    if draft.is_authentication:
        try:
            minutes = int(draft.code_expiration_minutes)
        except ValueError:
            minutes = 0
        if not 1 <= minutes <= 90:
            add("code_expiration_minutes", "The code expiry is a whole number of minutes from 1 to 90.")
        if not draft.otp_button_text:
            add("otp_button_text", "Give the copy-code button a label.")
        elif len(draft.otp_button_text) > MAX_BUTTON_TEXT:
            add("otp_button_text", f"Button text is at most {MAX_BUTTON_TEXT} characters.")
        return problems

    # Header
    if draft.header_type not in HEADER_TYPES:
        add("header_type", "Choose no header, text, image, video or document.")
    elif draft.header_type == "text":
        if not draft.header_text:
            add("header_text", "Write the header text, or choose no header.")
        elif len(draft.header_text) > MAX_HEADER_TEXT:
            add("header_text", f"Header text is at most {MAX_HEADER_TEXT} characters ({len(draft.header_text)} now).")
        if len(draft.header_variables) > 1:
            add("header_text", "A text header may have one variable at most.")
        _check_variables(problems, "header_text", draft.header_variables, draft, draft.header_text, "header")
        if draft.parameter_format == "positional" and draft.header_variables and draft.header_variables != ["1"]:
            problems.setdefault("header_text", []).append("The header's variable is {{1}}.")
    elif draft.header_type in ("image", "video", "document") and not draft.header_media_example:
        add("header_media_example", f"Meta reviews a sample {draft.header_type}: give a media handle from "
                                    "its Resumable Upload API or a public https:// URL.")

    # Body
    if not draft.body:
        add("body", "Write the message body.")
    else:
        if len(draft.body) > MAX_BODY:
            add("body", f"The body is at most {MAX_BODY:,} characters ({len(draft.body):,} now).")
        _check_variables(problems, "body", draft.body_variables, draft, draft.body, "body")
        stripped = draft.body.strip()
        if re.match(r"^\{\{[^}]+\}\}", stripped) or re.search(r"\{\{[^}]+\}\}$", stripped):
            add("body", "Meta rejects a body that starts or ends with a variable: add words before or after it.")
    for part, name in draft.variables():
        if not draft.example(part, name):
            add(f"example_{part}_{name}", f"Give an example for {{{{{name}}}}}: Meta reviews the template with it.")

    # Footer
    if len(draft.footer) > MAX_FOOTER:
        add("footer", f"The footer is at most {MAX_FOOTER} characters ({len(draft.footer)} now).")
    if placeholders(draft.footer):
        add("footer", "The footer cannot contain variables.")

    # Buttons
    buttons = draft.buttons
    if len(buttons) > MAX_BUTTONS:
        add("buttons", f"A template has at most {MAX_BUTTONS} buttons.")
    counts = {kind: sum(1 for b in buttons if b.kind == kind) for kind in BUTTON_KINDS}
    if counts["url"] > MAX_URL_BUTTONS:
        add("buttons", f"At most {MAX_URL_BUTTONS} website buttons.")
    if counts["phone_number"] > MAX_PHONE_BUTTONS:
        add("buttons", "At most one phone number button.")
    if counts["copy_code"] > MAX_COPY_CODE_BUTTONS:
        add("buttons", "At most one copy-code button.")
    quick = [i for i, b in enumerate(buttons) if b.kind == "quick_reply"]
    if quick and quick != list(range(quick[0], quick[0] + len(quick))):
        add("buttons", "Keep the quick replies together: Meta rejects them mixed between other buttons.")
    for index, button in enumerate(buttons, start=1):
        key = f"button_{index}"
        if button.kind not in BUTTON_KINDS:
            add(key, f"Button {index}: choose quick reply, website, phone number or copy code.")
            continue
        if button.kind != "copy_code":
            if not button.text:
                add(key, f"Button {index}: write its text.")
            elif len(button.text) > MAX_BUTTON_TEXT:
                add(key, f"Button {index}: the text is at most {MAX_BUTTON_TEXT} characters.")
        if button.kind == "url":
            url_vars = placeholders(button.value)
            if not button.value.lower().startswith(("https://", "http://")):
                add(key, f"Button {index}: the website address starts with https://.")
            elif len(button.value) > MAX_URL:
                add(key, f"Button {index}: the address is at most {MAX_URL:,} characters.")
            if len(url_vars) > 1 or (url_vars and (url_vars != ["1"] or not button.value.endswith("{{1}}"))):
                add(key, f"Button {index}: a website address may end with one variable, {{{{1}}}}.")
            elif url_vars and not button.example:
                add(key, f"Button {index}: give an example of the full address with {{{{1}}}} filled in.")
            elif url_vars and not button.example.lower().startswith(("https://", "http://")):
                add(key, f"Button {index}: the example is a full address starting with https://.")
        elif button.kind == "phone_number":
            if not PHONE_RE.match(button.value.replace(" ", "").replace("-", "")):
                add(key, f"Button {index}: give the phone number with its country code, digits only "
                         f"(at most {MAX_PHONE}).")
        elif button.kind == "copy_code":
            if not button.example:
                add(key, f"Button {index}: give an example code.")
            elif len(button.example) > MAX_COPY_CODE:
                add(key, f"Button {index}: the code is at most {MAX_COPY_CODE} characters.")
    return problems


# --- Meta's body --------------------------------------------------------------------------------

def _text_example(draft: TemplateDraft, part: str, names: list[str]) -> dict[str, Any]:
    if draft.parameter_format == "named":
        return {f"{part}_text_named_params": [{"param_name": n, "example": draft.example(part, n)} for n in names]}
    values = [draft.example(part, n) for n in sorted(names, key=int)]
    return {"header_text": values} if part == "header" else {"body_text": [values]}


def _button(button: ButtonDraft) -> dict[str, Any]:
    if button.kind == "quick_reply":
        return {"type": "QUICK_REPLY", "text": button.text}
    if button.kind == "url":
        data: dict[str, Any] = {"type": "URL", "text": button.text, "url": button.value}
        if placeholders(button.value):
            data["example"] = [button.example]
        return data
    if button.kind == "phone_number":
        return {"type": "PHONE_NUMBER", "text": button.text,
                "phone_number": button.value.replace(" ", "").replace("-", "").lstrip("+")}
    return {"type": "COPY_CODE", "example": button.example}


def draft_components(draft: TemplateDraft, *, for_meta: bool = True) -> list[dict[str, Any]]:
    """The ``components`` of Meta's body. ``for_meta=False`` is the stored / previewed form of an
    authentication template, with Meta's fixed wording written out."""
    if draft.is_authentication:
        try:
            minutes = int(draft.code_expiration_minutes)
        except ValueError:
            minutes = 10
        if for_meta:
            return [
                {"type": "BODY", "add_security_recommendation": draft.security_recommendation},
                {"type": "FOOTER", "code_expiration_minutes": minutes},
                {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": draft.otp_button_text}]},
            ]
        body = AUTH_BODY + (f" {AUTH_SECURITY}" if draft.security_recommendation else "")
        return [
            {"type": "BODY", "text": body, "add_security_recommendation": draft.security_recommendation},
            {"type": "FOOTER", "text": f"This code expires in {minutes} minutes.", "code_expiration_minutes": minutes},
            {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": draft.otp_button_text}]},
        ]
    components: list[dict[str, Any]] = []
    if draft.header_type == "text" and draft.header_text:
        header: dict[str, Any] = {"type": "HEADER", "format": "TEXT", "text": draft.header_text}
        if draft.header_variables:
            header["example"] = _text_example(draft, "header", draft.header_variables)
        components.append(header)
    elif draft.header_type in ("image", "video", "document"):
        header = {"type": "HEADER", "format": draft.header_type.upper()}
        if draft.header_media_example:
            header["example"] = {"header_handle": [draft.header_media_example]}
        components.append(header)
    body: dict[str, Any] = {"type": "BODY", "text": draft.body}
    if draft.body_variables:
        body["example"] = _text_example(draft, "body", draft.body_variables)
    components.append(body)
    if draft.footer:
        components.append({"type": "FOOTER", "text": draft.footer})
    if draft.buttons:
        components.append({"type": "BUTTONS", "buttons": [_button(b) for b in draft.buttons]})
    return components


def build_payload(draft: TemplateDraft) -> dict[str, Any]:
    """Meta's ``POST /<WABA_ID>/message_templates`` body for a valid draft."""
    problems = draft_problems(draft)
    if problems:
        raise ValueError(f"the draft is not valid: {problems}")
    payload: dict[str, Any] = {"name": draft.name, "language": draft.language, "category": draft.category}
    if not draft.is_authentication:
        payload["parameter_format"] = draft.parameter_format
    payload["components"] = draft_components(draft)
    return payload
