"""Settings overview and API keys pages, the settings sub-navigation, and the role map."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from apps.tenants.models import ApiKey
from apps.tenants.roles import SECTION_ROLES
from apps.tenants.selectors import api_key_get_by_plaintext
from tests.factories import (
    ApiKeyFactory,
    InvitationFactory,
    MembershipFactory,
    PhoneNumberFactory,
    UserFactory,
)

KEY = re.compile(r"prl_[0-9a-f]{12}\.[\w-]+")


def client_for(tenant, role: str, email: str | None = None) -> Client:
    user = UserFactory(**({"email": email} if email else {}))
    MembershipFactory(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_overview_shows_a_card_per_section_the_role_may_open(tenant):
    PhoneNumberFactory(tenant=tenant, status="error")
    ApiKeyFactory(tenant=tenant)
    InvitationFactory(tenant=tenant)
    admin = client_for(tenant, "admin").get("/t/acme/settings/").content.decode()
    for card in ("card-numbers", "card-team", "card-api-keys", "card-webhooks"):
        assert card in admin
    assert "1 needs attention" in admin and "1 invitation pending" in admin
    developer = client_for(tenant, "developer").get("/t/acme/settings/").content.decode()
    assert "card-api-keys" in developer and "card-webhooks" in developer
    assert "card-numbers" not in developer and "card-team" not in developer


def test_settings_nav_shows_only_allowed_sections(tenant):
    developer = client_for(tenant, "developer").get("/t/acme/settings/api-keys/").content.decode()
    nav = developer[developer.index('class="settings-tabs"'):developer.index("</nav>", developer.index("settings-tabs"))]
    assert "/settings/api-keys/" in nav and "/settings/webhooks/" in nav
    assert "/settings/numbers/" not in nav and "/settings/team/" not in nav
    owner = client_for(tenant, "owner").get("/t/acme/settings/numbers/").content.decode()
    for path in ("/settings/numbers/", "/settings/team/", "/settings/api-keys/", "/settings/webhooks/"):
        assert path in owner
    assert 'class="settings-tab is-active" href="/t/acme/settings/numbers/"' in owner


def test_create_an_api_key_shows_it_once_with_a_curl_example(tenant):
    client = client_for(tenant, "developer", "dev@acme.test")
    response = client.post("/t/acme/settings/api-keys/", {"name": "CRM sync"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    plaintext = KEY.search(html).group(0)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert "<html" not in html and 'data-copy="#new-key-value"' in html
    assert "curl -s http://testserver/api/v1/phone-numbers" in html and f"Bearer {plaintext}" in html
    key = api_key_get_by_plaintext(plaintext=plaintext)
    assert key.name == "CRM sync" and key.tenant == tenant and key.created_by.email == "dev@acme.test"
    page = client.get("/t/acme/settings/api-keys/").content.decode()
    assert f"prl_{key.prefix}…" in page and "CRM sync" in page and "Never" in page
    assert plaintext not in page and plaintext.split(".")[1] not in page
    # The key works on the API.
    api = Client().get("/api/v1/phone-numbers", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert api.status_code == 200
    assert "ago" in client.get("/t/acme/settings/api-keys/").content.decode()  # last used


def test_create_without_htmx_and_with_errors(tenant):
    client = client_for(tenant, "admin")
    full = client.post("/t/acme/settings/api-keys/", {"name": "Backoffice"})
    assert full.status_code == 200 and "<html" in full.content.decode() and KEY.search(full.content.decode())
    empty = client.post("/t/acme/settings/api-keys/", {"name": "   "})
    assert empty.status_code == 422 and "This field is required" in empty.content.decode()
    assert ApiKey.objects.for_tenant(tenant).count() == 1


def test_revoke_an_api_key(tenant):
    client = client_for(tenant, "admin")
    client.post("/t/acme/settings/api-keys/", {"name": "Temp"})
    key = ApiKey.objects.for_tenant(tenant).get()
    response = client.post(f"/t/acme/settings/api-keys/{key.pk}/revoke/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Revoked" in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    revoked_at = key.revoked_at
    assert client.post(f"/t/acme/settings/api-keys/{key.pk}/revoke/").status_code == 302
    key.refresh_from_db()
    assert key.revoked_at == revoked_at


@pytest.mark.parametrize("role", ["agent", "marketer"])
def test_roles_without_api_keys_are_refused(tenant, role):
    key = ApiKeyFactory(tenant=tenant)
    client = client_for(tenant, role)
    assert client.get("/t/acme/settings/api-keys/").status_code == 403
    assert client.post("/t/acme/settings/api-keys/", {"name": "x"}).status_code == 403
    assert client.post(f"/t/acme/settings/api-keys/{key.pk}/revoke/").status_code == 403
    assert ApiKey.objects.for_tenant(tenant).count() == 1
    key.refresh_from_db()
    assert key.revoked_at is None


def settings_routes():
    def walk(resolver, prefix=""):
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern, route)
            elif isinstance(pattern, URLPattern):
                yield route, pattern
    return [(route, p) for route, p in walk(get_resolver()) if route.startswith("t/<slug:tenant_slug>/settings/")]


def test_every_settings_view_is_gated_by_a_known_settings_section():
    routes = settings_routes()
    assert len(routes) >= 15
    for route, pattern in routes:
        section = getattr(pattern.callback, "tenant_section", None)
        assert section in SECTION_ROLES, f"{route} is not gated by tenant_member_required"
        assert section.startswith("settings"), f"{route} is gated by {section}"


def test_an_agent_is_refused_on_every_settings_url(tenant):
    """Fill every settings URL with the tenant's own objects: an agent gets 403 on each, by GET
    and by POST (a 405 for the method the view does not take is fine)."""
    from tests.test_tenant_isolation import PARAM_FACTORIES, PARAM_RE

    agent = client_for(tenant, "agent")
    objects = {name: factory(tenant=tenant).pk for name, factory in PARAM_FACTORIES.items()}
    for route, _ in settings_routes():
        url = "/" + PARAM_RE.sub(lambda m: str({"tenant_slug": "acme", **objects}[m.group("name")]), route)
        statuses = {agent.get(url).status_code, agent.post(url, {}).status_code}
        assert statuses <= {403, 405} and 403 in statuses, f"{url}: {statuses}"


def test_section_roles_cover_every_section_and_role():
    from apps.tenants.context_processors import NAV, SETTINGS_NAV
    from apps.tenants.models import Membership

    for key, *_ in NAV:
        assert key in SECTION_ROLES
    for *_, section, _icon in SETTINGS_NAV:
        assert section in SECTION_ROLES
    assert SECTION_ROLES["settings.numbers"] == {"owner", "admin"}
    assert SECTION_ROLES["settings.team"] == {"owner", "admin"}
    assert SECTION_ROLES["settings.api_keys"] == {"owner", "admin", "developer"}
    for roles in SECTION_ROLES.values():
        assert roles <= set(Membership.Role.values)
    for section in ("settings.numbers", "settings.team", "settings.api_keys", "settings.webhooks"):
        assert SECTION_ROLES[section] <= SECTION_ROLES["settings"]


def test_settings_urls_reverse():
    assert reverse("tenants:api_keys", args=["acme"]) == "/t/acme/settings/api-keys/"
    assert reverse("tenants:team", args=["acme"]) == "/t/acme/settings/team/"
    assert reverse("phone_numbers:list", args=["acme"]) == "/t/acme/settings/numbers/"
