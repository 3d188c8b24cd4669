"""Template helpers for the inbox: message text (escaped first, then linked and formatted),
delivery ticks, the 24-hour window, days, and the shapes of contacts cards and interactive
messages. Everything a customer or agent wrote is escaped before any markup is added."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from apps.conversations.inbox_selectors import timestamp_micros
from apps.core.templatetags.parley import avatar_hue, icon, initials

register = template.Library()

URL = re.compile(r"(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
TRAILING_PUNCTUATION = ".,;:!?'\""
# WhatsApp's own formatting marks, applied to already-escaped text.
FORMATS = (
    (re.compile(r"```(.+?)```", re.DOTALL), r"<code>\1</code>"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), r"<em>\1</em>"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])"), r"<s>\1</s>"),
)


def _formatted(text: str) -> str:
    html = escape(text)
    for pattern, replacement in FORMATS:
        html = pattern.sub(replacement, html)
    return html


def _split_url(url: str) -> tuple[str, str]:
    """A URL without the punctuation that ends the sentence around it."""
    trail = ""
    while url and (url[-1] in TRAILING_PUNCTUATION or (url[-1] == ")" and url.count("(") < url.count(")"))):
        trail = url[-1] + trail
        url = url[:-1]
    return url, trail


@register.filter(is_safe=True)
def linkify(value: Any) -> SafeString:
    """Escape ``value``, then turn http(s) and www. addresses into links that open in a new
    tab, apply WhatsApp's *bold* _italic_ ~strike~ ```mono``` and keep line breaks."""
    text = "" if value is None else str(value)
    parts: list[str] = []
    position = 0
    for match in URL.finditer(text):
        url, trail = _split_url(match.group(0))
        parts.append(_formatted(text[position:match.start()]))
        if url:
            href = url if url.lower().startswith(("http://", "https://")) else f"https://{url}"
            parts.append(format_html('<a href="{}" target="_blank" rel="noopener noreferrer nofollow">{}</a>',
                                     href, url))
        parts.append(_formatted(trail))
        position = match.end()
    parts.append(_formatted(text[position:]))
    return mark_safe("".join(parts).replace("\n", "<br>"))  # every piece above is escaped


TICKS = {
    "queued": ("clock", "Queued"),
    "sending": ("clock", "Sending"),
    "accepted": ("check", "Sent"),
    "sent": ("check", "Sent"),
    "delivered": ("check-double", "Delivered"),
    "read": ("check-double", "Read"),
    "failed": ("alert", "Not delivered"),
}
TICK_TIMES = {"accepted": "accepted_at", "sent": "sent_at", "delivered": "delivered_at", "read": "read_at",
              "failed": "failed_at"}


@register.simple_tag
def ticks(message: Any) -> SafeString:
    """Clock while queued, ✓ sent, ✓✓ delivered, blue ✓✓ read, red ! failed."""
    name, label = TICKS.get(message.status, ("clock", message.status))
    moment = getattr(message, TICK_TIMES.get(message.status, ""), None)
    local = timezone.localtime(moment) if moment else None
    title = f"{label} {local:%b} {local.day}, {local:%H:%M}" if local else label
    return format_html('<span class="tick tick-{}" title="{}" aria-label="{}" data-status="{}">{}</span>',
                       message.status, title, label, message.status, icon(name, 16))


@register.filter
def day_key(moment: datetime | None) -> str:
    return timezone.localtime(moment).date().isoformat() if moment else ""


@register.filter
def day_label(moment: datetime | None) -> str:
    if moment is None:
        return ""
    day = timezone.localtime(moment).date()
    today = timezone.localdate()
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    if today - day < timedelta(days=7):
        return f"{day:%A}"
    if day.year == today.year:
        return f"{day:%A, %B} {day.day}"
    return f"{day:%B} {day.day}, {day.year}"


@register.filter
def list_time(moment: datetime | None) -> str:
    """What the list shows: a time today, a weekday this week, a date before that."""
    if moment is None:
        return ""
    local = timezone.localtime(moment)
    today = timezone.localdate()
    if local.date() == today:
        return f"{local:%H:%M}"
    if today - local.date() < timedelta(days=7):
        return f"{local:%a}"
    if local.year == today.year:
        return f"{local:%b} {local.day}"
    return f"{local:%d/%m/%y}"


