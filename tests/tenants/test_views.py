import pytest
from django.test import Client
from django.urls import reverse

from apps.tenants.models import Membership
from tests.factories import MembershipFactory, TenantFactory, UserFactory


def test_login_page_renders(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Sign in to your workspace" in response.content


def test_anonymous_users_are_sent_to_login(client, tenant):
    response = client.get("/t/acme/inbox/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/t/acme/inbox/")


def test_login_with_one_workspace_lands_in_its_inbox(db):
    user = UserFactory(email="agent@acme.test")
    MembershipFactory(tenant=TenantFactory(slug="acme"), user=user, role="agent")
    client = Client()
    response = client.post("/accounts/login/", {"username": "agent@acme.test", "password": "password"}, follow=True)
    assert response.redirect_chain[-1][0] == "/t/acme/inbox/"
    assert b"Inbox" in response.content


def test_wrong_password_shows_an_error(db):
    UserFactory(email="agent@acme.test")
    response = Client().post("/accounts/login/", {"username": "agent@acme.test", "password": "nope"})
    assert response.status_code == 200
    assert b"alert-error" in response.content


def test_several_workspaces_go_through_the_picker(db):
    user = UserFactory()
    MembershipFactory(tenant=TenantFactory(name="Alpha"), user=user)
    MembershipFactory(tenant=TenantFactory(name="Beta"), user=user, role="marketer")
    client = Client()
    client.force_login(user)
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == "/tenants/"
    assert b"Alpha" in response.content and b"Beta" in response.content


@pytest.mark.parametrize("path", ["/t/globex/", "/t/globex/inbox/", "/t/globex/settings/", "/t/nope/contacts/"])
def test_another_tenants_pages_are_404(member_client, other_tenant, path):
    assert member_client.get(path).status_code == 404


@pytest.mark.parametrize("role,allowed,forbidden", [
    ("agent", ["inbox", "contacts", "templates"], ["campaigns", "settings"]),
    ("marketer", ["campaigns", "contacts", "templates"], ["inbox", "settings"]),
    ("developer", ["templates", "settings"], ["inbox", "campaigns", "contacts"]),
    ("admin", ["inbox", "campaigns", "contacts", "templates", "settings"], []),
])
def test_roles_gate_whole_sections(tenant, role, allowed, forbidden):
    user = UserFactory()
    MembershipFactory(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    names = {"inbox": "conversations:inbox", "contacts": "contacts:list", "templates": "message_templates:list",
             "campaigns": "campaigns:list", "settings": "tenants:settings"}
    for section in allowed:
        response = client.get(reverse(names[section], args=["acme"]))
        assert response.status_code == 200, section
        nav = [item["key"] for item in response.context["nav"]]
        assert set(nav) == set(allowed)
    for section in forbidden:
        assert client.get(reverse(names[section], args=["acme"])).status_code == 403, section


def test_tenant_root_redirects_to_the_roles_landing_page(tenant):
    user = UserFactory()
    MembershipFactory(tenant=tenant, user=user, role=Membership.Role.MARKETER)
    client = Client()
    client.force_login(user)
    assert client.get("/t/acme/")["Location"] == "/t/acme/campaigns/"


def test_shell_pages_render_the_workspace_data(member_client, tenant, django_assert_max_num_queries):
    from tests.factories import ContactFactory, ConversationFactory, MessageTemplateFactory

    ConversationFactory.create_batch(3, tenant=tenant, last_message_preview="Where is my parcel?")
    ContactFactory(tenant=tenant, name="Zoe Quinn")
    MessageTemplateFactory(tenant=tenant, name="order_update")
    inbox = member_client.get("/t/acme/inbox/")
    assert inbox.content.count(b"Where is my parcel?") == 3
    assert b"Zoe Quinn" in member_client.get("/t/acme/contacts/?q=zoe").content
    assert b"order_update" in member_client.get("/t/acme/templates/").content
    settings_page = member_client.get("/t/acme/settings/")
    assert b"card-team" in settings_page.content and b"owner@acme.test" in member_client.get(
        "/t/acme/settings/team/").content


def test_user_text_is_escaped(member_client, tenant):
    from tests.factories import ContactFactory

    ContactFactory(tenant=tenant, name="<script>alert(1)</script>")
    body = member_client.get("/t/acme/contacts/").content
    assert b"<script>alert(1)</script>" not in body
    assert b"&lt;script&gt;" in body


def test_logout(member_client):
    response = member_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert member_client.get("/t/acme/inbox/").status_code == 302
