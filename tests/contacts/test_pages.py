"""The contacts pages: list (search, filters, keyset paging, capped counts), bulk actions,
one contact (create, edit, tags, consent, delete), attributes, segments, export, imports
through the views, and what each role may do."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.contacts import selectors, views
from apps.contacts.models import AttributeDefinition, Contact, ContactImport, Segment, Tag
from apps.core.scoping import tenant_scope
from tests.factories import (
    AttributeDefinitionFactory,
    ContactFactory,
    ContactTagFactory,
    SegmentFactory,
    TagFactory,
)

from .conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(tenant):
    vip, lisbon = TagFactory(tenant=tenant, name="vip"), TagFactory(tenant=tenant, name="lisbon")
    AttributeDefinitionFactory(tenant=tenant, key="plan", label="Plan", type="text")
    AttributeDefinitionFactory(tenant=tenant, key="orders", label="Orders", type="number")
    AttributeDefinitionFactory(tenant=tenant, key="since", label="Customer since", type="date")
    ana = ContactFactory(tenant=tenant, name="Ana Lima", wa_id="351912345678", opt_in_status="opted_in",
                         attributes={"plan": "gold", "orders": 12, "since": "2023-01-05"},
                         last_inbound_at=timezone.now() - timedelta(hours=3))
    bo = ContactFactory(tenant=tenant, name="", profile_name="Bo WhatsApp", wa_id="14155550102",
                        attributes={"plan": "free", "orders": 2})
    cy = ContactFactory(tenant=tenant, name="Cy", wa_id="447700900123", opt_in_status="opted_out")
    ContactTagFactory(tenant=tenant, contact=ana, tag=vip)
    ContactTagFactory(tenant=tenant, contact=ana, tag=lisbon)
    ContactTagFactory(tenant=tenant, contact=bo, tag=lisbon)
    return {"ana": ana, "bo": bo, "cy": cy}


def listed(response) -> list[str]:
    body = response.content.decode()
    return [name for name in ("Ana Lima", "Bo WhatsApp", ">Cy<") if name in body]


# --- list -------------------------------------------------------------------------------------

def test_list_shows_the_columns(member_client, base, people):
    response = member_client.get(base)
    body = response.content.decode()
    assert response.status_code == 200
    assert "+351 912 345 678" in body  # formatted number
    assert '<span class="chip">vip</span>' in body
    assert 'pill-opted_in' in body and "Opted in" in body
    assert re.search(r"3\s+hours ago", body)  # last inbound
    assert "<th>Customer since</th>" in body and "<th>Orders</th>" in body
    assert "gold" not in body or "<th>Plan</th>" in body  # only the first two attributes are columns
    assert "Jan 5, 2023" in body and ">12<" in body
    assert "<strong>3</strong> contacts" in body


@pytest.mark.parametrize(("query", "expected"), [
    ("q=lima", ["Ana Lima"]),
    ("q=351 91", ["Ana Lima"]),
    ("q=%2B44 7700", [">Cy<"]),
    ("q=whatsapp", ["Bo WhatsApp"]),
    ("tag=lisbon", ["Ana Lima", "Bo WhatsApp"]),
    ("tag=lisbon&tag=vip", ["Ana Lima"]),
    ("tag=vip&tag=lisbon&tag_mode=any", ["Ana Lima", "Bo WhatsApp"]),
    ("opt_in=opted_out", [">Cy<"]),
    ("a_key=orders&a_op=gt&a_val=5", ["Ana Lima"]),
    ("a_key=orders&a_op=lte&a_val=2", ["Bo WhatsApp"]),
    ("a_key=plan&a_op=eq&a_val=free", ["Bo WhatsApp"]),
    ("a_key=plan&a_op=missing&a_val=", [">Cy<"]),
    ("a_key=since&a_op=lt&a_val=2024-01-01", ["Ana Lima"]),
    ("tag=lisbon&opt_in=opted_in&a_key=plan&a_op=contains&a_val=GOL", ["Ana Lima"]),
])
def test_search_and_filters_are_the_contact_filter_shape(member_client, base, people, query, expected):
    response = member_client.get(f"{base}?{query}")
    assert response.status_code == 200
    assert listed(response) == expected


def test_a_bad_filter_value_is_explained_not_applied(member_client, base, people):
    response = member_client.get(f"{base}?a_key=orders&a_op=gt&a_val=lots")
    assert response.status_code == 200
    assert "is not a number" in response.content.decode()


def test_htmx_filter_changes_swap_only_the_results(member_client, base, people):
    response = member_client.get(f"{base}?tag=vip", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results")
    body = response.content.decode()
    assert "<html" not in body and "Ana Lima" in body and "Bo WhatsApp" not in body


def test_keyset_pages_with_load_more(member_client, base, tenant):
    ContactFactory.create_batch(120, tenant=tenant)
    first = member_client.get(base)
    rows = first.context["rows"]
    assert len(rows) == 50 and first.context["next_cursor"] == rows[-1]["contact"].pk
    assert "Load more" in first.content.decode()
    seen = {row["contact"].pk for row in rows}
    cursor = first.context["next_cursor"]
    pages = 1
    while cursor:
        page = member_client.get(f"{base}?after={cursor}", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="load-more")
        body = page.content.decode()
        assert "<table" not in body  # rows only, swapped in place of the button
        ids = [int(pk) for pk in re.findall(r'name="ids" value="(\d+)"', body)]
        assert ids and not seen & set(ids) and ids == sorted(ids, reverse=True)
        seen |= set(ids)
        more = re.search(r"after=(\d+)", body)
        cursor = int(more.group(1)) if more else None
        pages += 1
    assert len(seen) == 120 and pages == 3


def test_paging_never_counts_and_the_count_is_capped(member_client, base, tenant, monkeypatch):
    ContactFactory.create_batch(12, tenant=tenant)
    monkeypatch.setattr(selectors, "COUNT_CAP", 10)
    monkeypatch.setattr(views, "PAGE_SIZE", 5)
    with CaptureQueriesContext(connection) as queries:
        response = member_client.get(base)
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1 and "LIMIT 11" in counts[0]
    assert "<strong>10+</strong>" in response.content.decode()
    cursor = response.context["next_cursor"]
    with CaptureQueriesContext(connection) as queries:
        member_client.get(f"{base}?after={cursor}", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="load-more")
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


def test_count_stays_fast_on_a_large_table(tenant):
    """100,000 contacts: the capped count reads at most COUNT_CAP + 1 rows."""
    now = timezone.now()
    Contact.objects.for_tenant(tenant).bulk_create(
        [Contact(tenant=tenant, wa_id=f"1555{i:07d}", created_at=now, updated_at=now) for i in range(100_000)],
        batch_size=5000)
    import time

    started = time.perf_counter()
    count, capped = selectors.contact_count(tenant=tenant, filters={})
    page, cursor = selectors.contact_page(tenant=tenant, filters={}, size=50)
    elapsed = time.perf_counter() - started
    assert (count, capped) == (selectors.COUNT_CAP, True) and len(page) == 50 and cursor
    assert elapsed < 2.0, f"count + first page took {elapsed:.2f} s"


# --- bulk -----------------------------------------------------------------------------------

def test_bulk_tag_untag_and_delete(member_client, base, tenant, other_tenant, people):
    theirs = ContactFactory(tenant=other_tenant)
    ids = [people["bo"].pk, people["cy"].pk, theirs.pk]
    response = member_client.post(f"{base}bulk/", {"ids": ids, "action": "tag_add", "tag": "newsletter",
                                                   "filter_query": "q=x"})
    assert response.status_code == 302 and response["Location"].endswith("/contacts/?q=x")
    tagged = set(Contact.objects.for_tenant(tenant).filter(tags__name="newsletter").values_list("pk", flat=True))
    assert tagged == {people["bo"].pk, people["cy"].pk}
    assert not Tag.objects.for_tenant(other_tenant).filter(name="newsletter").exists()
    member_client.post(f"{base}bulk/", {"ids": [people["bo"].pk], "action": "tag_remove", "tag": "newsletter"})
    assert set(Contact.objects.for_tenant(tenant).filter(tags__name="newsletter").values_list("pk", flat=True)) == {
        people["cy"].pk}
    member_client.post(f"{base}bulk/", {"ids": ids, "action": "delete"})
    assert set(Contact.objects.for_tenant(tenant).values_list("pk", flat=True)) == {people["ana"].pk}
    assert Contact.objects.for_tenant(other_tenant).filter(pk=theirs.pk).exists()


def test_bulk_on_everything_the_filter_matches(member_client, base, tenant, people):
    member_client.post(f"{base}bulk/", {"scope": "matching", "filter_query": "tag=lisbon", "action": "tag_add",
                                        "tag": "europe"})
    assert set(Contact.objects.for_tenant(tenant).filter(tags__name="europe").values_list("name", flat=True)) == {
        "Ana Lima", ""}


def test_bulk_without_a_selection_says_so(member_client, base, people):
    response = member_client.post(f"{base}bulk/", {"action": "delete"}, follow=True)
    assert "Select at least one contact." in response.content.decode()
    assert Contact.objects.unscoped().count() == 3


# --- one contact ------------------------------------------------------------------------------

def test_create_normalizes_the_number_and_types_the_attributes(member_client, base, tenant, people):
    AttributeDefinitionFactory(tenant=tenant, key="vip", label="VIP", type="boolean")
    response = member_client.post(f"{base}new/", {
        "phone": "07700 900456", "country": "GB", "name": "Jane", "tags": "vip, brand-new",
        "opt_in": "opted_in", "opt_in_source": "shop counter",
        "attr_plan": "pro", "attr_orders": "1,250.5", "attr_since": "2024-02-29", "attr_vip": "yes"})
    contact = Contact.objects.for_tenant(tenant).get(wa_id="447700900456")
    assert response.status_code == 302 and response["Location"].endswith(f"/contacts/{contact.pk}/")
    assert contact.attributes == {"plan": "pro", "orders": 1250.5, "since": "2024-02-29", "vip": True}
    assert sorted(t.name for t in contact.tags.all()) == ["brand-new", "vip"]
    assert contact.opt_in_status == "opted_in" and contact.opt_in_source == "shop counter" and contact.opted_in_at


def test_create_explains_bad_input_and_keeps_it(member_client, base, people):
    response = member_client.post(f"{base}new/", {"phone": "07700 900456", "name": "Jane", "attr_since": "soon"})
    body = response.content.decode()
    assert response.status_code == 422
    assert "choose the country" in body and "is not a date" in body and 'value="Jane"' in body
    response = member_client.post(f"{base}new/", {"phone": "+351 912 345 678"})
    assert "already exists" in response.content.decode() and f"/contacts/{people['ana'].pk}/" in response.content.decode()


def test_edit_changes_name_and_attributes_and_keeps_undefined_ones(member_client, base, tenant, people):
    ana = people["ana"]
    ana.attributes["crm_id"] = "X-1"
    ana.save()
    page = member_client.get(f"{base}{ana.pk}/").content.decode()
    assert "crm_id" in page and 'value="2023-01-05"' in page
    response = member_client.post(f"{base}{ana.pk}/", {"name": "Ana M. Lima", "attr_plan": "", "attr_orders": "13",
                                                        "attr_since": "2023-01-05"})
    assert response.status_code == 302
    ana.refresh_from_db()
    assert ana.name == "Ana M. Lima"
    assert ana.attributes == {"orders": 13, "since": "2023-01-05", "crm_id": "X-1"}


def test_tags_are_added_created_and_removed_in_place(member_client, base, tenant, people):
    ana = people["ana"]
    response = member_client.post(f"{base}{ana.pk}/tags/", {"add": "spring-sale, vip"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'id="contact-tags"' in response.content.decode()
    assert sorted(t.name for t in ana.tags.all()) == ["lisbon", "spring-sale", "vip"]
    member_client.post(f"{base}{ana.pk}/tags/", {"remove": "lisbon"}, HTTP_HX_REQUEST="true")
    assert sorted(t.name for t in ana.tags.all()) == ["spring-sale", "vip"]
    response = member_client.post(f"{base}{ana.pk}/tags/", {"add": "x" * 80}, HTTP_HX_REQUEST="true")
    assert "longer than 64" in response.content.decode()


def test_opt_out_and_back_in_records_source_and_time(member_client, base, people):
    ana = people["ana"]
    response = member_client.post(f"{base}{ana.pk}/opt/", {"state": "out", "source": "phone call"},
                                  HTTP_HX_REQUEST="true")
    ana.refresh_from_db()
    assert response.status_code == 200 and "Opted out" in response.content.decode()
    assert ana.opt_in_status == "opted_out" and ana.opt_in_source == "phone call" and ana.opted_out_at
    member_client.post(f"{base}{ana.pk}/opt/", {"state": "in"}, HTTP_HX_REQUEST="true")
    ana.refresh_from_db()
    assert ana.opt_in_status == "opted_in" and ana.opt_in_source == "contacts page (owner@acme.test)"
    response = member_client.post(f"{base}{ana.pk}/opt/", {"state": "maybe"}, HTTP_HX_REQUEST="true")
    assert "Choose opt in or opt out." in response.content.decode()


def test_delete_needs_the_confirmation(member_client, base, tenant, people):
    ana = people["ana"]
    assert member_client.post(f"{base}{ana.pk}/delete/").status_code == 302
    assert Contact.objects.for_tenant(tenant).filter(pk=ana.pk).exists()
    response = member_client.post(f"{base}{ana.pk}/delete/", {"confirm": "delete"})
    assert response.status_code == 302 and response["Location"].endswith("/contacts/")
    assert not Contact.objects.for_tenant(tenant).filter(pk=ana.pk).exists()


# --- attributes and segments ----------------------------------------------------------------

def test_attribute_definitions_are_managed(member_client, base, tenant):
    response = member_client.post(f"{base}attributes/", {"label": "Signup date", "type": "date"})
    assert response.status_code == 302
    definition = AttributeDefinition.objects.for_tenant(tenant).get()
    assert (definition.key, definition.label, definition.type) == ("signup_date", "Signup date", "date")
    response = member_client.post(f"{base}attributes/", {"label": "Signup Date!", "type": "date"})
    assert response.status_code == 422 and "already exists" in response.content.decode()
    response = member_client.post(f"{base}attributes/", {"label": "Bad", "key": "9lives", "type": "text"})
    assert "must start with a letter" in response.content.decode()
    assert "Signup date" in member_client.get(f"{base}attributes/").content.decode()
    member_client.post(f"{base}attributes/{definition.pk}/delete/")
    assert not AttributeDefinition.objects.for_tenant(tenant).exists()


def test_segments_save_list_apply_and_delete(member_client, base, tenant, people):
    query = "tag=lisbon&a_key=orders&a_op=gte&a_val=10"
    response = member_client.post(f"{base}segments/", {"name": "Big Lisbon buyers", "filter_query": query})
    assert response.status_code == 302
    segment = Segment.objects.for_tenant(tenant).get()
    assert segment.filters == {"tags": ["lisbon"], "attributes": [{"key": "orders", "op": "gte", "value": 10}]}
    with tenant_scope(tenant):
        assert [c.name for c in selectors.contact_filter(tenant=tenant, filters=segment.filters)] == ["Ana Lima"]
    page = member_client.get(base).content.decode()
    assert "Big Lisbon buyers" in page and "tagged lisbon, orders is at least 10" in page
    assert "?tag=lisbon&amp;a_key=orders&amp;a_op=gte&amp;a_val=10" in page  # applying it is a link
    response = member_client.post(f"{base}segments/", {"name": "", "filter_query": query}, follow=True)
    assert "Give the segment a name." in response.content.decode()
    member_client.post(f"{base}segments/{segment.pk}/delete/")
    assert not Segment.objects.for_tenant(tenant).exists()


# --- export ---------------------------------------------------------------------------------

def read_export(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body[1:])))


def test_export_streams_every_contact_with_tags_and_attributes(member_client, base, tenant, people):
    people["cy"].name = "=HYPERLINK(\"http://evil\")"
    people["cy"].attributes = {"legacy": 1}
    people["cy"].save()
    response = member_client.get(f"{base}export.csv")
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = {row["phone"]: row for row in read_export(response)}
    assert set(rows) == {"+351912345678", "+14155550102", "+447700900123"}
    ana = rows["+351912345678"]
    assert ana["tags"] in ("lisbon, vip", "vip, lisbon") and ana["opt_in_status"] == "opted_in"
    assert (ana["plan"], ana["orders"], ana["since"]) == ("gold", "12", "2023-01-05")
    assert rows["+447700900123"]["name"].startswith("'=")  # never a live formula in a spreadsheet
    assert rows["+447700900123"]["other_attributes"] == '{"legacy": 1}'


def test_export_follows_the_filter(member_client, base, people):
    rows = read_export(member_client.get(f"{base}export.csv?tag=vip"))
    assert [row["name"] for row in rows] == ["Ana Lima"]


# --- import through the pages -------------------------------------------------------------------

def test_import_upload_map_run_and_error_report(member_client, base, tenant, django_capture_on_commit_callbacks):
    data = "Telefone;Nome;Etiquetas\n+351 912 000 001;Rui;lisboa\nabc;Mau;\n;;\n+351 912 000 001;Rui 2;\n"
    response = member_client.post(f"{base}import/", {"file": SimpleUploadedFile("clientes.csv", data.encode())})
    contact_import = ContactImport.objects.for_tenant(tenant).get()
    assert response.status_code == 302 and response["Location"].endswith(f"/import/{contact_import.pk}/")
    page = member_client.get(response["Location"]).content.decode()
    assert "Match the columns" in page and "semicolon-separated" in page and "+351 912 000 001" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(response["Location"], {"col_0": "phone", "col_1": "name", "col_2": "tags",
                                                              "default_country": "PT", "on_existing": "update"})
    assert response.status_code == 302
    contact_import.refresh_from_db()
    assert contact_import.status == "completed" and contact_import.created_count == 1
    page = member_client.get(f"{base}import/{contact_import.pk}/").content.decode()
    assert "Import finished" in page and "Download the error report (2 rows)" in page
    progress = member_client.get(f"{base}import/{contact_import.pk}/progress/")
    assert 'data-status="completed"' in progress.content.decode() and "hx-trigger" not in progress.content.decode()
    report = member_client.get(f"{base}import/{contact_import.pk}/errors.csv")
    assert report["Content-Disposition"] == f'attachment; filename="import-{contact_import.pk}-errors.csv"'
    rows = list(csv.reader(io.StringIO(report.content.decode()[1:])))
    assert rows[0] == ["row", "column", "value", "reason"]
    assert rows[1][:3] == ["3", "Telefone", "abc"] and "not a valid phone number" in rows[1][3]
    # A value a spreadsheet would read as a formula keeps an apostrophe in front.
    assert rows[2][:3] == ["5", "Telefone", "'+351 912 000 001"] and "already appears on row 2" in rows[2][3]


def test_import_mapping_errors_keep_the_choices(member_client, base, tenant):
    member_client.post(f"{base}import/", {"file": SimpleUploadedFile("a.csv", b"name,city\nAna,Lisbon\n")})
    contact_import = ContactImport.objects.for_tenant(tenant).get()
    response = member_client.post(f"{base}import/{contact_import.pk}/", {"col_0": "name", "col_1": ""})
    assert response.status_code == 422
    assert "Choose the column that holds the phone numbers." in response.content.decode()
    contact_import.refresh_from_db()
    assert contact_import.status == "draft"


def test_an_active_import_polls_its_progress(member_client, base, tenant):
    contact_import = ContactImport.objects.create(
        tenant=tenant, file=SimpleUploadedFile("a.csv", b"phone\n1\n"), headers=["phone"], mapping=["phone"],
        status="running", total_rows=200, processed_rows=50)
    body = member_client.get(f"{base}import/{contact_import.pk}/progress/").content.decode()
    assert 'hx-trigger="every 1s"' in body and "50 of 200 rows" in body and 'aria-valuenow="25"' in body


def test_import_without_a_file_says_what_to_do(member_client, base):
    response = member_client.post(f"{base}import/", {})
    assert response.status_code == 422 and "Choose a CSV file or paste a Google Sheet link." in response.content.decode()


# --- roles ----------------------------------------------------------------------------------

def test_marketers_manage_contacts(tenant, base, people):
    client = client_for(tenant, "marketer")
    assert client.get(f"{base}import/").status_code == 200
    assert client.get(f"{base}export.csv").status_code == 200
    assert client.post(f"{base}segments/", {"name": "All", "filter_query": ""}).status_code == 302


def test_agents_see_and_edit_contacts_but_do_not_manage_them(tenant, base, people):
    agent = client_for(tenant, "agent")
    ana = people["ana"]
    assert agent.get(base).status_code == 200
    assert "Import" not in agent.get(base).content.decode().split("</header>")[0]
    assert agent.get(f"{base}{ana.pk}/").status_code == 200
    assert agent.post(f"{base}{ana.pk}/", {"name": "Ana L."}).status_code == 302
    assert agent.post(f"{base}{ana.pk}/opt/", {"state": "out"}).status_code == 200
    assert agent.get(f"{base}attributes/").status_code == 200  # read-only list
    refused = [
        ("get", f"{base}import/", {}), ("get", f"{base}export.csv", {}),
        ("post", f"{base}bulk/", {"ids": [ana.pk], "action": "delete"}),
        ("post", f"{base}{ana.pk}/delete/", {"confirm": "delete"}),
        ("post", f"{base}attributes/", {"label": "X", "type": "text"}),
        ("post", f"{base}segments/", {"name": "S"}),
        ("post", f"{base}segments/{SegmentFactory(tenant=tenant).pk}/delete/", {}),
    ]
    for method, url, data in refused:
        assert getattr(agent, method)(url, data).status_code == 403, url
    assert Contact.objects.for_tenant(tenant).filter(pk=ana.pk).exists()


@pytest.mark.parametrize("role", ["developer"])
def test_roles_without_the_contacts_section_are_refused(tenant, base, people, role):
    client = client_for(tenant, role)
    for url in (base, f"{base}new/", f"{base}{people['ana'].pk}/", f"{base}import/", f"{base}attributes/"):
        assert client.get(url).status_code == 403, url


def test_starting_an_import_twice_says_so(member_client, base, tenant, django_capture_on_commit_callbacks):
    member_client.post(f"{base}import/", {"file": SimpleUploadedFile("a.csv", b"phone\n+14155550001\n")})
    contact_import = ContactImport.objects.for_tenant(tenant).get()
    with django_capture_on_commit_callbacks(execute=True):
        member_client.post(f"{base}import/{contact_import.pk}/", {"col_0": "phone", "on_existing": "update"})
    response = member_client.post(f"{base}import/{contact_import.pk}/", {"col_0": "phone"}, follow=True)
    assert "This import has already been started." in response.content.decode()
    assert Contact.objects.for_tenant(tenant).count() == 1
