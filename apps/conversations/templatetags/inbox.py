"""Template helpers for the inbox: message text (escaped first, then linked and formatted),
delivery ticks, the 24-hour window, days, and the shapes of contacts cards and interactive
messages. Everything a customer or agent wrote is escaped before any markup is added."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeData, SafeString, mark_safe

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
    markup = html.escape(text)
    if "*" in text or "_" in text or "~" in text or "`" in text:
        for pattern, replacement in FORMATS:
            markup = pattern.sub(replacement, markup)
    return markup


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
            parts.append(f'<a href="{html.escape(href)}" target="_blank" rel="noopener noreferrer nofollow">'
                         f'{html.escape(url)}</a>')
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
    return _fmt('<span class="tick tick-{status}" title="{title}" aria-label="{label}" data-status="{status}">'
                '{icon}</span>', status=message.status, title=title, label=label, icon=icon(name, 16))


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


# Rows are built by the dozen per request: these escape with the standard library directly,
# without the lazy-string checks of Django's escape() and format_html().

def _e(value: Any) -> str:
    """``value`` escaped for HTML text or a quoted attribute."""
    return "" if value is None else html.escape(str(value))


def _fmt(markup: str, **values: Any) -> SafeString:
    """format_html(): every value escaped unless it is already safe markup."""
    return mark_safe(markup.format(**{key: value if isinstance(value, SafeData) else _e(value)
                                      for key, value in values.items()}))


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
    of them per request and the inbox answers in a few milliseconds; every value is escaped
    (_e, _fmt) unless it is fixed markup."""
    contact = conversation.contact
    name = contact.display_name
    state = window_state(conversation.window_expires_at)
    query = context.get("filters").query() if context.get("filters") else ""
    href = f"{context.get('list_url', '')}{conversation.pk}/" + (f"?{query}" if query else "")
    icons = []
    if conversation.last_message_direction == "outbound":
        icons.append(f'<span class="you">{icon("reply", 13)}</span>')
    kind = preview_icon(conversation.last_message_type)
    if kind:
        icons.append(icon(kind, 13, "ptype"))
    unread = conversation.unread_count
    badge = mark_safe(f'<span class="badge badge-brand" title="{unread:d} unread">{unread:d}</span>') if unread else ""
    labels = getattr(conversation, "label_list", ())
    assignee = conversation.assignee if conversation.assignee_id else None
    meta = ""
    if labels or assignee:
        chips = "".join(f'<span class="lbl" style="--c: {_e(safe_color(label.color))}">{_e(label.name)}</span>'
                        for label in labels)
        avatar = ""
        if assignee:
            who = person(assignee)
            avatar = (f'<span class="avatar avatar-xs" style="--hue: {avatar_hue(assignee.email)}" '
                      f'title="Assigned to {_e(who)}">{_e(initials(who))}</span>')
        meta = mark_safe(f'<span class="conv-meta"><span class="conv-labels">{chips}</span>{avatar}</span>')
    classes = (" is-active" if conversation.pk == context.get("active_id") else "") + (" is-unread" if unread else "")
    return _fmt(
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


# --- message rows -------------------------------------------------------------------------
# Built here, like the list's rows, rather than in the template: a thread pane renders 50 of
# them, and Django's template engine spent more time on them than the rest of the request.
# Every value a person or a provider wrote goes through _e() or linkify(), so all of it is
# escaped; only fixed markup and icon() SVGs are inserted as they are.

def _get(content: Any, key: str) -> Any:
    return content.get(key) if isinstance(content, dict) else None


def _who(direction: str, contact_name: str) -> str:
    return contact_name if direction == "inbound" else "You"


def _media_url(context: Any, media_id: int) -> str:
    tenant = context.get("tenant")
    return reverse("conversations:media", args=[tenant.slug, media_id])


def _media_block(context: Any, m: Any, content: Any) -> str:
    type_label = _e(m.get_type_display())
    media = m.media if m.media_id else None
    if media is not None and media.status == "ready":
        url = _e(_media_url(context, m.media_id))
        if m.type in ("image", "sticker"):
            sticker = " media-sticker" if m.type == "sticker" else ""
            return (f'<a class="media-img{sticker}" href="{url}" target="_blank" rel="noopener">'
                    f'<img src="{url}" alt="{_e(_get(content, "caption") or "Photo")}" loading="lazy"></a>')
        if m.type == "video":
            return f'<video class="media-video" controls preload="metadata" src="{url}"></video>'
        if m.type == "audio":
            return f'<audio class="media-audio" controls preload="none" src="{url}"></audio>'
        size = f" · {_e(filesizeformat(media.size))}" if media.size else ""
        return (f'<a class="doc-card" href="{url}?download=1"><span class="doc-icon">{icon("file", 22)}</span>'
                f'<span class="doc-text"><strong class="truncate">'
                f'{_e(media.filename or _get(content, "filename") or "Document")}</strong>'
                f'<span class="small muted">{_e(media.mime_type or "file")}{size}</span></span>'
                f'<span class="doc-dl">{icon("download", 18)}</span></a>')
    if media is not None and media.status == "failed":
        error = f": {_e(media.error)}" if media.error else ""
        return (f'<div class="media-missing">{icon("alert", 16)}<span>The {type_label.lower()} could not be '
                f'downloaded{error}</span></div>')
    if media is not None:
        return (f'<div class="media-missing">{icon("download", 16)}<span>Fetching the {type_label.lower()}…'
                f'</span></div>')
    link = safe_url(_get(content, "link"))
    if link:
        return (f'<a class="doc-card" href="{_e(link)}" target="_blank" rel="noopener noreferrer nofollow">'
                f'<span class="doc-icon">{icon("file", 22)}</span><span class="doc-text"><strong class="truncate">'
                f'{_e(_get(content, "filename") or m.get_type_display())}</strong>'
                f'<span class="small muted truncate">{_e(_get(content, "link"))}</span></span></a>')
    return f'<div class="media-missing">{icon("file", 16)}<span>{type_label}</span></div>'


def _caption(content: Any) -> str:
    caption = _get(content, "caption")
    return f'<div class="text">{linkify(caption)}</div>' if caption else ""


def _interactive_body(content: Any) -> str:
    shown = interactive(content)
    if shown["choice"]:
        choice = shown["choice"]
        description = (f'<span class="small muted"> · {_e(choice["description"])}</span>'
                       if choice["description"] else "")
        return (f'<div class="choice">{icon("check", 14)}<span><span class="small muted">Selected</span> '
                f'<strong>{_e(choice["title"])}</strong>{description}</span></div>')
    parts = []
    if shown["header"]:
        parts.append(f'<strong class="i-header">{_e(shown["header"])}</strong>')
    if shown["body"]:
        parts.append(f'<div class="text">{linkify(shown["body"])}</div>')
    if shown["footer"]:
        parts.append(f'<div class="i-footer small muted">{_e(shown["footer"])}</div>')
    if shown["buttons"]:
        arrow = "↗ " if shown["url"] else ""
        buttons = "".join(f'<span class="i-button">{arrow}{_e(b)}</span>' for b in shown["buttons"])
        parts.append(f'<div class="i-buttons">{buttons}</div>')
    if shown["sections"]:
        rows = []
        for section in shown["sections"]:
            if section["title"]:
                rows.append(f'<div class="i-section small muted">{_e(section["title"])}</div>')
            for row in section["rows"]:
                description = f'<small class="muted">{_e(row["description"])}</small>' if row["description"] else ""
                rows.append(f'<div class="i-row"><span>{_e(row["title"])}</span>{description}</div>')
        parts.append(f'<details class="i-list"><summary class="i-button">{icon("list", 14)} '
                     f'{_e(shown["list_button"])}</summary>{"".join(rows)}</details>')
    return "".join(parts)


def _contacts_body(m: Any, content: Any) -> str:
    cards = contact_cards(content)
    if not cards:
        return f'<div class="text muted">{_e(m.text_preview)}</div>'
    parts = []
    for card in cards:
        org = f'<span class="small muted">{_e(card["org"])}</span>' if card["org"] else ""
        phones = "".join(f'<span class="small mono">{_e(p)}</span>' for p in card["phones"] if p)
        emails = "".join(f'<span class="small">{_e(e)}</span>' for e in card["emails"] if e)
        parts.append(f'<div class="contact-card"><span class="avatar avatar-sm" style="--hue: '
                     f'{avatar_hue(card["name"])}">{_e(initials(card["name"]))}</span><span class="contact-card-text">'
                     f'<strong>{_e(card["name"])}</strong>{org}{phones}{emails}</span></div>')
    return "".join(parts)


def _message_body(context: Any, m: Any) -> str:
    content = m.content
    kind = m.type
    if kind in ("text", "note"):
        return f'<div class="text">{linkify(_get(content, "body"))}</div>'
    if kind in ("image", "sticker", "video", "audio", "document"):
        return _media_block(context, m, content) + _caption(content)
    if kind == "location":
        address = _get(content, "address")
        address = f'<span class="small">{_e(address)}</span>' if address else ""
        return (f'<a class="location-card" href="{_e(map_url(content))}" target="_blank" rel="noopener noreferrer">'
                f'<span class="location-map">{icon("map-pin", 26)}</span><span class="location-text">'
                f'<strong>{_e(_get(content, "name") or "Shared location")}</strong>{address}'
                f'<span class="small muted mono">{_e(_get(content, "latitude"))}, {_e(_get(content, "longitude"))}</span>'
                f'<span class="small link">Open map ↗</span></span></a>')
    if kind == "contacts":
        return _contacts_body(m, content)
    if kind == "interactive":
        return _interactive_body(content)
    if kind == "button":
        return (f'<div class="choice">{icon("check", 14)}<span><span class="small muted">Tapped</span> '
                f'<strong>{_e(_get(content, "text") or _get(content, "payload") or "")}</strong></span></div>')
    if kind == "template":
        return (f'<div class="tpl-label">{icon("templates", 13)} Template · {_e(_get(content, "name") or "")}</div>'
                f'<div class="text">{linkify(m.template_body or m.text_preview)}</div>')
    muted = " muted" if kind in ("unsupported", "system") else ""
    return f'<div class="text{muted}">{linkify(m.text_preview or m.get_type_display())}</div>'


def _row_attributes(v: MessageMeta) -> str:
    return (f'data-id="{v.id}" data-c="{v.conversation}" data-v="{v.version}" data-day="{v.day}" '
            f'data-day-label="{_e(v.day_label)}"')


def _message_row(context: Any, m: Any, v: MessageMeta, contact_name: str) -> str:
    attributes = _row_attributes(v)
    time_html = f'<time datetime="{v.iso}">{v.time}</time>'
    if m.type == "activity":
        return (f'<div id="msg-{v.id}" class="msg msg-activity" {attributes}>\n'
                f'  <span class="activity">{_e(m.text_preview)}{time_html}</span>\n</div>\n')
    if m.type == "reaction" and getattr(m, "reaction_target", None):
        return f'<div id="msg-{v.id}" class="msg msg-folded" {attributes} hidden></div>\n'
    if m.type == "reaction":
        return (f'<div id="msg-{v.id}" class="msg msg-activity" {attributes}>\n'
                f'  <span class="activity">{_e(_who(m.direction, contact_name))} reacted '
                f'{_e(_get(m.content, "emoji") or "(removed)")} to an earlier message{time_html}</span>\n</div>\n')
    direction = {"inbound": "msg-in", "internal": "msg-note"}.get(m.direction, "msg-out")
    failed = " msg-failed" if m.status == "failed" else ""
    parts = [f'<div id="msg-{v.id}" class="msg {direction}{failed} msg-type-{_e(m.type)}"\n     {attributes}>\n'
             f'  <div class="bubble-row">\n  <div class="bubble">\n']
    if m.direction == "internal":
        by = f" · {_e(person(m.sent_by))}" if m.sent_by_id else ""
        parts.append(f'<div class="note-label">{icon("lock", 12)} Private note{by}</div>')
    if m.reply_to_id:
        quoted = m.reply_to
        parts.append(f'<a class="quote quote-{_e(quoted.direction)}" href="#msg-{v.reply_to}" '
                     f'data-jump="msg-{v.reply_to}"><strong>{_e(_who(quoted.direction, contact_name))}</strong>'
                     f'<span class="quote-text">{_e(quoted.text_preview or quoted.get_type_display())}</span></a>')
    elif m.reply_to_provider_id:
        parts.append('<div class="quote"><span class="quote-text muted">Replying to a message Parley does not have'
                     '</span></div>')
    parts.append(_message_body(context, m))
    by = ""
    if m.direction == "outbound" and m.sent_by_id:
        by = f'<span class="by">{_e(person(m.sent_by))}</span>'
    elif m.direction == "outbound" and m.campaign_recipient_id:
        by = '<span class="by">Campaign</span>'
    tick = ticks(m) if m.direction == "outbound" else ""
    parts.append(f'<div class="bubble-meta">{by}<time datetime="{v.iso}" title="{v.title}">{v.time}</time>{tick}'
                 f'</div>\n  </div>\n')
    if m.direction != "internal":
        preview = m.text_preview or m.get_type_display()
        preview = preview if len(preview) <= 90 else preview[:89] + "…"
        parts.append(f'<button type="button" class="msg-reply" data-reply="{v.id}" '
                     f'data-reply-who="{_e(_who(m.direction, contact_name))}" data-reply-text="{_e(preview)}" '
                     f'title="Reply to this message" aria-label="Reply to this message">{icon("reply", 15)}</button>')
    parts.append("</div>\n")
    reactions = getattr(m, "reactions", None)
    if reactions:
        shown = "".join(f'<span class="reaction" title="{_e(_who(r["direction"], contact_name))}">{_e(r["emoji"])}'
                        f'</span>' for r in reactions)
        parts.append(f'<div class="reactions">{shown}</div>')
    if m.status == "failed" or m.error_title:
        detail = f" — {_e(m.error_detail)}" if m.error_detail else ""
        code = f' <span class="mono muted">(error {_e(m.error_code)})</span>' if m.error_code else ""
        parts.append(f'<div class="msg-error" role="note">{icon("alert", 14)}<span><strong>'
                     f'{_e(m.error_title or "Not delivered")}</strong>{detail}{code}</span></div>')
    parts.append("</div>\n")
    return "".join(parts)


@register.simple_tag(takes_context=True)
def message_rows(context: Any, messages: Any, separators: bool = True) -> SafeString:
    """The thread's rows, each preceded by a day separator where the day changes (the first
    row always has one, as a page of earlier messages starts a day of its own)."""
    conversation = context.get("conversation")
    contact_name = conversation.contact.display_name if conversation is not None else ""
    parts: list[str] = []
    day = None
    for m in messages:
        v = MessageMeta(m)
        if separators and v.day != day:
            day = v.day
            parts.append(f'<div class="day-sep" data-day="{v.day}"><span>{_e(v.day_label)}</span></div>\n')
        parts.append(_message_row(context, m, v, contact_name))
    return mark_safe("".join(parts))  # every value above is escaped