def _duration(seconds: float) -> str:
    minutes = max(1, int(seconds // 60))
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


@register.filter
def window_left(expires_at: datetime | None) -> str:
    """``3 h 12 min`` until the 24-hour window closes; empty when it is closed."""
    if expires_at is None:
        return ""
    seconds = (expires_at - timezone.now()).total_seconds()
    return _duration(seconds) if seconds > 0 else ""


@register.filter
def window_state(expires_at: datetime | None) -> str:
    """``open``, ``closing`` (under 2 hours left) or ``closed``."""
    if expires_at is None:
        return "closed"
    seconds = (expires_at - timezone.now()).total_seconds()
    if seconds <= 0:
        return "closed"
    return "closing" if seconds < 2 * 3600 else "open"


@register.filter
def epoch_ms(moment: datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment else 0


PREVIEW_ICONS = {"image": "image", "sticker": "image", "video": "video", "audio": "mic", "document": "file",
                 "location": "map-pin", "contacts": "user", "template": "templates", "interactive": "list",
                 "button": "list", "reaction": "reaction", "note": "note"}


@register.filter
def preview_icon(message_type: str) -> str:
    return PREVIEW_ICONS.get(message_type or "", "")


@register.filter
def contact_cards(content: Any) -> list[dict[str, Any]]:
    """Shared contacts, inbound (``{"contacts": [...]}``) or outbound (a list), as name, org,
    phones and emails."""
    cards = content.get("contacts") if isinstance(content, dict) else content
    result = []
    for card in cards if isinstance(cards, list) else []:
        if not isinstance(card, dict):
            continue
        name = card.get("name") if isinstance(card.get("name"), dict) else {}
        full = name.get("formatted_name") or " ".join(
            str(name.get(k, "")) for k in ("first_name", "last_name") if name.get(k)) or "Contact"
        org = card.get("org") if isinstance(card.get("org"), dict) else {}
        result.append({
            "name": str(full),
            "org": str(org.get("company") or ""),
            "phones": [str(p.get("phone") or p.get("wa_id") or "") for p in card.get("phones") or []
                       if isinstance(p, dict)],
            "emails": [str(e.get("email") or "") for e in card.get("emails") or [] if isinstance(e, dict)],
        })
    return result


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("text") or "")
    return str(value or "")


@register.filter
def interactive(content: Any) -> dict[str, Any]:
    """What an interactive message shows: header, body, footer and its buttons or list (sent),
    or the option the customer picked (received)."""
    content = content if isinstance(content, dict) else {}
    kind = str(content.get("type") or "")
    action = content.get("action") if isinstance(content.get("action"), dict) else {}
    shown: dict[str, Any] = {"kind": kind, "header": _text(content.get("header")),
                             "body": _text(content.get("body")), "footer": _text(content.get("footer")),
                             "buttons": [], "list_button": "", "sections": [], "choice": None, "url": ""}
    if kind in ("button_reply", "list_reply"):
        reply = content.get(kind) if isinstance(content.get(kind), dict) else {}
        shown["choice"] = {"title": str(reply.get("title") or reply.get("id") or ""),
                           "description": str(reply.get("description") or "")}
    elif kind == "nfm_reply":
        reply = content.get("nfm_reply") if isinstance(content.get("nfm_reply"), dict) else {}
        shown["choice"] = {"title": str(reply.get("body") or reply.get("name") or "Form submitted"),
                           "description": ""}
    for button in action.get("buttons") or []:
        if isinstance(button, dict):
            reply = button.get("reply") if isinstance(button.get("reply"), dict) else {}
            shown["buttons"].append(str(reply.get("title") or button.get("title") or ""))
    if kind == "cta_url":
        parameters = action.get("parameters") if isinstance(action.get("parameters"), dict) else {}
        shown["buttons"].append(str(parameters.get("display_text") or "Open link"))
        shown["url"] = str(parameters.get("url") or "")
    if action.get("sections"):
        shown["list_button"] = str(action.get("button") or "Options")
        for section in action["sections"]:
            if isinstance(section, dict):
                rows = [{"title": str(r.get("title") or ""), "description": str(r.get("description") or "")}
                        for r in section.get("rows") or [] if isinstance(r, dict)]
                shown["sections"].append({"title": str(section.get("title") or ""), "rows": rows})
    return shown


@register.filter
def map_url(content: Any) -> str:
    content = content if isinstance(content, dict) else {}
    try:
        latitude, longitude = float(content.get("latitude")), float(content.get("longitude"))
    except (TypeError, ValueError):
        return ""
    return f"https://www.openstreetmap.org/?mlat={latitude:.6f}&mlon={longitude:.6f}#map=16/{latitude:.6f}/{longitude:.6f}"


@register.filter
def person(user: Any) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.email or user.get_username()


@register.filter
def micros(moment: datetime | None) -> int:
    """Microseconds since the epoch: row versions and list positions the browser compares."""
    return timestamp_micros(moment)


@register.filter
def lookup(mapping: Any, key: Any) -> Any:
    if isinstance(mapping, dict):
        return mapping.get(key, "")
    return ""


HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


@register.filter
def safe_color(value: Any, default: str = "#6b7785") -> str:
    """A label colour fit for a style attribute: #rrggbb or the default."""
    text = str(value or "")
    return text if HEX_COLOR.fullmatch(text) else default


@register.filter
def safe_url(value: Any) -> str:
    """An http(s) address, or nothing: links from the API must not become javascript: URLs."""
    text = str(value or "").strip()
    return text if text.lower().startswith(("https://", "http://")) else ""


EMOJI = ("😀 😂 😊 😍 🥰 😉 🙂 🤔 😅 😢 😮 😎 🙏 👍 👎 👌 👏 🙌 💪 🤝 👋 ❤️ 💚 🔥 ⭐ ✨ 🎉 🎁 ✅ ❌ ⚠️ ⏰ "
         "📦 🚚 💳 🧾 📍 📞 📷 💬").split()


@register.simple_tag
def emoji_set() -> tuple[str, ...]:
    return tuple(EMOJI)


def _with_variables(text: str, part: str) -> SafeString:
    from apps.message_templates.rendering import PLACEHOLDER

    pieces: list[str] = []
    position = 0
    for match in PLACEHOLDER.finditer(text or ""):
        pieces.append(escape(text[position:match.start()]))
        name = match.group(1)
        pieces.append(format_html('<span class="var" data-var="{}" data-empty="{}">{}</span>',
                                  f"{part}.{name}", match.group(0), match.group(0)))
        position = match.end()
    pieces.append(escape(text[position:]))
    return mark_safe("".join(pieces).replace("\n", "<br>"))  # every piece above is escaped


@register.filter
def template_preview(template: Any) -> dict[str, Any]:
    """A stored template as the customer will see it, with each placeholder in a span the
    variable form fills in as the agent types."""
    components = getattr(template, "components", None) or []
    found: dict[str, Any] = {"header": "", "header_media": "", "body": "", "footer": "", "buttons": []}
    for component in components:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            if str(component.get("format", "TEXT")).upper() == "TEXT":
                found["header"] = _with_variables(str(component.get("text", "")), "header")
            else:
                found["header_media"] = str(component.get("format", "")).lower()
        elif kind == "BODY":
            found["body"] = _with_variables(str(component.get("text", "")), "body")
        elif kind == "FOOTER":
            found["footer"] = str(component.get("text", ""))
        elif kind == "BUTTONS":
            found["buttons"] = [str(b.get("text", "")) for b in component.get("buttons") or [] if isinstance(b, dict)]
    return found


ROW_HTML = (
    '<li id="conv-{id}" class="conv-row{classes}" data-id="{id}" data-ts="{ts}" data-v="{version}" data-match="{match}" '
    'data-f="{query}"><a class="conv-link" href="{href}" hx-get="{href}" hx-target="#thread-pane" hx-push-url="true">'
    '<span class="avatar-wrap"><span class="avatar" style="--hue: {hue}">{initials}</span>'
    '<span class="wdot wdot-{state}" title="{window_title}"></span></span>'
    '<span class="conv-main"><span class="conv-top"><strong class="conv-name truncate">{name}</strong>'
    '<time class="conv-time" datetime="{time_iso}">{time_label}</time></span>'
    '<span class="conv-bottom"><span class="conv-preview truncate">{icons}{preview}</span>{badge}</span>{meta}</span>'
    "</a></li>"
)


@register.simple_tag(takes_context=True)
def conversation_row(context: Any, conversation: Any) -> SafeString:
    """One list row. Built here rather than in the template because the list renders up to 50
    of them per request and the inbox answers in a few milliseconds; every value goes through
    format_html, so all of it is escaped."""
    contact = conversation.contact
    name = contact.display_name
    state = window_state(conversation.window_expires_at)
    query = context.get("filters").query() if context.get("filters") else ""
    href = f"{context.get('list_url', '')}{conversation.pk}/" + (f"?{query}" if query else "")
    icons = []
    if conversation.last_message_direction == "outbound":
        icons.append(format_html('<span class="you">{}</span>', icon("reply", 13)))
    kind = preview_icon(conversation.last_message_type)
    if kind:
        icons.append(icon(kind, 13, "ptype"))
    unread = conversation.unread_count
    badge = format_html('<span class="badge badge-brand" title="{} unread">{}</span>', unread, unread) if unread else ""
    labels = getattr(conversation, "label_list", ())
    assignee = conversation.assignee if conversation.assignee_id else None
    meta = ""
    if labels or assignee:
        chips = format_html_join("", '<span class="lbl" style="--c: {}">{}</span>',
                                 ((safe_color(label.color), label.name) for label in labels))
        avatar = ""
        if assignee:
            who = person(assignee)
            avatar = format_html('<span class="avatar avatar-xs" style="--hue: {}" title="Assigned to {}">{}</span>',
                                 avatar_hue(assignee.email), who, initials(who))
        meta = format_html('<span class="conv-meta"><span class="conv-labels">{}</span>{}</span>', chips, avatar)
    classes = (" is-active" if conversation.pk == context.get("active_id") else "") + (" is-unread" if unread else "")
    return format_html(
        ROW_HTML, id=conversation.pk, classes=classes, ts=timestamp_micros(conversation.last_message_at),
        version=timestamp_micros(conversation.updated_at), match=context.get("match") or "1", query=query,
        href=href, hue=avatar_hue(contact.wa_id), initials=initials(name), state=state,
        window_title="24-hour window closed" if state == "closed"
        else f"Window closes in {window_left(conversation.window_expires_at)}",
        name=name, time_iso=conversation.last_message_at.isoformat() if conversation.last_message_at else "",
        time_label=list_time(conversation.last_message_at), icons=mark_safe("".join(icons)),  # fixed SVG markup
        preview=conversation.last_message_preview or "—", badge=badge, meta=meta,
    )


class MessageMeta:
    """The strings every message row repeats (ids, version, day, times), worked out once per
    row: numbers are strings so the template does not localize each of them."""

    __slots__ = ("id", "conversation", "version", "day", "day_label", "time", "iso", "title", "reply_to")

    def __init__(self, message: Any) -> None:
        at = message.occurred_at or message.created_at
        local = timezone.localtime(at) if at else None
        self.id = str(message.pk)
        self.conversation = str(message.conversation_id)
        self.version = str(timestamp_micros(message.updated_at))
        self.day = local.date().isoformat() if local else ""
        self.day_label = day_label(at)
        self.time = f"{local:%H:%M}" if local else ""
        self.iso = at.isoformat() if at else ""
        self.title = f"{local:%a} {local.day} {local:%b %Y, %H:%M:%S}" if local else ""
        self.reply_to = str(message.reply_to_id or "")


@register.filter
def meta(message: Any) -> MessageMeta:
    return MessageMeta(message)
