"""Tenant isolation, walked over every URL pattern.

Every pattern must be classified here. Tenant pages (``<tenant_slug>``) are requested by a
member of another tenant, with that other tenant's slug and object ids: each must be a 404.
Patterns that take an object id are also requested with the member's own slug and the other
tenant's ids: 404 again. A new URL pattern that this walk does not know fails the test, so
coverage grows with the product.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests import factories as f

# URL parameter name -> factory building the object that parameter names.
PARAM_FACTORIES = {
    "conversation_id": f.ConversationFactory,
    "message_id": f.MessageFactory,
    "contact_id": f.ContactFactory,
    "template_id": f.MessageTemplateFactory,
    "campaign_id": f.CampaignFactory,
    "phone_number_id": f.PhoneNumberFactory,
    "api_key_id": f.ApiKeyFactory,
    "membership_id": f.MembershipFactory,
    "invitation_id": f.InvitationFactory,
    "endpoint_id": f.WebhookEndpointFactory,
    "delivery_id": f.WebhookDeliveryFactory,
    "media_id": f.MediaFactory,
    "label_id": f.LabelFactory,
    "tag_id": f.TagFactory,
    "canned_response_id": f.CannedResponseFactory,
    "recipient_id": f.CampaignRecipientFactory,
    "segment_id": f.SegmentFactory,
    "attribute_id": f.AttributeDefinitionFactory,
    "import_id": f.ContactImportFactory,
}

# Patterns with no tenant in them, and why they are safe.
NOT_TENANT_PATTERNS = {
    "healthz": "database and broker reachability only",
    "accounts/login/": "login",
    "accounts/logout/": "logout",
    "": "redirects to the user's own workspace",
    "tenants/": "lists only the user's own memberships (test_picker_lists_only_own_workspaces)",
    "invitations/<str:token>/": "the secret token names its one invitation and tenant (tests/tenants/test_team.py)",
    "webhooks/meta/": "provider callbacks: authenticated by signature, routed by provider id (tests/providers/test_intake.py)",
    "webhooks/gupshup/<str:token>/": "provider callbacks: the secret URL token names the number (test_intake.py)",
    "webhooks/gupshup-partner/<str:token>/": "provider callbacks: the secret URL token names the number (test_intake.py)",
}
# Whole prefixes covered by their own tests below.
COVERED_PREFIXES = {
    "admin/": "test_admin_is_tenant_filtered_for_staff_members",
    "api/v1/": "test_another_tenants_ids_are_404_on_every_api_url (API keys carry the tenant)",
    "graph/": "tests/api/test_graph.py: another tenant's number id answers Meta's 'does not exist' (code 100)",
}
NOT_TENANT_PATTERNS.update({
    "api/schema/": "the OpenAPI document, no tenant data",
    "api/docs/": "the API docs page, no tenant data",
})

PARAM_RE = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


def all_patterns(resolver=None, prefix: str = ""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from all_patterns(pattern, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern


def tenant_routes():
    return sorted({route for route, _ in all_patterns() if "<slug:tenant_slug>" in route})


def fill(route: str, values: dict[str, object]) -> str:
    def substitute(match: re.Match) -> str:
        return str(values[match.group("name")])

    return "/" + PARAM_RE.sub(substitute, route).replace("^", "").replace("$", "")


def test_every_url_pattern_is_classified():
    unclassified = []
    for route, _ in all_patterns():
        if "<slug:tenant_slug>" in route:
            unknown = {m.group("name") for m in PARAM_RE.finditer(route)} - {"tenant_slug"} - set(PARAM_FACTORIES)
            if unknown:
                unclassified.append(f"{route} (no factory for {', '.join(sorted(unknown))})")
        elif route not in NOT_TENANT_PATTERNS and not any(route.startswith(p) for p in COVERED_PREFIXES):
            unclassified.append(route)
    assert unclassified == [], "URL patterns the isolation walk does not cover: " + "; ".join(unclassified)


def request_any_method(client: Client, url: str):
    """GET, and when the view only takes POST (405), POST."""
    response = client.get(url)
    if response.status_code == 405:
        response = client.post(url, {})
    return response


@pytest.fixture
def two_tenants(db):
    mine, theirs = f.TenantFactory(slug="mine"), f.TenantFactory(slug="theirs")
    user = f.UserFactory(email="me@mine.test")
    f.MembershipFactory(tenant=mine, user=user, role="owner")
    f.MembershipFactory(tenant=theirs, role="owner")  # someone else owns the other tenant
    client = Client()
    client.force_login(user)
    their_objects = {name: factory(tenant=theirs).pk for name, factory in PARAM_FACTORIES.items()}
    return client, mine, theirs, their_objects


@pytest.mark.parametrize("route", tenant_routes())
def test_another_tenants_slug_and_ids_are_404_on_every_tenant_url(two_tenants, route):
    client, mine, theirs, their_objects = two_tenants
    urls = [fill(route, {"tenant_slug": theirs.slug, **their_objects})]
    if len(PARAM_RE.findall(route)) > 1:
        # My own workspace, their object ids.
        urls.append(fill(route, {"tenant_slug": mine.slug, **their_objects}))
    for url in urls:
        response = request_any_method(client, url)
        assert response.status_code == 404, f"{url} answered {response.status_code}"


def test_my_own_tenant_urls_work_so_the_404s_mean_something(two_tenants):
    client, mine, _, _ = two_tenants
    own = {name: factory(tenant=mine).pk for name, factory in PARAM_FACTORIES.items()}
    for route in tenant_routes():
        url = fill(route, {"tenant_slug": mine.slug, **own})
        response = request_any_method(client, url)
        assert response.status_code in (200, 204, 302), f"{url} answered {response.status_code}"


def test_picker_lists_only_own_workspaces(two_tenants):
    client, mine, theirs, _ = two_tenants
    body = client.get("/tenants/").content.decode()
    assert mine.name in body and theirs.name not in body


def test_admin_is_tenant_filtered_for_staff_members(db):
    from django.contrib.auth.models import Permission

    mine, theirs = f.TenantFactory(slug="mine"), f.TenantFactory(slug="theirs")
    staff = f.UserFactory(email="staff@mine.test", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__in=["view_contact", "change_contact"]))
    f.MembershipFactory(tenant=mine, user=staff)
    own = f.ContactFactory(tenant=mine, name="Own Contact")
    other = f.ContactFactory(tenant=theirs, name="Their Contact")
    client = Client()
    client.force_login(staff)
    listing = client.get("/admin/contacts/contact/").content.decode()
    assert "Own Contact" in listing and "Their Contact" not in listing
    assert client.get(f"/admin/contacts/contact/{own.pk}/change/").status_code == 200
    # Django's admin redirects a missing object to the index with a message: not found, not shown.
    response = client.get(f"/admin/contacts/contact/{other.pk}/change/")
    assert response.status_code == 302 and "Their Contact" not in response.content.decode()


def test_admin_refuses_non_staff_members(member_client):
    response = member_client.get("/admin/contacts/contact/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def api_routes():
    return sorted({route for route, _ in all_patterns() if route.startswith("api/v1/") and PARAM_RE.search(route)})


def test_every_api_id_parameter_has_a_factory():
    unknown = {m.group("name") for route in api_routes() for m in PARAM_RE.finditer(route)} - set(PARAM_FACTORIES)
    assert unknown == set(), f"API URL parameters the isolation walk cannot fill: {sorted(unknown)}"


@pytest.mark.parametrize("route", api_routes())
def test_another_tenants_ids_are_404_on_every_api_url(db, route):
    from rest_framework.test import APIClient

    from apps.tenants.services import api_key_create

    theirs = f.TenantFactory(slug="theirs")
    their_objects = {name: factory(tenant=theirs).pk for name, factory in PARAM_FACTORIES.items()}
    _, my_key = api_key_create(tenant=f.TenantFactory(slug="mine"), name="probe")
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {my_key}")
    url = fill(route, their_objects)
    for method in ("get", "post", "patch", "put", "delete"):
        response = getattr(client, method)(url, {}, format="json")
        if response.status_code == 405:
            continue
        assert response.status_code == 404, f"{method.upper()} {url} answered {response.status_code}"
        assert response.json()["error"]["code"] == "not_found"
