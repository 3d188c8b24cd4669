import pytest
from django.apps import apps

from apps.contacts.models import Contact
from apps.core.models import TenantScopedModel
from apps.core.scoping import TenantScopeError, current_tenant_id, tenant_scope, with_tenant_scope
from tests.factories import ContactFactory, TenantFactory

SCOPED_MODELS = [m for m in apps.get_models() if issubclass(m, TenantScopedModel)]


def test_every_tenant_owned_model_is_covered():
    labels = {m._meta.label for m in SCOPED_MODELS}
    # The whole data model of design.md is tenant-owned.
    assert {"tenants.Membership", "tenants.ApiKey", "phone_numbers.PhoneNumber", "contacts.Contact",
            "message_templates.MessageTemplate", "conversations.Conversation", "conversations.Message",
            "conversations.MessageAttempt", "campaigns.Campaign", "campaigns.CampaignRecipient",
            "providers.WebhookEvent", "webhooks.WebhookEndpoint", "webhooks.WebhookDelivery"} <= labels


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda m: m._meta.label)
def test_scoped_manager_fails_closed_without_a_tenant(db, model):
    with pytest.raises(TenantScopeError):
        list(model.objects.all())
    with pytest.raises(TenantScopeError):
        model.objects.filter(pk=1).exists()
    with pytest.raises(TenantScopeError):
        model.objects.count()


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda m: m._meta.label)
def test_scoped_manager_filters_by_the_tenant_in_scope(db, model):
    tenant = TenantFactory()
    with tenant_scope(tenant):
        sql = str(model.objects.all().query)
    assert f'"tenant_id" = {tenant.pk}' in sql.replace("`", '"')


def test_scope_sees_only_its_tenants_rows(db):
    a, b = TenantFactory(), TenantFactory()
    mine = ContactFactory(tenant=a, wa_id="14155550001")
    ContactFactory(tenant=b, wa_id="14155550001")
    with tenant_scope(a):
        assert list(Contact.objects.all()) == [mine]
        assert Contact.objects.filter(wa_id="14155550001").count() == 1
    assert Contact.objects.for_tenant(b).count() == 1
    assert Contact.objects.unscoped().count() == 2
    # The default manager stays plain, for admin and related lookups.
    assert Contact._default_manager.count() == 2


def test_scope_nests_and_resets(db):
    a, b = TenantFactory(), TenantFactory()
    assert current_tenant_id() is None
    with tenant_scope(a):
        assert current_tenant_id() == a.pk
        with tenant_scope(b.pk):
            assert current_tenant_id() == b.pk
        assert current_tenant_id() == a.pk
    assert current_tenant_id() is None


def test_scope_resets_after_an_exception(db):
    a = TenantFactory()
    with pytest.raises(RuntimeError), tenant_scope(a):
        raise RuntimeError("boom")
    assert current_tenant_id() is None


def test_scope_rejects_unsaved_or_bogus_tenants(db):
    with pytest.raises(TenantScopeError):
        with tenant_scope(None):
            pass
    with pytest.raises(TenantScopeError):
        with tenant_scope("1"):
            pass
    with pytest.raises(TenantScopeError):
        with tenant_scope(TenantFactory.build()):
            pass


def test_with_tenant_scope_reads_the_tenant_id_kwarg(db):
    tenant = TenantFactory()
    ContactFactory(tenant=tenant)
    ContactFactory()

    @with_tenant_scope()
    def count_contacts(*, tenant_id):
        return Contact.objects.count(), current_tenant_id()

    assert count_contacts(tenant_id=tenant.pk) == (1, tenant.pk)
    assert current_tenant_id() is None
    with pytest.raises(TenantScopeError):
        count_contacts()  # type: ignore[call-arg]


def test_create_fills_in_the_scoped_tenant(db):
    tenant = TenantFactory()
    with tenant_scope(tenant):
        contact = Contact.objects.create(wa_id="14155550002")
    assert contact.tenant_id == tenant.pk
    with pytest.raises(TenantScopeError):
        Contact.objects.create(wa_id="14155550003")
