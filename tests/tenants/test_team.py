"""Settings → Team: invitations by email (expiry, reuse, wrong user, wrong tenant), roles,
removal, the last owner, ownership transfer, and who may do what."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.core.exceptions import ApplicationError
from apps.tenants.models import Invitation, Membership
from apps.tenants.services import invitation_accept, membership_remove, membership_role_change
from tests.factories import InvitationFactory, MembershipFactory, TenantFactory, UserFactory

LINK = re.compile(r"http://testserver/invitations/([\w-]+)/")


def member(tenant, role: str, email: str | None = None) -> tuple[Membership, Client]:
    user = UserFactory(**({"email": email} if email else {}))
    membership = MembershipFactory(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return membership, client


def memberships(tenant) -> dict[str, str]:
    return {m.user.email: m.role for m in Membership.objects.for_tenant(tenant).select_related("user")}


def invite(client: Client, email: str, role: str = "agent", **headers):
    return client.post("/t/acme/settings/team/", {"email": email, "role": role}, **headers)


def test_team_page_lists_members_and_roles(tenant):
    _, client = member(tenant, "admin", "admin@acme.test")
    member(tenant, "marketer", "mia@acme.test")
    page = client.get("/t/acme/settings/team/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "admin@acme.test" in html and "mia@acme.test" in html
    assert 'value="marketer" selected' in html
    # An admin cannot hand out the owner role.
    assert '<option value="owner"' not in html


def test_invite_sends_an_email_with_a_one_time_link(tenant):
    _, client = member(tenant, "owner", "boss@acme.test")
    response = invite(client, "New.Person@Example.com", "marketer")
    assert response.status_code == 200 and "Invitation sent to new.person@example.com" in response.content.decode()
    [email] = mail.outbox
    assert email.to == ["new.person@example.com"] and "Acme" in email.subject
    token = LINK.search(email.body).group(1)
    invitation = Invitation.objects.for_tenant(tenant).get()
    assert invitation.role == "marketer" and invitation.invited_by.email == "boss@acme.test"
    assert token not in invitation.token_hash  # only a hash is stored
    assert "new.person@example.com" in client.get("/t/acme/settings/team/").content.decode()


def test_invite_over_htmx_returns_the_panel_and_the_list(tenant):
    _, client = member(tenant, "admin")
    response = invite(client, "x@example.com", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert 'id="invite-panel"' in html and 'id="invitations" hx-swap-oob="true"' in html
    assert "<html" not in html and "x@example.com" in html


def test_invite_errors(tenant):
    _, client = member(tenant, "admin")
    member(tenant, "agent", "already@acme.test")
    assert "Enter a valid email address" in invite(client, "not-an-email").content.decode()
    assert "already a member" in invite(client, "already@acme.test").content.decode()
    assert "Only an owner can make someone an owner" in invite(client, "o@example.com", "owner").content.decode()
    assert mail.outbox == [] and not Invitation.objects.for_tenant(tenant).exists()


def test_a_failing_email_leaves_no_invitation(tenant, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    _, client = member(tenant, "admin")
    response = invite(client, "x@example.com")
    assert "could not be sent" in response.content.decode()
    assert not Invitation.objects.for_tenant(tenant).exists()


def test_a_new_person_accepts_by_choosing_name_and_password(tenant, client):
    _, admin = member(tenant, "admin")
    invite(admin, "newbie@example.com", "developer")
    url = LINK.search(mail.outbox[0].body).group(0).removeprefix("http://testserver")
    page = client.get(url)
    assert page.status_code == 200 and "Join Acme" in page.content.decode()
    bad = client.post(url, {"name": "Nia Newbie", "password": "short", "password_again": "short"})
    assert bad.status_code == 422 and "too short" in bad.content.decode()
    differ = client.post(url, {"name": "Nia", "password": "a-long-pass-phrase", "password_again": "other-phrase"})
    assert "The two passwords differ" in differ.content.decode()
    done = client.post(url, {"name": "Nia Newbie", "password": "a-long-pass-phrase",
                             "password_again": "a-long-pass-phrase"})
    assert done.status_code == 302 and done["Location"] == "/t/acme/"
    assert memberships(tenant)["newbie@example.com"] == "developer"
    assert client.get("/t/acme/settings/api-keys/").status_code == 200  # signed in, developer
    assert Client().login(username="newbie@example.com", password="a-long-pass-phrase")
    # The link works once.
    again = Client().get(url)
    assert again.status_code == 410 and "already been used" in again.content.decode()


def test_an_existing_signed_in_user_accepts_with_one_click(tenant):
    _, admin = member(tenant, "admin")
    other_workspace = TenantFactory(slug="globex")
    existing, client = member(other_workspace, "owner", "sam@example.com")
    invite(admin, "sam@example.com", "agent")
    url = LINK.search(mail.outbox[0].body).group(0).removeprefix("http://testserver")
    assert "Join Acme" in client.get(url).content.decode()
    response = client.post(url)
    assert response.status_code == 302
    assert memberships(tenant)["sam@example.com"] == "agent"
    assert memberships(other_workspace)["sam@example.com"] == "owner"  # untouched


def test_an_existing_user_who_is_signed_out_is_asked_to_sign_in(tenant, client):
    UserFactory(email="sam@example.com")
    InvitationFactory(tenant=tenant, email="sam@example.com", token="tok-sam")
    page = client.get("/invitations/tok-sam/")
    assert "Sign in to accept" in page.content.decode() and "/accounts/login/?next=/invitations/tok-sam/" in \
        page.content.decode()
    refused = client.post("/invitations/tok-sam/", {"name": "x", "password": "p", "password_again": "p"})
    assert refused.status_code == 422 and not Membership.objects.for_tenant(tenant).filter(
        user__email="sam@example.com").exists()


def test_the_wrong_signed_in_user_cannot_accept(tenant):
    InvitationFactory(tenant=tenant, email="invited@example.com", token="tok-1")
    _, intruder = member(TenantFactory(slug="globex"), "owner", "intruder@example.com")
    page = intruder.get("/invitations/tok-1/")
    assert "but this invitation is for invited@example.com" in page.content.decode()
    response = intruder.post("/invitations/tok-1/")
    assert response.status_code == 422 and "Sign out and open the link again" in response.content.decode()
    assert "intruder@example.com" not in memberships(tenant)


@pytest.mark.parametrize("state,status,words", [
    ({"expires_at": timezone.now() - timedelta(minutes=1)}, 410, "expired"),
    ({"accepted_at": timezone.now()}, 410, "already been used"),
    ({"revoked_at": timezone.now()}, 410, "withdrawn"),
])
def test_unusable_invitations(tenant, client, state, status, words):
    InvitationFactory(tenant=tenant, email="late@example.com", token="tok-x", **state)
    for response in (client.get("/invitations/tok-x/"),
                     client.post("/invitations/tok-x/", {"name": "Late", "password": "a-long-pass-phrase",
                                                         "password_again": "a-long-pass-phrase"})):
        assert response.status_code == status and words in response.content.decode()
    assert "late@example.com" not in memberships(tenant)


def test_unknown_tokens_are_404(client, db):
    response = client.get("/invitations/no-such-token/")
    assert response.status_code == 404 and "not valid" in response.content.decode()


def test_an_invitation_joins_its_own_workspace_only(tenant):
    other = TenantFactory(slug="globex")
    InvitationFactory(tenant=other, email="x@example.com", token="tok-globex", role="admin")
    user = UserFactory(email="x@example.com")
    membership = invitation_accept(token="tok-globex", user=user)
    assert membership.tenant == other and "x@example.com" not in memberships(tenant)
    # And acme's admins cannot see or withdraw globex's invitation.
    _, admin = member(tenant, "admin")
    invitation = Invitation.objects.for_tenant(other).get()
    assert admin.post(f"/t/acme/settings/team/invitations/{invitation.pk}/withdraw/").status_code == 404
    assert admin.post(f"/t/globex/settings/team/invitations/{invitation.pk}/withdraw/").status_code == 404


def test_a_new_invitation_replaces_the_pending_one(tenant):
    _, admin = member(tenant, "admin")
    invite(admin, "twice@example.com")
    invite(admin, "twice@example.com", "marketer")
    first, second = (LINK.search(m.body).group(1) for m in mail.outbox)
    assert Client().get(f"/invitations/{first}/").status_code == 410
    assert Client().get(f"/invitations/{second}/").status_code == 200


def test_withdraw_an_invitation(tenant):
    _, admin = member(tenant, "admin")
    invitation = InvitationFactory(tenant=tenant, token="tok-w")
    response = admin.post(f"/t/acme/settings/team/invitations/{invitation.pk}/withdraw/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response.content == b""
    assert Client().get("/invitations/tok-w/").status_code == 410


def test_change_a_role_over_htmx(tenant):
    _, admin = member(tenant, "admin")
    agent, _ = member(tenant, "agent", "ana@acme.test")
    response = admin.post(f"/t/acme/settings/team/members/{agent.pk}/role/", {"role": "marketer"},
                          HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and f'id="member-{agent.pk}"' in response.content.decode()
    assert memberships(tenant)["ana@acme.test"] == "marketer"
    nonsense = admin.post(f"/t/acme/settings/team/members/{agent.pk}/role/", {"role": "wizard"},
                          HTTP_HX_REQUEST="true")
    assert "Choose one of the roles" in nonsense.content.decode()


def test_admins_cannot_touch_owners_or_make_owners(tenant):
    _, admin = member(tenant, "admin")
    owner, _ = member(tenant, "owner", "boss@acme.test")
    agent, _ = member(tenant, "agent", "ana@acme.test")
    r = admin.post(f"/t/acme/settings/team/members/{agent.pk}/role/", {"role": "owner"}, HTTP_HX_REQUEST="true")
    assert "Only an owner" in r.content.decode()
    r = admin.post(f"/t/acme/settings/team/members/{owner.pk}/role/", {"role": "agent"}, HTTP_HX_REQUEST="true")
    assert "Only an owner" in r.content.decode()
    r = admin.post(f"/t/acme/settings/team/members/{owner.pk}/remove/", {"confirm": "remove"}, HTTP_HX_REQUEST="true")
    assert "Only an owner can remove an owner" in r.content.decode()
    assert admin.post(f"/t/acme/settings/team/members/{agent.pk}/transfer/",
                      {"confirm": "transfer"}).status_code == 302
    assert memberships(tenant) == {"boss@acme.test": "owner", "ana@acme.test": "agent",
                                   admin_email(tenant): "admin"}


def admin_email(tenant) -> str:
    return next(email for email, role in memberships(tenant).items() if role == "admin")


def test_remove_a_member(tenant):
    _, admin = member(tenant, "admin")
    agent, _ = member(tenant, "agent", "ana@acme.test")
    response = admin.post(f"/t/acme/settings/team/members/{agent.pk}/remove/", {"confirm": "remove"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response.content == b""
    assert "ana@acme.test" not in memberships(tenant)


def test_the_last_owner_cannot_leave_or_be_demoted(tenant):
    owner, client = member(tenant, "owner", "boss@acme.test")
    r = client.post(f"/t/acme/settings/team/members/{owner.pk}/remove/", {"confirm": "remove"}, HTTP_HX_REQUEST="true")
    assert "You are the only owner" in r.content.decode()
    r = client.post(f"/t/acme/settings/team/members/{owner.pk}/role/", {"role": "admin"}, HTTP_HX_REQUEST="true")
    assert "is the only owner" in r.content.decode()
    assert memberships(tenant) == {"boss@acme.test": "owner"}
    with pytest.raises(ApplicationError):
        membership_remove(tenant=tenant, actor=owner, membership_id=owner.pk)
    with pytest.raises(ApplicationError):
        membership_role_change(tenant=tenant, actor=owner, membership_id=owner.pk, role="agent")


def test_an_owner_may_leave_when_another_owner_remains(tenant):
    owner, client = member(tenant, "owner", "boss@acme.test")
    member(tenant, "owner", "boss2@acme.test")
    r = client.post(f"/t/acme/settings/team/members/{owner.pk}/remove/", {"confirm": "remove"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and r["HX-Redirect"] == "/"
    assert memberships(tenant) == {"boss2@acme.test": "owner"}
    assert client.get("/t/acme/settings/").status_code == 404


def test_transfer_ownership(tenant):
    owner, client = member(tenant, "owner", "boss@acme.test")
    admin, _ = member(tenant, "admin", "next@acme.test")
    page = client.get("/t/acme/settings/team/").content.decode()
    assert "Make owner" in page
    response = client.post(f"/t/acme/settings/team/members/{admin.pk}/transfer/", {"confirm": "transfer"}, HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == "/t/acme/settings/team/"
    assert memberships(tenant) == {"boss@acme.test": "admin", "next@acme.test": "owner"}
    assert "now owns Acme" in client.get("/t/acme/settings/team/").content.decode()
    # The former owner, now an admin, cannot transfer again.
    again = client.post(f"/t/acme/settings/team/members/{owner.pk}/transfer/", {"confirm": "transfer"})
    assert again.status_code == 302
    assert memberships(tenant)["boss@acme.test"] == "admin"


def test_demoting_yourself_out_of_the_team_page_leaves_it(tenant):
    me, client = member(tenant, "admin", "me@acme.test")
    response = client.post(f"/t/acme/settings/team/members/{me.pk}/role/", {"role": "agent"}, HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == "/t/acme/"
    assert client.get("/t/acme/settings/team/").status_code == 403


@pytest.mark.parametrize("role", ["agent", "marketer", "developer"])
def test_roles_without_team_are_refused_everywhere(tenant, role):
    victim, _ = member(tenant, "agent", "victim@acme.test")
    invitation = InvitationFactory(tenant=tenant, token="tok-r")
    _, client = member(tenant, role)
    for url in (reverse("tenants:team", args=["acme"]),
                reverse("tenants:member_role", args=["acme", victim.pk]),
                reverse("tenants:member_remove", args=["acme", victim.pk]),
                reverse("tenants:member_transfer", args=["acme", victim.pk]),
                reverse("tenants:invitation_withdraw", args=["acme", invitation.pk])):
        assert client.post(url, {"role": "owner", "email": "x@example.com"}).status_code == 403, url
    assert client.get(reverse("tenants:team", args=["acme"])).status_code == 403
    assert memberships(tenant)["victim@acme.test"] == "agent"
    assert mail.outbox == []


def test_remove_and_transfer_need_the_explicit_confirmation(tenant):
    owner, client = member(tenant, "owner", "boss@acme.test")
    agent, _ = member(tenant, "agent", "ana@acme.test")
    assert client.post(f"/t/acme/settings/team/members/{agent.pk}/remove/").status_code == 302
    assert client.post(f"/t/acme/settings/team/members/{agent.pk}/transfer/").status_code == 302
    assert memberships(tenant) == {"boss@acme.test": "owner", "ana@acme.test": "agent"}
    assert "Confirm the removal" in client.get("/t/acme/settings/team/").content.decode()
