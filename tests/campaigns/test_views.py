"""The campaign pages: list, the create form (every step, its live preview, the test send and
errors shown next to their field), the results page and its partials, actions, export, roles."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.campaigns.models import Campaign, CampaignRecipient
from apps.campaigns.services import campaign_create, campaign_launch, campaign_pause
from apps.core.scoping import tenant_scope
from apps.providers.backends import locmem
from tests.factories import (
    AttributeDefinitionFactory,
    CampaignFactory,
    CampaignRecipientFactory,
    ContactFactory,
    MembershipFactory,
    MessageTemplateFactory,
    PhoneNumberFactory,
    SegmentFactory,
    UserFactory,
)

from .conftest import MAPPING, tagged

BASE = "/t/acme/campaigns/"


def form(number, template, **extra):
    data = {"name": "Spring", "phone_number": number.pk, "template": template.pk, "audience_kind": "contacts",
            "tag": "vip", "tag_mode": "all", "map-1-source": "name", "map-1-fallback": "there",
            "map-2-source": "literal", "map-2-value": "Everything", "schedule": "now", "action": "launch"}
    data.update(extra)
    return data


def draft(tenant, number, template, **kwargs):
    with tenant_scope(tenant):
        return campaign_create(tenant=tenant, name=kwargs.pop("name", "Spring"), phone_number=number,
                               template=template, audience={"tags": ["vip"]}, variable_mapping=MAPPING, **kwargs)


def client_for(tenant, role):
    user = UserFactory()
    MembershipFactory(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


# --- list ---------------------------------------------------------------------------------

def test_empty_list_invites_the_first_campaign(member_client, tenant):
    body = member_client.get(BASE).content.decode()
    assert "No campaigns yet" in body and f'href="{BASE}new"' in body


def test_list_shows_counts_and_filters_by_status(member_client, tenant, number, template):
    running = CampaignFactory(tenant=tenant, template=template, phone_number=number, name="Running one",
                              status=Campaign.Status.RUNNING)
    for status in ("read", "read", "delivered", "failed", "skipped", "pending"):
        CampaignRecipientFactory(campaign=running, status=status)
    CampaignFactory(tenant=tenant, template=template, phone_number=number, name="A draft")
    body = member_client.get(BASE).content.decode()
    assert "Running one" in body and "A draft" in body
    assert 'hx-trigger="every 3s"' in body  # a sending campaign keeps the list live
    card = body[body.index("Running one"):]
    assert ">6</strong><span>Recipients" in card and ">3</strong><span>Sent" in card
    assert ">2</strong><span>Read" in card and ">1</strong><span>Failed" in card
    active = member_client.get(BASE + "?status=active").content.decode()
    assert "Running one" in active and "A draft" not in active
    drafts = member_client.get(BASE + "?status=draft").content.decode()
    assert "A draft" in drafts and "Running one" not in drafts


def test_list_queries_do_not_grow_with_campaigns(member_client, tenant, number, template):
    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert member_client.get(BASE).status_code == 200
        return len(ctx)

    CampaignRecipientFactory(campaign=CampaignFactory(tenant=tenant, template=template, phone_number=number))
    count()  # the user and membership are remembered from then on
    few = count()
    for _ in range(6):
        CampaignRecipientFactory(campaign=CampaignFactory(tenant=tenant, template=template, phone_number=number))
    assert count() == few


# --- create -------------------------------------------------------------------------------

def test_form_offers_only_approved_templates_of_the_chosen_number(member_client, tenant, number, template):
    MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id="waba-1", name="not_yet", status="PENDING")
    other = PhoneNumberFactory(tenant=tenant, waba_id="waba-2")
    MessageTemplateFactory(tenant=tenant, phone_number=other, waba_id="waba-2", name="other_waba")
    body = member_client.get(BASE + "new").content.decode()
    assert "spring_sale" not in body  # two numbers: none is chosen yet, so no templates
    partial = member_client.get(BASE + "new", {"phone_number": number.pk}, HTTP_HX_REQUEST="true",
                                HTTP_HX_TARGET="template-field").content.decode()
    assert "spring_sale" in partial and "not_yet" not in partial and "other_waba" not in partial
    assert 'id="pace-hint" hx-swap-oob="true"' in partial and "1,000/s" in partial


def test_choosing_a_template_maps_its_variables_with_a_first_guess(member_client, tenant, number, template):
    body = member_client.get(BASE + "new", {"phone_number": number.pk, "template": template.pk},
                             HTTP_HX_REQUEST="true", HTTP_HX_TARGET="mapping-section")
    html = body.content.decode()
    assert body["HX-Trigger-After-Settle"] == "campaign-form-changed"
    assert 'name="map-1-source"' in html and 'name="map-2-source"' in html
    assert '<option value="name" selected>' in html  # {{1}} is the contact's name


def test_preview_counts_the_audience_and_fills_the_message_per_contact(member_client, tenant, number, template, vip):
    contacts = tagged(tenant, vip, 4)
    contacts[0].name = ""
    contacts[0].profile_name = ""
    contacts[0].save()
    response = member_client.post(BASE + "new/preview", form(number, template))
    html = response.content.decode()
    assert 'id="audience-count">4<' in html and "tagged vip" in html
    assert html.count("chat-bubble") == 3
    assert f'title="{{{{1}}}}">{contacts[3].name}</span>' in html  # newest first
    assert 'title="{{1}}">there</span>' not in html  # the nameless, oldest one is not in the sample
    assert "Everything" in html and "is-missing" not in html


def test_preview_flags_a_variable_without_value_or_fallback(member_client, tenant, number, template, vip):
    tagged(tenant, vip, 1, name="")
    data = form(number, template, **{"map-1-fallback": ""})
    html = member_client.post(BASE + "new/preview", data).content.decode()
    assert "is-missing" in html and "this contact would be skipped" in html


def test_preview_of_a_csv_counts_its_rows(member_client, tenant, number, template):
    upload = SimpleUploadedFile("list.csv", b"phone,1\n+14155550101,Ana\n+14155550102,Bo\n", content_type="text/csv")
    html = member_client.post(BASE + "new/preview", {**form(number, template, audience_kind="csv"),
                                                     "csv_file": upload}).content.decode()
    assert 'id="audience-count">2<' in html and "Ana" in html and "rows" in html


def test_preview_of_a_bad_csv_says_why(member_client, tenant, number, template):
    upload = SimpleUploadedFile("list.csv", b"name,city\nAna,Lisbon\n", content_type="text/csv")
    html = member_client.post(BASE + "new/preview", {**form(number, template, audience_kind="csv"),
                                                     "csv_file": upload}).content.decode()
    assert "No phone column" in html


def test_create_and_launch_now_sends_and_redirects_to_the_results(member_client, tenant, number, template, vip):
    tagged(tenant, vip, 3)
    response = member_client.post(BASE + "new", form(number, template, messages_per_second="50"))
    campaign = Campaign.objects.for_tenant(tenant).get()
    assert response.status_code == 302 and response["Location"] == f"{BASE}{campaign.pk}/"
    assert campaign.status in (Campaign.Status.PLANNING, Campaign.Status.RUNNING, Campaign.Status.COMPLETED)
    assert campaign.messages_per_second == 50 and campaign.audience == {"filters": {"tags": ["vip"]}}
    assert campaign.variable_mapping == {"1": {"source": "name", "fallback": "there"},
                                         "2": {"source": "literal", "value": "Everything"}}


def test_schedule_is_read_in_the_workspace_time_zone(member_client, tenant, number, template, vip):
    tenant.time_zone = "America/Sao_Paulo"
    tenant.save()
    tagged(tenant, vip, 1)
    when = (timezone.now() + timedelta(days=3)).astimezone(ZoneInfo("America/Sao_Paulo"))
    text = when.strftime("%Y-%m-%dT%H:%M")
    member_client.post(BASE + "new", form(number, template, schedule="later", scheduled_at=text))
    campaign = Campaign.objects.for_tenant(tenant).get()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.scheduled_at == when.replace(second=0, microsecond=0)
    assert locmem.outbox == []


def test_save_as_draft_then_launch_from_the_results_page(member_client, tenant, number, template, vip):
    tagged(tenant, vip, 2)
    member_client.post(BASE + "new", form(number, template, action="draft"))
    campaign = Campaign.objects.for_tenant(tenant).get()
    assert campaign.status == Campaign.Status.DRAFT
    page = member_client.get(f"{BASE}{campaign.pk}/").content.decode()
    assert "2</strong> contacts match the audience now" in page and "Launch now" in page
    response = member_client.post(f"{BASE}{campaign.pk}/launch", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Refresh"] == "true"
    campaign.refresh_from_db()
    assert campaign.status != Campaign.Status.DRAFT


@pytest.mark.parametrize(("extra", "where", "words"), [
    ({"name": ""}, "step-setup", "Give the campaign a name"),
    ({"messages_per_second": "5000"}, "step-delivery", "budget of 1000"),
    ({"schedule": "later", "scheduled_at": "2020-01-01T10:00"}, "step-delivery", "is in the past"),
    ({"schedule": "later", "scheduled_at": ""}, "step-delivery", "Pick the date and time"),
    ({"map-2-value": ""}, "step-message", "the text is empty"),
    ({"tag": ""}, "step-audience", "Choose an audience"),
    ({"quiet": "on", "quiet_start": "25:00", "quiet_end": "08:00"}, "step-delivery", "not a time of day"),
    ({"a_key": "visits", "a_op": "gt", "a_val": "many"}, "step-audience", "visits"),
])
def test_service_errors_show_next_to_their_field_and_keep_what_was_typed(member_client, tenant, number, template,
                                                                         vip, extra, where, words):
    tagged(tenant, vip, 1)
    AttributeDefinitionFactory(tenant=tenant, key="visits", label="Visits", type="number")
    response = member_client.post(BASE + "new", form(number, template, **extra))
    html = response.content.decode()
    assert response.status_code == 200 and not Campaign.objects.for_tenant(tenant).exists()
    section = html[html.index(f'id="{where}"'):]
    section = section[:section.index("</section>")]
    assert "field-error" in section and words in section, section
    assert 'value="vip" checked' in html or extra.get("tag") == ""


def test_a_csv_audience_stores_its_rows_as_recipients(member_client, tenant, number, template):
    upload = SimpleUploadedFile("list.csv", b"phone,2\n+14155550101,Shoes\n+14155550102,Bags\n")
    member_client.post(BASE + "new", {**form(number, template, audience_kind="csv", action="draft"),
                                      "csv_file": upload})
    campaign = Campaign.objects.for_tenant(tenant).get()
    rows = list(CampaignRecipient.objects.for_tenant(tenant).filter(campaign=campaign).order_by("id")
                .values_list("to", "variables"))
    assert rows == [("+14155550101", {"2": "Shoes"}), ("+14155550102", {"2": "Bags"})]


def test_a_csv_audience_needs_a_file(member_client, tenant, number, template):
    html = member_client.post(BASE + "new", form(number, template, audience_kind="csv")).content.decode()
    assert "Choose a CSV file" in html and not Campaign.objects.for_tenant(tenant).exists()


def test_send_a_test_to_one_number(member_client, tenant, number, template, django_capture_on_commit_callbacks):
    ContactFactory(tenant=tenant, wa_id="14155550100", name="Maya Patel")
    with django_capture_on_commit_callbacks(execute=True):
        html = member_client.post(BASE + "new/test", {**form(number, template),
                                                      "test_to": "+1 415 555 0100"}).content.decode()
    assert "Test queued" in html
    [(_, message)] = locmem.outbox
    assert message.to == "14155550100"
    assert [p["text"] for p in message.content["components"][0]["parameters"]] == ["Maya Patel", "Everything"]


def test_send_a_test_shows_the_services_refusal(member_client, tenant, number, template):
    html = member_client.post(BASE + "new/test", {**form(number, template), "test_to": "12"}).content.decode()
    assert "field-error" in html and locmem.outbox == []
    html = member_client.post(BASE + "new/test", {**form(number, template), "test_to": ""}).content.decode()
    assert "Type the WhatsApp number" in html


# --- results ------------------------------------------------------------------------------

@pytest.fixture
def finished(tenant, number, template):
    campaign = CampaignFactory(tenant=tenant, template=template, phone_number=number, name="Done",
                               status=Campaign.Status.COMPLETED, started_at=timezone.now() - timedelta(minutes=2),
                               completed_at=timezone.now())
    for status in ["read"] * 3 + ["delivered"] * 2 + ["sent"]:
        CampaignRecipientFactory(campaign=campaign, status=status)
    CampaignRecipientFactory(campaign=campaign, status="failed", error_code=131026)
    CampaignRecipientFactory(campaign=campaign, status="skipped", skip_reason="opted_out")
    CampaignRecipientFactory(campaign=campaign, status="read", replied_at=timezone.now())
    return campaign


def test_results_show_the_funnel_reasons_in_words_and_recipients(member_client, finished):
    html = member_client.get(f"{BASE}{finished.pk}/").content.decode()
    for key, value in {"targeted": 9, "sent": 7, "delivered": 6, "read": 4, "replied": 1, "failed": 1,
                       "skipped": 1}.items():
        assert f'data-funnel="{key}">{value}<' in html
    assert "131026" in html and "could not deliver" in html.lower()
    assert "Opted out" in html
    assert html.count("<tr>") >= 9
    assert 'hx-trigger="every 30s"' in html  # reports still arrive for a day
    assert "Export CSV" in html


def test_progress_partial_polls_while_sending_and_stops_when_final(member_client, tenant, finished):
    finished.status = Campaign.Status.RUNNING
    finished.completed_at = None
    finished.save()
    html = member_client.get(f"{BASE}{finished.pk}/progress", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in html and 'id="campaign-actions" class="camp-actions" hx-swap-oob="true"' in html
    assert "Pause" in html
    finished.status = Campaign.Status.CANCELLED
    finished.completed_at = timezone.now()
    finished.save()
    html = member_client.get(f"{BASE}{finished.pk}/progress", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in html.split(">", 1)[0] and "Pause" not in html


def test_results_page_queries_do_not_grow_with_recipients(member_client, tenant, number, template):
    campaign = CampaignFactory(tenant=tenant, template=template, phone_number=number, status=Campaign.Status.RUNNING,
                               started_at=timezone.now())

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert member_client.get(f"{BASE}{campaign.pk}/").status_code == 200
        return len(ctx)

    for code in (131026, 131049):
        CampaignRecipientFactory(campaign=campaign, status="failed", error_code=code)
    count()  # the user and membership are remembered from then on
    few = count()
    for i in range(40):
        CampaignRecipientFactory(campaign=campaign, status=["read", "failed", "skipped", "delivered"][i % 4],
                                 error_code=131026 if i % 4 == 1 else None,
                                 skip_reason="duplicate" if i % 4 == 2 else "")
    many = count()
    assert many == few and many <= 20


def test_recipients_filter_and_load_more_by_keyset(member_client, tenant, number, template):
    campaign = CampaignFactory(tenant=tenant, template=template, phone_number=number, status=Campaign.Status.RUNNING)
    ids = [CampaignRecipientFactory(campaign=campaign, status="delivered").pk for _ in range(55)]
    failed = CampaignRecipientFactory(campaign=campaign, status="failed", error_code=131026)
    CampaignRecipientFactory(campaign=campaign, status="skipped", skip_reason="invalid_number")
    first = member_client.get(f"{BASE}{campaign.pk}/recipients", HTTP_HX_REQUEST="true").content.decode()
    assert first.count("<tr>") == 50 + 1 and f"after={ids[49]}" in first  # 50 rows + the header row
    more = member_client.get(f"{BASE}{campaign.pk}/recipients?after={ids[49]}", HTTP_HX_REQUEST="true")
    assert more.content.decode().count("<tr>") == 7 and "Load more" not in more.content.decode()
    only = member_client.get(f"{BASE}{campaign.pk}/recipients?status=failed&error_code=131026").content.decode()
    assert only.count("<tr>") == 2 and "131026" in only and str(failed.contact.wa_id)[-4:] in only
    skipped = member_client.get(f"{BASE}{campaign.pk}/recipients?skip_reason=invalid_number").content.decode()
    assert skipped.count("<tr>") == 2 and "Invalid number" in skipped


def test_export_is_every_recipient_as_csv(member_client, finished):
    response = member_client.get(f"{BASE}{finished.pk}/export.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="campaign-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 9
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["error_code"] == "131026" and failed["error"]
    assert next(r for r in rows if r["status"] == "skipped")["skip_reason"] == "opted_out"
    only = member_client.get(f"{BASE}{finished.pk}/export.csv?status=failed")
    assert len(list(csv.DictReader(io.StringIO(b"".join(only.streaming_content).decode())))) == 1


def test_pause_resume_and_cancel(member_client, tenant, number, template, vip):
    tagged(tenant, vip, 2)
    campaign = draft(tenant, number, template, scheduled_at=timezone.now() + timedelta(hours=1))
    with tenant_scope(tenant):
        campaign_launch(campaign=campaign)
    # A scheduled campaign cannot be paused: the refusal is shown next to the buttons.
    refused = member_client.post(f"{BASE}{campaign.pk}/pause", HTTP_HX_REQUEST="true")
    assert refused.status_code == 409 and "cannot be paused" in refused.content.decode()
    Campaign.objects.for_tenant(tenant).filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    assert member_client.post(f"{BASE}{campaign.pk}/pause", HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED and campaign.status_reason.startswith("Paused by")
    html = member_client.get(f"{BASE}{campaign.pk}/").content.decode()
    assert "banner-warn" in html and "Resume" in html
    member_client.post(f"{BASE}{campaign.pk}/resume")
    campaign.refresh_from_db()
    assert campaign.status != Campaign.Status.PAUSED
    response = member_client.post(f"{BASE}{campaign.pk}/cancel")
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    again = member_client.post(f"{BASE}{campaign.pk}/cancel", follow=True).content.decode()
    assert "cannot be cancelled" in again


def test_the_pause_reason_from_the_engine_is_shown(member_client, tenant, number, template, vip):
    tagged(tenant, vip, 1)
    campaign = draft(tenant, number, template)
    Campaign.objects.for_tenant(tenant).filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    with tenant_scope(tenant):
        campaign_pause(campaign=campaign, reason="Spam rate limit hit (error 131048).")
    Campaign.objects.for_tenant(tenant).filter(pk=campaign.pk).update(paused_error_code=131048)
    html = member_client.get(f"{BASE}{campaign.pk}/").content.decode()
    assert "Paused automatically by WhatsApp’s error 131048" in html and "Spam rate limit hit" in html


# --- roles and tenancy --------------------------------------------------------------------

@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("admin", True), ("marketer", True),
                                                ("agent", False), ("developer", False)])
def test_roles_gate_every_campaign_page(tenant, number, template, role, allowed):
    campaign = CampaignFactory(tenant=tenant, template=template, phone_number=number)
    client = client_for(tenant, role)
    gets = ["", "new", f"{campaign.pk}/", f"{campaign.pk}/progress", f"{campaign.pk}/recipients",
            f"{campaign.pk}/export.csv"]
    posts = ["new", "new/preview", "new/test", f"{campaign.pk}/pause", f"{campaign.pk}/resume",
             f"{campaign.pk}/cancel", f"{campaign.pk}/launch"]
    for path in gets:
        assert (client.get(BASE + path).status_code == 200) is allowed, path
    for path in posts:
        status = client.post(BASE + path, {}).status_code
        assert (status == 403) is not allowed, (path, status)


def test_another_workspaces_campaign_is_a_404_even_for_its_ids(member_client, other_tenant):
    theirs = CampaignFactory(tenant=other_tenant)
    segment = SegmentFactory(tenant=other_tenant, filters={"tags": ["vip"]})
    for path in (f"{theirs.pk}/", f"{theirs.pk}/progress", f"{theirs.pk}/recipients", f"{theirs.pk}/export.csv"):
        assert member_client.get(BASE + path).status_code == 404
    for path in ("pause", "resume", "cancel", "launch"):
        assert member_client.post(f"{BASE}{theirs.pk}/{path}").status_code == 404
    # Their number, template or segment named in the form is simply not found here.
    html = member_client.post(BASE + "new/preview", {"phone_number": theirs.phone_number_id,
                                                     "template": theirs.template_id, "segment": segment.pk,
                                                     "audience_kind": "contacts"}).content.decode()
    assert theirs.template.name not in html and 'id="audience-count"' not in html
