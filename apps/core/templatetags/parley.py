"""Template helpers: inline SVG icons (no icon font, no network) and small formatters."""

from __future__ import annotations

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
}


@register.simple_tag
def icon(name: str, size: int = 20, css_class: str = "") -> SafeString:
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
