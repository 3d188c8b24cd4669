from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from apps.contacts.models import Contact
from apps.conversations.models import Conversation, Message
from apps.message_templates.models import MessageTemplate
from apps.phone_numbers.models import PhoneNumber
from apps.tenants.models import Membership, Tenant
from apps.tenants.selectors import api_key_get_by_plaintext


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_tenant_with_owner(db):
    run("create_tenant", "acme", "--name", "Acme Inc", "--owner-email", "Boss@Acme.test", "--owner-password", "pw12345!")
    tenant = Tenant.objects.get(slug="acme")
    membership = Membership.objects.for_tenant(tenant).get()
    assert membership.role == "owner"
    assert membership.user.email == "boss@acme.test"
    assert membership.user.check_password("pw12345!")


def test_create_tenant_refuses_duplicates_and_bad_slugs(db):
    run("create_tenant", "acme", "--name", "A", "--owner-email", "a@a.test", "--owner-password", "x")
    with pytest.raises(CommandError, match="already exists"):
        run("create_tenant", "acme", "--name", "A", "--owner-email", "a@a.test", "--owner-password", "x")
    with pytest.raises(CommandError, match="not a valid slug"):
        run("create_tenant", "Not A Slug", "--name", "A", "--owner-email", "a@a.test", "--owner-password", "x")


@pytest.fixture
def acme(db):
    run("create_tenant", "acme", "--name", "Acme", "--owner-email", "o@acme.test", "--owner-password", "pw")
    return Tenant.objects.get(slug="acme")


def test_add_meta_cloud_number(acme):
    out = run("add_phone_number", "--tenant", "acme", "--provider", "meta_cloud", "--phone-number-id", "1234567890",
              "--display-number", "+1 555 000 1111", "--waba-id", "W1", "--access-token", "EAAG", "--app-secret", "S",
              "--verify-token", "V", "--graph-url", "http://127.0.0.1:8001/", "--mps", "1000")
    number = PhoneNumber.objects.for_tenant(acme).get()
    assert (number.provider, number.phone_number_id, number.display_number, number.waba_id) == (
        "meta_cloud", "1234567890", "15550001111", "W1")
    assert number.credentials == {"access_token": "EAAG", "app_secret": "S"}
    assert number.verify_token == "V" and number.graph_api_url == "http://127.0.0.1:8001"
    assert number.messages_per_second == 1000
    assert "verify token: V" in out


def test_add_gupshup_numbers(acme):
    run("add_phone_number", "--tenant", "acme", "--provider", "gupshup", "--app-name", "AcmeApp", "--api-key", "k",
        "--source", "917834811114")
    run("add_phone_number", "--tenant", "acme", "--provider", "gupshup_partner", "--app-id", "app-uuid",
        "--app-token", "tok", "--display-number", "919000000001")
    classic, partner = PhoneNumber.objects.for_tenant(acme).order_by("id")
    assert classic.provider_app_id == "AcmeApp" and classic.display_number == "917834811114"
    assert classic.credentials == {"api_key": "k"} and classic.webhook_token
    assert partner.provider_app_id == "app-uuid" and partner.credentials == {"app_token": "tok"}


@pytest.mark.parametrize("args,message", [
    (["--provider", "meta_cloud", "--display-number", "15550001111"], "needs: phone_number_id, waba_id, access_token, app_secret"),
    (["--provider", "gupshup", "--source", "15550001111"], "needs: app_name, api_key"),
    (["--provider", "meta_cloud", "--display-number", "12", "--phone-number-id", "1", "--waba-id", "w",
      "--access-token", "t", "--app-secret", "s"], "not a possible phone number"),
    (["--provider", "meta_cloud", "--display-number", "15550001111", "--phone-number-id", "1", "--waba-id", "w",
      "--access-token", "t", "--app-secret", "s", "--mps", "5000"], "between 1 and 1000"),
])
def test_add_phone_number_explains_what_is_wrong(acme, args, message):
    with pytest.raises(CommandError, match=message):
        run("add_phone_number", "--tenant", "acme", *args)
    assert not PhoneNumber.objects.for_tenant(acme).exists()


def test_add_phone_number_unknown_tenant(db):
    with pytest.raises(CommandError, match="No tenant"):
        run("add_phone_number", "--tenant", "nope", "--provider", "gupshup", "--source", "1")


def test_create_api_key_prints_the_key_alone_on_the_last_line(acme):
    out = run("create_api_key", "--tenant", "acme", "--name", "CRM")
    last_line = out.strip().splitlines()[-1]
    api_key = api_key_get_by_plaintext(plaintext=last_line)
    assert api_key is not None and api_key.tenant == acme and api_key.name == "CRM"


def test_seed_demo_is_idempotent(db):
    run("seed_demo")
    counts = lambda: (Tenant.objects.count(), get_user_model().objects.count(), PhoneNumber.objects.unscoped().count(),  # noqa: E731
                      Contact.objects.unscoped().count(), MessageTemplate.objects.unscoped().count(),
                      Conversation.objects.unscoped().count(), Message.objects.unscoped().count())
    first = counts()
    run("seed_demo")
    assert counts() == first
    tenant = Tenant.objects.get(slug="demo")
    user = get_user_model().objects.get(email="demo@example.com")
    assert user.check_password("demo")
    assert Membership.objects.for_tenant(tenant).get(user=user).role == "owner"
    number = PhoneNumber.objects.for_tenant(tenant).get()
    assert number.graph_api_url == "http://127.0.0.1:8001"
    assert MessageTemplate.objects.for_tenant(tenant).filter(status="APPROVED").count() == 4
    assert first[5] >= 5 and first[6] >= 8


def test_seed_demo_if_empty_leaves_existing_databases_alone(acme):
    out = run("seed_demo", "--if-empty")
    assert "not seeding" in out
    assert not Tenant.objects.filter(slug="demo").exists()
