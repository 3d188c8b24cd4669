from django.core import checks
from django.db import models
from django.test.utils import isolate_apps

from apps.core.checks import check_models, check_tenant_scoped_models
from apps.core.models import TenantScopedModel


def test_the_project_passes_the_tenancy_check():
    assert check_tenant_scoped_models() == []


def test_all_system_checks_pass():
    errors = [e for e in checks.run_checks() if e.level >= checks.ERROR]
    assert errors == []


@isolate_apps("apps.core")
def test_a_model_with_a_tenant_fk_but_no_scoping_is_an_error():
    class Leaky(models.Model):
        tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE)

        class Meta:
            app_label = "core"

    Leaky.__module__ = "apps.core.models"
    ids = {e.id for e in check_models([Leaky])}
    assert ids == {"parley.E001"}


@isolate_apps("apps.core")
def test_a_scoped_model_with_a_plain_objects_manager_or_untenanted_constraint_is_an_error():
    class Sloppy(TenantScopedModel):
        name = models.CharField(max_length=10)
        objects = models.Manager()

        class Meta(TenantScopedModel.Meta):
            app_label = "core"
            constraints = [models.UniqueConstraint(fields=["name"], name="sloppy_unique_name")]

    Sloppy.__module__ = "apps.core.models"
    ids = {e.id for e in check_models([Sloppy])}
    assert "parley.E003" in ids
    assert "parley.E005" in ids
