"""The contacts pages in a real browser: import a messy CSV through the UI, watch the progress
bar finish, download the error report; filter the list, save a segment, bulk-tag, edit one
contact."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.contacts import tasks
from apps.contacts.models import Contact, ContactImport, Segment
from tests.factories import (
    AttributeDefinitionFactory,
    ContactFactory,
    ContactTagFactory,
    MembershipFactory,
    TagFactory,
    TenantFactory,
    UserFactory,
)

from .conftest import login, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

MESSY_CSV = (
    "\ufeffWhatsApp number;Full name;Tags;Plan;Signup date;Orders\r\n"
    "+351 912 345 001;Rita Sousa;vip, lisbon;gold;2024-03-02;14\r\n"
    "912 345 002;João Pires;lisbon;free;2024-05-19;2\r\n"
    "call me;Nobody;;;;\r\n"
    ";;;;;\r\n"
    "+351 912 345 001;Rita again;;;;\r\n"
    '"+44 7700 900123";"Smith; Jane";"uk";gold;31/02/2024;\r\n'
    "+1 415 555 0199;Sam Lee;;silver;2023-11-30;7\r\n"
).encode("utf-8")


@pytest.fixture
def workspace(db):
    tenant = TenantFactory(slug="acme", name="Acme Store")
    owner = UserFactory(email="olivia@acme.test", first_name="Olivia", last_name="Owner")
    MembershipFactory(tenant=tenant, user=owner, role="owner")
    AttributeDefinitionFactory(tenant=tenant, key="plan", label="Plan", type="text")
    AttributeDefinitionFactory(tenant=tenant, key="signup_date", label="Signup date", type="date")
    AttributeDefinitionFactory(tenant=tenant, key="orders", label="Orders", type="number")
    return tenant


def test_import_a_messy_csv_watch_progress_and_download_the_errors(page, live_server, workspace, monkeypatch, tmp_path):
    queued: list[dict] = []
    # No worker runs beside the live server: record the bell, then run the task as a worker would,
    # while the page polls.
    monkeypatch.setattr(tasks.contact_import_run_task, "delay", lambda **kwargs: queued.append(kwargs))

    login(page, live_server, "olivia@acme.test", "password")
    page.goto(f"{live_server.url}/t/acme/contacts/")
    page.get_by_role("link", name="Import", exact=True).click()
    page.wait_for_url("**/contacts/import/")
    screenshot(page, "contacts-import-start")
    page.set_input_files("input[name=file]", files=[{"name": "messy.csv", "mimeType": "text/csv",
                                                     "buffer": MESSY_CSV}])
    page.get_by_role("button", name="Continue to column mapping").click()
    page.wait_for_url("**/contacts/import/*/")
    page.locator("h2", has_text="Match the columns").wait_for()
    # The mapping was guessed from the headers; the person checks it and picks the country.
    assert page.locator("select[name=col_0]").input_value() == "phone"
    assert page.locator("select[name=col_1]").input_value() == "name"
    assert page.locator("select[name=col_2]").input_value() == "tags"
    assert page.locator("select[name=col_3]").input_value() == "attr:plan"
    assert page.locator("select[name=col_4]").input_value() == "attr:signup_date"
    assert page.locator("select[name=col_5]").input_value() == "attr:orders"
    page.select_option("select[name=default_country]", "PT")
    screenshot(page, "contacts-import-mapping")
    page.get_by_role("button", name="Import 7 rows").click()

    progress = page.locator("#import-progress")
    progress.wait_for()
    assert progress.get_attribute("data-status") == "queued"
    assert page.locator("#import-progress", has_text="Waiting for a worker").is_visible()
    screenshot(page, "contacts-import-queued")
    assert len(queued) == 1
    tasks.contact_import_run_task(**queued[0])  # what the worker does

    page.locator("#import-progress[data-status=completed]").wait_for(timeout=6_000)  # picked up by the poll
    page.locator("[data-stat=created]", has_text="3").wait_for()
    assert page.locator("[data-stat=errors]").inner_text() == "2"
    assert page.locator("[data-stat=duplicates]").inner_text() == "1"
    assert page.locator("[data-stat=empty]").inner_text() == "1"
    screenshot(page, "contacts-import-done")

    with page.expect_download() as info:
        page.locator("#download-errors").click()
    path = tmp_path / "errors.csv"
    info.value.save_as(path)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["row", "column", "value", "reason"]
    by_row = {row[0]: row for row in rows[1:]}
    assert set(by_row) == {"4", "6", "7"}
    assert by_row["4"][2] == "call me" and "not a valid phone number" in by_row["4"][3]
    assert "already appears on row 2" in by_row["6"][3]
    assert by_row["7"][1:3] == ["Signup date", "31/02/2024"] and "YYYY-MM-DD" in by_row["7"][3]

    imported = {c.wa_id: c for c in Contact.objects.for_tenant(workspace)}
    assert set(imported) == {"351912345001", "351912345002", "14155550199"}
    assert imported["351912345002"].name == "João Pires"  # national number read with the default country
    assert imported["351912345001"].attributes == {"plan": "gold", "signup_date": "2024-03-02", "orders": 14}
    assert ContactImport.objects.for_tenant(workspace).get().status == "completed"

    page.get_by_role("link", name="See the contacts").click()
    page.wait_for_url("**/t/acme/contacts/")
    page.locator("td", has_text="+351 912 345 002").wait_for()


def test_filter_save_segment_bulk_tag_and_edit(page, live_server, workspace):
    vip = TagFactory(tenant=workspace, name="vip")
    names = ["Maya Patel", "Jonas Weber", "Aiko Tanaka", "Fatima Zahra", "Lucas Silva", "Chloé Martin"]
    for i, name in enumerate(names):
        contact = ContactFactory(tenant=workspace, name=name, wa_id=f"1415555{i:04d}",
                                 opt_in_status="opted_in" if i % 3 else "unknown",
                                 attributes={"plan": "gold" if i % 2 else "free", "orders": i * 3,
                                             "signup_date": f"2024-0{i + 1}-15"},
                                 last_inbound_at=timezone.now() - timedelta(hours=i * 7) if i % 2 else None)
        if i < 2:
            ContactTagFactory(tenant=workspace, contact=contact, tag=vip)
    login(page, live_server, "olivia@acme.test", "password")
    page.goto(f"{live_server.url}/t/acme/contacts/")
    page.locator(".results-count", has_text="6").wait_for()
    screenshot(page, "contacts-list")

    # Search as you type: the results swap in place and the URL follows.
    page.fill(".search input[name=q]", "tanaka")
    page.locator(".results-count", has_text="“tanaka”").wait_for()
    assert page.locator("#contact-rows tr:not(.load-more-row)").count() == 1
    assert "q=tanaka" in page.url
    page.fill(".search input[name=q]", "")
    page.locator(".results-count", has_text="6").wait_for()

    # An attribute filter: plan is gold.
    page.get_by_role("button", name="Attribute filter").click()
    page.fill("input[name=a_key]", "plan")
    page.fill("input[name=a_val]", "gold")
    page.get_by_role("button", name="Apply").click()
    page.locator(".results-count", has_text="plan is gold").wait_for()
    assert page.locator("#contact-rows tr:not(.load-more-row)").count() == 3
    assert "a_key=plan" in page.url  # the filter lives in the query string

    page.locator("summary", has_text="Segments").click()
    page.fill("input[name=name]", "Gold plan")
    page.get_by_role("button", name="Save segment").click()
    page.locator(".flash", has_text="Saved the segment “Gold plan”").wait_for()
    assert Segment.objects.for_tenant(workspace).get().filters == {
        "attributes": [{"key": "plan", "op": "eq", "value": "gold"}]}

    # Bulk: select two rows and tag them.
    boxes = page.locator("#contact-rows input[name=ids]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.locator("#bulk-form [data-selected-count]", has_text="2").wait_for()
    page.fill("#bulk-form input[name=tag]", "spring-sale")
    screenshot(page, "contacts-bulk")
    page.get_by_role("button", name="Add tag").click()
    page.locator(".flash", has_text="Tagged 2 contacts “spring-sale”").wait_for()
    assert Contact.objects.for_tenant(workspace).filter(tags__name="spring-sale").count() == 2

    # One contact: edit a typed attribute, opt out with a source.
    page.goto(f"{live_server.url}/t/acme/contacts/")
    page.get_by_role("link", name="Maya Patel").click()
    page.locator("h1", has_text="Maya Patel").wait_for()
    page.fill("input[name=attr_orders]", "42")
    page.get_by_role("button", name="Save changes").click()
    page.locator(".flash", has_text="Saved.").wait_for()
    page.fill("#contact-consent input[name=source]", "asked by phone")
    page.get_by_role("button", name="Opt out").click()
    page.locator("#contact-consent .pill-opted_out").wait_for()
    page.fill("#contact-tags input[name=add]", "callback")
    page.locator("#contact-tags button", has_text="Add").click()
    page.locator("#contact-tags .chip", has_text="callback").wait_for()
    screenshot(page, "contacts-detail")
    maya = Contact.objects.for_tenant(workspace).get(name="Maya Patel")
    assert maya.attributes["orders"] == 42 and maya.opt_in_status == "opted_out"
    assert maya.opt_in_source == "asked by phone"

    page.goto(f"{live_server.url}/t/acme/contacts/attributes/")
    page.locator(".manage-row", has_text="Signup date").wait_for()
    screenshot(page, "contacts-attributes")
    page.goto(f"{live_server.url}/t/acme/contacts/new/")
    page.fill("input[name=phone]", "0412 345 678")
    page.get_by_role("button", name="Add contact").click()
    page.locator(".field-error", has_text="choose the country").wait_for()
    page.select_option("select[name=country]", "AU")
    page.fill("input[name=name]", "Noah Brown")
    page.fill("input[name=attr_signup_date]", "2025-01-31")
    screenshot(page, "contacts-new")
    page.get_by_role("button", name="Add contact").click()
    page.locator("h1", has_text="Noah Brown").wait_for()
    noah = Contact.objects.for_tenant(workspace).get(name="Noah Brown")
    assert noah.wa_id == "61412345678" and noah.attributes == {"signup_date": "2025-01-31"}
