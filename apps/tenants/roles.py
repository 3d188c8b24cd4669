"""Which roles may enter which section. Roles gate whole sections (design.md, "Tenancy");
this map is the single place that says so, used by views, navigation and the API."""

from __future__ import annotations

from .models import Membership

R = Membership.Role

SECTION_ROLES: dict[str, frozenset[str]] = {
    "inbox": frozenset({R.OWNER, R.ADMIN, R.AGENT}),
    "contacts": frozenset({R.OWNER, R.ADMIN, R.AGENT, R.MARKETER}),
    "campaigns": frozenset({R.OWNER, R.ADMIN, R.MARKETER}),
    "templates": frozenset({R.OWNER, R.ADMIN, R.MARKETER, R.AGENT, R.DEVELOPER}),
    # Inside templates: creating, deleting and syncing them.
    "templates.manage": frozenset({R.OWNER, R.ADMIN, R.MARKETER}),
    "settings": frozenset({R.OWNER, R.ADMIN, R.DEVELOPER}),
    # Inside settings: numbers and team are for owners and admins only.
    "settings.numbers": frozenset({R.OWNER, R.ADMIN}),
    "settings.team": frozenset({R.OWNER, R.ADMIN}),
    "settings.api_keys": frozenset({R.OWNER, R.ADMIN, R.DEVELOPER}),
    "settings.webhooks": frozenset({R.OWNER, R.ADMIN, R.DEVELOPER}),
    # Inside contacts: agents view, add and edit contacts; importing, exporting, bulk changes,
    # deleting, attributes and segments are for owners, admins and marketers.
    "contacts.manage": frozenset({R.OWNER, R.ADMIN, R.MARKETER}),
}

# The page a member lands on, in order of preference.
LANDING_ORDER = ("inbox", "campaigns", "contacts", "templates", "settings")


def role_may(role: str, section: str) -> bool:
    return role in SECTION_ROLES[section]


def landing_section(role: str) -> str:
    return next(section for section in LANDING_ORDER if role_may(role, section))
