"""/api/v1/contacts: list with filters and paging bounds, create, read, change, delete, bulk
upsert (per-row errors, duplicates, 1,000-row limit, bounded queries), tenant isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.contacts.models import Contact, ContactTag, Tag
from apps.core.scoping import tenant_scope
from apps.webhooks.models import WebhookDelivery
from tests.factories import ContactFactory, ContactTagFactory, TagFactory, WebhookEndpointFactory

URL = "/api/v1/contacts"
BULK_URL = "/api/v1/contacts/bulk"
OUTPUT_FIELDS = {"id", "wa_id", "name", "profile_name", "attributes", "tags", "opt_in_status", "opt_in_source",
                 "opted_in_at", "opted_out_at", "created_at", "updated_at"}


def contacts_of(tenant):
    return Contact.objects.for_tenant(tenant)


def tag_names(contact):
    return sorted(ContactTag.objects.for_tenant(contact.tenant_id).filter(contact=contact)
                  .values_list("tag__name", flat=True))


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# -- list -----------------------------------------------------------------------------------

def test_list_shape_and_default_paging(api_client, tenant):
    contacts = [ContactFactory(tenant=tenant) for _ in range(25)]
    ContactTagFactory(contact=contacts[-1], tag=TagFactory(tenant=tenant, name="vip"))
    first = api_client.get(URL)
    assert first.status_code == 200
    body = first.json()
    assert (body["page"], body["per_page"], body["has_more"], body["next_page"]) == (1, 20, True, 2)
    assert [row["id"] for row in body["data"]] == [c.pk for c in reversed(contacts)][:20]
    assert set(body["data"][0]) == OUTPUT_FIELDS
    assert body["data"][0]["tags"] == ["vip"]
    second = api_client.get(URL, {"page": 2}).json()
    assert [row["id"] for row in second["data"]] == [c.pk for c in reversed(contacts)][20:]
    assert (second["has_more"], second["next_page"]) == (False, None)
    assert api_client.get(URL, {"page": 3}).json()["data"] == []


@pytest.mark.parametrize("params", [{"per_page": 0}, {"per_page": 101}, {"page": 0}, {"per_page": "x"}])
def test_paging_bounds(api_client, params):
    error = assert_error(api_client.get(URL, params), 400, "invalid_request")
    assert set(error["details"]) == set(params)


def test_per_page_100_is_allowed(api_client, tenant):
    ContactFactory.create_batch(3, tenant=tenant)
    body = api_client.get(URL, {"per_page": 100}).json()
    assert body["per_page"] == 100 and len(body["data"]) == 3


def test_list_query_count_does_not_grow_with_the_page(api_client, tenant, django_assert_max_num_queries):
    vip = TagFactory(tenant=tenant, name="vip")
    for contact in ContactFactory.create_batch(60, tenant=tenant):
        ContactTagFactory(contact=contact, tag=vip)
    api_client.get(URL)  # warm the key's last-used time
    with django_assert_max_num_queries(4):  # key, contacts, tags
        assert len(api_client.get(URL, {"per_page": 50}).json()["data"]) == 50


def test_filters(api_client, tenant):
    jess = ContactFactory(tenant=tenant, wa_id="16505551234", name="Jessica Smith")
    profile = ContactFactory(tenant=tenant, wa_id="447700900123", name="", profile_name="Tom (WhatsApp)")
    opted = ContactFactory(tenant=tenant, wa_id="919876543210", name="Asha", opt_in_status="opted_in")
    vip, paid = TagFactory(tenant=tenant, name="vip"), TagFactory(tenant=tenant, name="paid")
    ContactTagFactory(contact=jess, tag=vip)
    ContactTagFactory(contact=jess, tag=paid)
    ContactTagFactory(contact=opted, tag=vip)

    def ids(**params):
        response = api_client.get(URL, params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["data"]]

    assert ids(search="jessica") == [jess.pk]
    assert ids(search="whatsapp") == [profile.pk]
    assert ids(search="+44 7700") == [profile.pk]
    assert ids(search="9198") == [opted.pk]
    assert ids(tag="vip") == [opted.pk, jess.pk]
    assert ids(tag=["vip", "paid"]) == [jess.pk]
    assert ids(tag="nobody") == []
    assert ids(opt_in_status="opted_in") == [opted.pk]
    assert ids(opt_in_status="unknown") == [profile.pk, jess.pk]
    Contact.all_tenants.filter(pk=jess.pk).update(updated_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert jess.pk not in ids(updated_since=since) and profile.pk in ids(updated_since=since)
    assert_error(api_client.get(URL, {"opt_in_status": "maybe"}), 400, "invalid_request")
    assert_error(api_client.get(URL, {"updated_since": "yesterday"}), 400, "invalid_request")


# -- create ---------------------------------------------------------------------------------

def test_create(api_client, tenant):
    response = api_client.post(URL, {
        "phone": "98765 43210", "default_country": "in", "name": " Asha ", "attributes": {"plan": "gold"},
        "tags": ["vip", "import", "vip"], "opt_in_status": "opted_in", "opt_in_source": "store signup",
    }, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == OUTPUT_FIELDS
    assert body["wa_id"] == "919876543210" and body["name"] == "Asha"
    assert body["attributes"] == {"plan": "gold"} and body["tags"] == ["import", "vip"]
    assert (body["opt_in_status"], body["opt_in_source"]) == ("opted_in", "store signup")
    assert body["opted_in_at"] is not None and body["opted_out_at"] is None
    contact = contacts_of(tenant).get(pk=body["id"])
    assert tag_names(contact) == ["import", "vip"]


def test_create_minimal_with_wa_id(api_client, tenant):
    response = api_client.post(URL, {"wa_id": "+1 (650) 555-1234"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["wa_id"], body["name"], body["tags"], body["attributes"]) == ("16505551234", "", [], {})
    assert (body["opt_in_status"], body["opted_in_at"]) == ("unknown", None)


def test_default_country_applies_to_phone_not_to_wa_id(api_client, tenant):
    as_wa_id = api_client.post(URL, {"wa_id": "447700900123", "default_country": "IN"}, format="json").json()
    as_phone = api_client.post(URL, {"phone": "07700 900124", "default_country": "GB"}, format="json").json()
    assert (as_wa_id["wa_id"], as_phone["wa_id"]) == ("447700900123", "447700900124")
    body = api_client.post(BULK_URL, {"default_country": "IN", "contacts": [
        {"wa_id": "447700900125"}, {"phone": "98765 43210"}]}, format="json").json()
    assert body == {"created": 2, "updated": 0, "errors": []}
    assert set(contacts_of(tenant).values_list("wa_id", flat=True)) >= {"447700900125", "919876543210"}


def test_create_duplicate_number_is_409(api_client, tenant):
    existing = ContactFactory(tenant=tenant, wa_id="16505551234")
    error = assert_error(api_client.post(URL, {"phone": "+1 650-555-1234"}, format="json"), 409, "contact_exists")
    assert error["details"] == {"wa_id": "16505551234", "contact_id": existing.pk}
    assert contacts_of(tenant).count() == 1


@pytest.mark.parametrize(("body", "field"), [
    ({}, "wa_id"),
    ({"wa_id": "12"}, "wa_id"),
    ({"phone": "not a number"}, "phone"),
    ({"wa_id": "16505551234", "phone": "+16505551234"}, "phone"),
    ({"wa_id": "16505551234", "attributes": ["x"]}, "attributes"),
    ({"wa_id": "16505551234", "tags": "vip"}, "tags"),
    ({"wa_id": "16505551234", "tags": ["x" * 65]}, "tags"),
    ({"wa_id": "16505551234", "opt_in_status": "yes"}, "opt_in_status"),
    ({"wa_id": "16505551234", "name": "x" * 201}, "name"),
    ({"phone": "9876543210", "default_country": "IND"}, "default_country"),
])
def test_create_invalid(api_client, tenant, body, field):
    error = assert_error(api_client.post(URL, body, format="json"), 400, "invalid_request")
    assert field in error["details"]
    assert contacts_of(tenant).count() == 0


def test_create_with_too_many_attributes(api_client, tenant):
    attributes = {f"k{i}": i for i in range(101)}
    assert_error(api_client.post(URL, {"wa_id": "16505551234", "attributes": attributes}, format="json"),
                 400, "invalid_attributes")


def test_create_with_idempotency_key_replays(api_client, tenant):
    headers = {"Idempotency-Key": "create-1"}
    first = api_client.post(URL, {"wa_id": "16505551234"}, format="json", headers=headers)
    second = api_client.post(URL, {"wa_id": "16505551234"}, format="json", headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and second["Idempotent-Replayed"] == "true"
    assert contacts_of(tenant).count() == 1


def test_opting_out_emits_a_webhook_event(api_client, tenant):
    WebhookEndpointFactory(tenant=tenant, events=["contact.opted_out"])
    created = api_client.post(URL, {"wa_id": "16505551234", "opt_in_status": "opted_out"}, format="json").json()
    other = api_client.post(URL, {"wa_id": "16505551235"}, format="json").json()
    api_client.patch(f"{URL}/{other['id']}", {"opt_in_status": "opted_out", "opt_in_source": "call"}, format="json")
    events = WebhookDelivery.objects.for_tenant(tenant).order_by("id")
    assert [(d.event_type, d.payload["data"]["contact_id"], d.payload["data"]["source"]) for d in events] == [
        ("contact.opted_out", created["id"], "api"), ("contact.opted_out", other["id"], "call")]


# -- read, change, delete -------------------------------------------------------------------

def test_get_one(api_client, tenant):
    contact = ContactFactory(tenant=tenant, name="Jo", attributes={"a": 1})
    ContactTagFactory(contact=contact, tag=TagFactory(tenant=tenant, name="vip"))
    body = api_client.get(f"{URL}/{contact.pk}").json()
    assert (body["id"], body["name"], body["attributes"], body["tags"]) == (contact.pk, "Jo", {"a": 1}, ["vip"])
    assert_error(api_client.get(f"{URL}/{contact.pk + 1000}"), 404, "not_found")
    assert_error(api_client.get(f"{URL}/99999999999999999999999"), 404, "not_found")


def test_patch_merges_attributes_and_sets_tags(api_client, tenant):
    contact = ContactFactory(tenant=tenant, name="Jo", attributes={"plan": "basic", "city": "Lisbon", "n": 1})
    ContactTagFactory(contact=contact, tag=TagFactory(tenant=tenant, name="old"))
    before = contact.updated_at
    response = api_client.patch(f"{URL}/{contact.pk}", {
        "attributes": {"plan": "gold", "city": None, "new": True}, "tags": ["vip", "customer"],
    }, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "Jo"  # untouched
    assert body["attributes"] == {"plan": "gold", "n": 1, "new": True}
    assert body["tags"] == ["customer", "vip"]
    contact.refresh_from_db()
    assert contact.updated_at > before and tag_names(contact) == ["customer", "vip"]
    # The tag "old" still exists for other contacts; only the link went away.
    assert Tag.objects.for_tenant(tenant).filter(name="old").exists()


def test_patch_replace_attributes_clear_tags_and_rename(api_client, tenant):
    contact = ContactFactory(tenant=tenant, attributes={"a": 1, "b": 2})
    ContactTagFactory(contact=contact, tag=TagFactory(tenant=tenant, name="vip"))
    body = api_client.patch(f"{URL}/{contact.pk}", {
        "name": "Renamed", "attributes": {"c": 3}, "attributes_mode": "replace", "tags": [],
    }, format="json").json()
    assert (body["name"], body["attributes"], body["tags"]) == ("Renamed", {"c": 3}, [])


def test_patch_opt_in_records_source_and_time(api_client, tenant):
    contact = ContactFactory(tenant=tenant)
    at = "2025-01-02T03:04:05Z"
    body = api_client.patch(f"{URL}/{contact.pk}", {"opt_in_status": "opted_in", "opt_in_source": "paper form",
                                                    "opt_in_at": at}, format="json").json()
    assert (body["opt_in_status"], body["opt_in_source"], body["opted_in_at"]) == ("opted_in", "paper form", at)
    body = api_client.patch(f"{URL}/{contact.pk}", {"opt_in_status": "opted_out"}, format="json").json()
    assert (body["opt_in_status"], body["opt_in_source"], body["opted_in_at"]) == ("opted_out", "api", at)
    assert body["opted_out_at"] is not None


def test_patch_invalid(api_client, tenant):
    contact = ContactFactory(tenant=tenant)
    error = assert_error(api_client.patch(f"{URL}/{contact.pk}", {"opt_in_status": "x", "attributes": 3},
                                          format="json"), 400, "invalid_request")
    assert set(error["details"]) == {"opt_in_status", "attributes"}
    assert_error(api_client.patch(f"{URL}/{contact.pk}", {"attributes_mode": "append"}, format="json"),
                 400, "invalid_request")
    assert_error(api_client.patch(f"{URL}/{contact.pk + 1000}", {"name": "x"}, format="json"), 404, "not_found")


def test_delete(api_client, tenant):
    contact = ContactFactory(tenant=tenant)
    ContactTagFactory(contact=contact)
    response = api_client.delete(f"{URL}/{contact.pk}")
    assert response.status_code == 204 and response.content == b""
    assert not contacts_of(tenant).exists() and not ContactTag.objects.for_tenant(tenant).exists()
    assert_error(api_client.delete(f"{URL}/{contact.pk}"), 404, "not_found")


def test_requires_an_api_key(client):
    response = client.get(URL)
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"


# -- bulk -----------------------------------------------------------------------------------

def test_bulk_creates_updates_and_reports_rows(api_client, tenant):
    existing = ContactFactory(tenant=tenant, wa_id="16505551234", name="Keep", attributes={"a": 1, "b": 2})
    ContactTagFactory(contact=existing, tag=TagFactory(tenant=tenant, name="old"))
    untouched = ContactFactory(tenant=tenant, wa_id="16505550000", name="Untouched")
    response = api_client.post(BULK_URL, {"default_country": "IN", "contacts": [
        {"phone": "98765 43210", "name": "Asha", "tags": ["import", "vip"], "opt_in_status": "opted_in",
         "opt_in_source": "store"},                                              # 0 created
        {"wa_id": "+1 650 555 1234", "attributes": {"b": None, "c": 3}, "tags": ["vip"]},  # 1 updated
        {"phone": "12"},                                                         # 2 bad number
        {"name": "no number"},                                                   # 3 missing number
        "not an object",                                                         # 4
        {"wa_id": "447700900123", "opt_in_status": "maybe"},                     # 5 bad opt-in
        {"wa_id": "447700900124", "attributes": "x"},                            # 6 bad attributes
        {"wa_id": "447700900125", "tags": [""]},                                 # 7 bad tags
        {"wa_id": "447700900126", "phone": "447700900126"},                      # 8 both
        {"wa_id": "447700900127"},                                               # 9 created, bare
    ]}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["updated"]) == (2, 1)
    assert [(e["index"], e["code"]) for e in body["errors"]] == [
        (2, "invalid_phone_number"), (3, "missing_phone_number"), (4, "invalid_row"), (5, "invalid_opt_in_status"),
        (6, "invalid_attributes"), (7, "invalid_tags"), (8, "invalid_phone_number")]
    assert all(e["message"] for e in body["errors"])

    asha = contacts_of(tenant).get(wa_id="919876543210")
    assert (asha.name, asha.opt_in_status, asha.opt_in_source) == ("Asha", "opted_in", "store")
    assert asha.opted_in_at is not None and tag_names(asha) == ["import", "vip"]
    existing.refresh_from_db()
    assert existing.name == "Keep" and existing.attributes == {"a": 1, "c": 3} and tag_names(existing) == ["vip"]
    bare = contacts_of(tenant).get(wa_id="447700900127")
    assert (bare.name, bare.attributes, bare.opt_in_status, tag_names(bare)) == ("", {}, "unknown", [])
    untouched.refresh_from_db()
    assert untouched.name == "Untouched"
    assert contacts_of(tenant).count() == 4


def test_bulk_duplicates_in_the_batch_first_row_wins(api_client, tenant):
    body = api_client.post(BULK_URL, {"contacts": [
        {"wa_id": "16505551234", "name": "First"},
        {"wa_id": "16505551235", "name": "Other"},
        {"phone": "+1 (650) 555-1234", "name": "Second"},
    ]}, format="json").json()
    assert (body["created"], body["updated"]) == (2, 0)
    assert [(e["index"], e["code"]) for e in body["errors"]] == [(2, "duplicate_in_batch")]
    assert "index 0" in body["errors"][0]["message"]
    assert contacts_of(tenant).get(wa_id="16505551234").name == "First"


def test_bulk_replace_mode_and_unchanged_rows(api_client, tenant):
    contact = ContactFactory(tenant=tenant, wa_id="16505551234", attributes={"a": 1})
    before = contact.updated_at
    body = api_client.post(BULK_URL, {"attributes_mode": "replace", "contacts": [
        {"wa_id": "16505551234", "attributes": {"b": 2}}]}, format="json").json()
    assert (body["created"], body["updated"], body["errors"]) == (0, 1, [])
    contact.refresh_from_db()
    assert contact.attributes == {"b": 2} and contact.updated_at > before
    # The same row again changes nothing: the contact is not rewritten.
    unchanged_at = contact.updated_at
    api_client.post(BULK_URL, {"attributes_mode": "replace", "contacts": [
        {"wa_id": "16505551234", "attributes": {"b": 2}}]}, format="json")
    contact.refresh_from_db()
    assert contact.updated_at == unchanged_at


def test_bulk_tag_only_change_moves_updated_at(api_client, tenant):
    contact = ContactFactory(tenant=tenant, wa_id="16505551234")
    before = contact.updated_at
    api_client.post(BULK_URL, {"contacts": [{"wa_id": "16505551234", "tags": ["vip"]}]}, format="json")
    contact.refresh_from_db()
    assert contact.updated_at > before and tag_names(contact) == ["vip"]


def test_bulk_empty_list(api_client, tenant):
    response = api_client.post(BULK_URL, {"contacts": []}, format="json")
    assert response.status_code == 200
    assert response.json() == {"created": 0, "updated": 0, "errors": []}


@pytest.mark.parametrize(("body", "field"), [
    ({}, "contacts"),
    ({"contacts": {"wa_id": "16505551234"}}, "contacts"),
    ({"contacts": [], "default_country": "India"}, "default_country"),
    ({"contacts": [], "attributes_mode": "append"}, "attributes_mode"),
])
def test_bulk_invalid_body(api_client, body, field):
    error = assert_error(api_client.post(BULK_URL, body, format="json"), 400, "invalid_request")
    assert field in error["details"]


def test_bulk_over_1000_rows_is_400(api_client, tenant):
    rows = [{"wa_id": f"1650555{i:04d}"} for i in range(1001)]
    error = assert_error(api_client.post(BULK_URL, {"contacts": rows}, format="json"), 400, "invalid_request")
    assert "contacts" in error["details"]
    assert contacts_of(tenant).count() == 0


def test_bulk_1000_rows_take_a_bounded_number_of_queries(api_client, tenant, django_assert_max_num_queries):
    WebhookEndpointFactory(tenant=tenant, events=["contact.opted_out"])
    rows = [{"wa_id": f"1650555{i:04d}", "name": f"Contact {i}", "attributes": {"n": i},
             "tags": ["import", f"group-{i % 5}"], "opt_in_status": "opted_in" if i % 2 else "opted_out"}
            for i in range(1000)]
    # SQLite caps a statement at 999 parameters, so its INSERTs come in batches: about 45 queries.
    with django_assert_max_num_queries(60):
        response = api_client.post(BULK_URL, {"contacts": rows}, format="json")
    assert response.json() == {"created": 1000, "updated": 0, "errors": []}
    assert ContactTag.objects.for_tenant(tenant).count() == 2000
    assert WebhookDelivery.objects.for_tenant(tenant).filter(event_type="contact.opted_out").count() == 500

    # Again, as updates: half renamed, every contact retagged and opted in.
    for i, row in enumerate(rows):
        row.update(name=f"Renamed {i}" if i % 2 else row["name"], tags=["import", "customer"],
                   opt_in_status="opted_in")
    with django_assert_max_num_queries(60):
        response = api_client.post(BULK_URL, {"contacts": rows}, format="json")
    assert response.json() == {"created": 0, "updated": 1000, "errors": []}
    assert contacts_of(tenant).filter(opt_in_status="opted_in").count() == 1000
    assert contacts_of(tenant).get(wa_id="16505550001").name == "Renamed 1"
    assert ContactTag.objects.for_tenant(tenant).filter(tag__name="customer").count() == 1000
    assert not ContactTag.objects.for_tenant(tenant).filter(tag__name__startswith="group-").exists()


# -- tenant isolation -----------------------------------------------------------------------

@pytest.mark.parametrize(("method", "body"), [("get", None), ("patch", {"name": "x"}), ("delete", None)])
def test_another_tenants_key_gets_404(other_api_client, tenant, method, body):
    contact = ContactFactory(tenant=tenant, name="Acme's")
    response = getattr(other_api_client, method)(f"{URL}/{contact.pk}", body, format="json")
    assert_error(response, 404, "not_found")
    contact.refresh_from_db()
    assert contact.name == "Acme's"


def test_another_tenant_never_sees_or_touches_acmes_contacts(other_api_client, tenant, other_tenant):
    acme = ContactFactory(tenant=tenant, wa_id="16505551234", name="Acme's")
    assert other_api_client.get(URL).json()["data"] == []
    assert other_api_client.get(URL, {"search": "1650"}).json()["data"] == []
    # The same number is a different contact in each workspace.
    created = other_api_client.post(URL, {"wa_id": "16505551234"}, format="json")
    assert created.status_code == 201 and created.json()["id"] != acme.pk
    body = other_api_client.post(BULK_URL, {"contacts": [{"wa_id": "16505551234", "name": "Globex's"}]},
                                 format="json").json()
    assert (body["created"], body["updated"]) == (0, 1)
    acme.refresh_from_db()
    assert acme.name == "Acme's"
    with tenant_scope(other_tenant):
        assert Contact.objects.get(wa_id="16505551234").name == "Globex's"
