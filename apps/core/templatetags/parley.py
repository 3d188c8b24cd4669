"""Template helpers: inline SVG icons (no icon font, no network) and small formatters."""

from __future__ import annotations

import functools

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.core.phone import format_display

register = template.Library()

# 24x24 stroke icons, drawn for Parley.
ICONS: dict[str, tuple[str, ...]] = {
    "inbox": ("M3 13h5l2 3h4l2-3h5", "M5.5 5h13L21 13v6a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1v-6z"),
    "campaigns": ("M4 10v4a1 1 0 0 0 1 1h2l6 4V5L7 9H5a1 1 0 0 0-1 1z", "M16.5 8.5a5 5 0 0 1 0 7", "M19 6a8.5 8.5 0 0 1 0 12"),
    "contacts": ("M15 20v-1.5a4 4 0 0 0-4-4H7a4 4 0 0 0-4 4V20", "M9 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z",
                 "M21 20v-1.5a4 4 0 0 0-3-3.85", "M15.5 4.2a3.5 3.5 0 0 1 0 6.6"),
    "templates": ("M14 3H6.5A1.5 1.5 0 0 0 5 4.5v15A1.5 1.5 0 0 0 6.5 21h11a1.5 1.5 0 0 0 1.5-1.5V8z", "M14 3v5h5",
                  "M8.5 13h7", "M8.5 16.5h4.5"),
    "settings": ("M4 20v-6", "M4 10V4", "M12 20v-8", "M12 8V4", "M20 20v-4", "M20 12V4", "M2 14h4", "M10 8h4", "M18 16h4"),
    "logout": ("M9 20H5a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1h4", "M16 16l4-4-4-4", "M20 12H9"),
    "chevron": ("M8 10l4 4 4-4",),
    "phone": ("M5 4h3l2 5-2.5 1.5a11 11 0 0 0 6 6L15 14l5 2v3a2 2 0 0 1-2 2A16 16 0 0 1 3 6a2 2 0 0 1 2-2",),
    "key": ("M15 7a4 4 0 1 1-3.9 4.9L4 19v2h3v-2h2v-2h2l1.1-1.1", "M16 8h.01"),
    "users": ("M16 20v-1.5a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4V20", "M10 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z"),
    "search": ("M11 18a7 7 0 1 0 0-14 7 7 0 0 0 0 14z", "M20 20l-4-4"),
    "plus": ("M12 5v14", "M5 12h14"),
    "webhook": ("M9 15a3 3 0 1 1-4.5-2.6L8 6", "M12 6a3 3 0 1 1 3.4 3L18 14", "M18 18a3 3 0 1 1-1.3-5.7", "M7 18h8"),
    "check": ("M5 12.5l4.5 4.5L19 7.5",),
    "logo": ("M4 17.5V7a3 3 0 0 1 3-3h10a3 3 0 0 1 3 3v7a3 3 0 0 1-3 3H8.5L4 20.5z", "M8.5 9.5h7", "M8.5 13h4.5"),
    # Inbox
    "clock": ("M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z", "M12 7.5V12l3 2"),
    "check-double": ("M2 13l4 4 9.5-9.5", "M9.5 16l1 1 9.5-9.5"),
    "alert": ("M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z", "M12 7.5v5.5", "M12 16.5h.01"),
    "reply": ("M9.5 7L4.5 12l5 5", "M4.5 12H14a5.5 5.5 0 0 1 5.5 5.5V19"),
    "paperclip": ("M20 11.5l-8.2 8.2a5 5 0 0 1-7.1-7.1l8.5-8.5a3.4 3.4 0 0 1 4.8 4.8l-8.5 8.5a1.7 1.7 0 0 1-2.4-2.4L15 7.1",),
    "smile": ("M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z", "M8.5 14a4.5 4.5 0 0 0 7 0", "M9 9.5h.01", "M15 9.5h.01"),
    "send": ("M21 3L10 14", "M21 3l-6.5 18-4.5-7-7-4.5z"),
    "note": ("M4 20h16", "M14.5 4.5l3 3L9 16H6v-3z"),
    "lock": ("M6 11h12v9.5H6z", "M8.5 11V8a3.5 3.5 0 0 1 7 0v3"),
    "x": ("M6 6l12 12", "M18 6L6 18"),
    "image": ("M4 5h16v14H4z", "M4 16l4.5-4.5 4 4 2.5-2.5L20 18", "M15.5 9.5h.01"),
    "video": ("M3.5 6.5h11v11h-11z", "M14.5 10.5l6-3.5v10l-6-3.5"),
    "mic": ("M12 3a3 3 0 0 0-3 3v5a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z", "M5.5 11a6.5 6.5 0 0 0 13 0", "M12 17.5V21"),
    "file": ("M14 3H6.5A1.5 1.5 0 0 0 5 4.5v15A1.5 1.5 0 0 0 6.5 21h11a1.5 1.5 0 0 0 1.5-1.5V8z", "M14 3v5h5"),
    "map-pin": ("M12 21s-6.5-5.6-6.5-11a6.5 6.5 0 0 1 13 0c0 5.4-6.5 11-6.5 11z", "M12 12.5a2.5 2.5 0 1 0 0-5 2.5 2.5 0 0 0 0 5z"),
    "user": ("M19 20v-1.5a4 4 0 0 0-4-4H9a4 4 0 0 0-4 4V20", "M12 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z"),
    "tag": ("M3.5 12.5V4.5a1 1 0 0 1 1-1h8l8 8-9 9z", "M8 8h.01"),
    "download": ("M12 4v11", "M7.5 10.5L12 15l4.5-4.5", "M5 19.5h14"),
    "upload": ("M12 15V4", "M7.5 8.5L12 4l4.5 4.5", "M5 19.5h14"),
    "copy": ("M9 9h10a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H9a1 1 0 0 1-1-1V10a1 1 0 0 1 1-1z", "M5 15H4a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v1"),
    "mail": ("M4 5.5h16a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1v-11a1 1 0 0 1 1-1z", "M3.5 7l8.5 6 8.5-6"),
    "activity": ("M3 12h4l3-8 4 16 3-8h4",),
    "shield": ("M12 3l8 3v6c0 4.5-3.4 8.3-8 9-4.6-.7-8-4.5-8-9V6z", "M9 12l2 2 4-4"),
    "list": ("M9 6.5h11", "M9 12h11", "M9 17.5h11", "M4.5 6.5h.01", "M4.5 12h.01", "M4.5 17.5h.01"),
    "reaction": ("M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z", "M8.5 14a4.5 4.5 0 0 0 7 0"),
    "unread": ("M4 6.5h16v11H4z", "M4 7l8 6 8-6"),
    "keyboard": ("M3 6.5h18v11H3z", "M7 10h.01", "M11 10h.01", "M15 10h.01", "M8 14h8"),
    "filter": ("M4 5h16l-6.5 7.5V19l-3-1.5v-5z",),
    "more": ("M12 6.5h.01", "M12 12h.01", "M12 17.5h.01"),
    "circle-check": ("M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z", "M8 12.5l2.5 2.5L16 9.5"),
    "pause": ("M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z", "M10 9v6", "M14 9v6"),
    "refresh": ("M20 11a8 8 0 0 0-14.5-4.5L4 8", "M4 4v4h4", "M4 13a8 8 0 0 0 14.5 4.5L20 16", "M20 20v-4h-4"),
    "trash": ("M4.5 7h15", "M9.5 7V4.5h5V7", "M6.5 7l1 13h9l1-13"),
    "edit": ("M14.5 4.5l5 5L9 20H4v-5z",),
    "bolt": ("M13 3L5 13.5h6L10 21l8-10.5h-6z",),
}


@register.simple_tag
def icon(name: str, size: int = 20, css_class: str = "") -> SafeString:
    return _icon(name, size, css_class)


@functools.lru_cache(maxsize=512)
def _icon(name: str, size: int, css_class: str) -> SafeString:
    """The markup depends on the arguments only, and lists draw the same icons many times."""
    paths = ICONS[name]
    inner = format_html_join("", '<path d="{}"/>', ((d,) for d in paths))
    return format_html(
        '<svg class="icon {}" width="{}" height="{}" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
        'stroke-width="1.75" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">{}</svg>',
        css_class, size, size, inner,
    )


@register.filter
def phone(wa_id: str) -> str:
    return format_display(wa_id) if wa_id else ""


@register.filter
def initials(name: str) -> str:
    parts = [p for p in str(name or "").replace("@", " ").replace(".", " ").split() if p]
    return ("".join(p[0] for p in parts[:2]) or "?").upper()


@register.filter
def avatar_hue(value: object) -> int:
    """A stable hue per name, so the same person keeps the same avatar colour."""
    return sum(ord(ch) for ch in str(value)) * 37 % 360
