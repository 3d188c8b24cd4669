"""contact_filter: the one filter shape shared by the contacts page, segments and campaigns."""

from __future__ import annotations

import pytest

from apps.contacts.selectors import contact_filter
from apps.core.exceptions import ApplicationError
from tests.factories import ContactFactory, ContactTagFactory, TagFactory, TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    tenant = TenantFactory()
    vip, lisbon = TagFactory(tenant=tenant, name="vip"), TagFactory(tenant=tenant, name="lisbon")
    ana = ContactFactory(tenant=tenant, name="Ana", attributes={"plan": "gold", "orders": 12}, opt_in_status="opted_in")
    bo = ContactFactory(tenant=tenant, name="Bo", attributes={"plan": "free", "orders": 2})
    cy = ContactFactory(tenant=tenant, name="Cy", attributes={})
    ContactTagFactory(tenant=tenant, contact=ana, tag=vip)
    ContactTagFactory(tenant=tenant, contact=ana, tag=lisbon)
    ContactTagFactory(tenant=tenant, contact=bo, tag=lisbon)
    other = TenantFactory()
    ContactFactory(tenant=other, name="Ana elsewhere", attributes={"plan": "gold"})
    return tenant, ana, bo, cy


def names(tenant, filters):
    return sorted(contact.name for contact in contact_filter(tenant=tenant, filters=filters))


def test_filters_combine_and_stay_in_the_tenant(people):
    tenant, *_ = people
    assert names(tenant, {}) == ["Ana", "Bo", "Cy"]
    assert names(tenant, {"q": "an"}) == ["Ana"]
    assert names(tenant, {"tags": ["lisbon"]}) == ["Ana", "Bo"]
    assert names(tenant, {"tags": ["lisbon", "vip"]}) == ["Ana"]
    assert names(tenant, {"any_tags": ["vip", "nope"]}) == ["Ana"]
    assert names(tenant, {"opt_in": "opted_in"}) == ["Ana"]


@pytest.mark.parametrize(("rule", "expected"), [
    ({"key": "plan", "op": "eq", "value": "gold"}, ["Ana"]),
    ({"key": "plan", "op": "ne", "value": "gold"}, ["Bo", "Cy"]),
    ({"key": "plan", "op": "contains", "value": "RE"}, ["Bo"]),
    ({"key": "plan", "op": "exists"}, ["Ana", "Bo"]),
    ({"key": "plan", "op": "missing"}, ["Cy"]),
    ({"key": "orders", "op": "gt", "value": 5}, ["Ana"]),
    ({"key": "orders", "op": "lte", "value": 2}, ["Bo"]),
])
def test_attribute_rules(people, rule, expected):
    tenant, *_ = people
    assert names(tenant, {"attributes": [rule]}) == expected


@pytest.mark.parametrize("filters", [{"colour": "red"}, {"attributes": [{"key": "a", "op": "like"}]},
                                     {"attributes": [{"op": "eq"}]}])
def test_unknown_filters_are_refused(people, filters):
    tenant, *_ = people
    with pytest.raises(ApplicationError):
        list(contact_filter(tenant=tenant, filters=filters))
