"""The template pages: list with badges and filters, the live "changed since" poll, detail with
the WhatsApp preview, the builder (live preview, submit to Meta with the number's token, Meta's
errors in words), sync, delete, and who may do what."""

from __future__ import annotations

import json

import pytest
import responses
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.message_templates.models import MessageTemplate
from apps.message_templates.selectors import templates_version
from apps.message_templates.services import template_status_apply
from apps.providers.events import TemplateStatusUpdate
from tests.factories import MembershipFactory, MessageTemplateFactory, PhoneNumberFactory, UserFactory

BASE = "/t/acme/templates/"
HX = {"HTTP_HX_REQUEST": "true"}
GRAPH = "https://graph.facebook.com/v23.0"
WABA = "102290129340398"
TOKEN = "EAAG-number-token"
CREATE_URL = f"{GRAPH}/{WABA}/message_templates"

FORM = {"name": "order_update", "category": "UTILITY", "language": "en_US", "parameter_format": "positional",
        "header_type": "text", "header_text": "Order {{1}}", "example_header_1": "#10423",
        "body": "Hi {{1}}, your order {{2}} has shipped.", "example_body_1": "Maya", "example_body_2": "#10423",
        "footer": "Acme Store", "button_kind": ["quick_reply", "url"], "button_text": ["Stop", "Track"],
        "button_value": ["", "https://acme.example/track/{{1}}"],
        "button_example": ["", "https://acme.example/track/10423"]}


@pytest.fixture
def meta_backend(settings):
    settings.WHATSAPP_BACKENDS = {**settings.WHATSAPP_BACKENDS,
                                  "meta_cloud": "apps.providers.backends.meta_cloud.MetaCloudBackend"}
    settings.META_GRAPH_API_URL = "https://graph.facebook.com"
    settings.META_GRAPH_API_VERSION = "v23.0"


@pytest.fixture
def number(tenant):
    return PhoneNumberFactory(tenant=tenant, provider="meta_cloud", waba_id=WABA, display_number="15550001111",
                              credentials={"access_token": TOKEN, "app_secret": "app-secret"})


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def client_for(tenant, role: str) -> Client:
    user = UserFactory(email=f"{role}@acme.test")
    MembershipFactory(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def templates_of(tenant):
    return MessageTemplate.objects.for_tenant(tenant)


# --- list ----------------------------------------------------------------------------------------

def test_list_badges(member_client, tenant, number):
    MessageTemplateFactory(tenant=tenant, phone_number=number, name="order_update", language="en_US",
                           category="UTILITY", status="APPROVED", quality_rating="GREEN",
                           components=[{"type": "BODY", "text": "Hi {{1}}, *thanks*"}])
    MessageTemplateFactory(tenant=tenant, phone_number=number, name="fall_sale", language="es", category="MARKETING",
                           status="REJECTED", rejected_reason="PROMOTIONAL")
    MessageTemplateFactory(tenant=tenant, phone_number=number, name="gone", status="DELETED")
    html = member_client.get(BASE).content.decode()
    assert "order_update" in html and "cat-UTILITY" in html and "en_US" in html and "q-GREEN" in html
    assert "pill-approved" in html and '<strong>thanks</strong>' in html and 'title="{{1}}"' in html
    assert "fall_sale" in html and "pill-rejected" in html and "PROMOTIONAL" in html and "cat-MARKETING" in html
    assert "gone" not in html  # deleted ones only when asked for
    assert "gone" in member_client.get(BASE, {"status": "DELETED"}).content.decode()


def test_list_filters(member_client, tenant, number):
    other = PhoneNumberFactory(tenant=tenant, waba_id="waba-other")
    MessageTemplateFactory(tenant=tenant, phone_number=number, name="order_update", status="APPROVED")
    MessageTemplateFactory(tenant=tenant, phone_number=number, name="order_cancelled", status="PENDING")
    MessageTemplateFactory(tenant=tenant, phone_number=other, name="welcome", status="APPROVED")

    def names(**params):
        html = member_client.get(BASE, params, **HX, HTTP_HX_TARGET="template-list").content.decode()
        assert "<html" not in html
        return {n for n in ("order_update", "order_cancelled", "welcome") if f">{n}<" in html}

    assert names() == {"order_update", "order_cancelled", "welcome"}
    assert names(status="APPROVED") == {"order_update", "welcome"}
    assert names(q="order") == {"order_update", "order_cancelled"}
    assert names(q="order cancel") == {"order_cancelled"}
    assert names(number=other.pk) == {"welcome"}
    assert names(number=number.pk, status="PENDING") == {"order_cancelled"}
    assert "No template matches" in member_client.get(BASE, {"q": "nothing"}).content.decode()


def test_list_empty_state(member_client):
    html = member_client.get(BASE).content.decode()
    assert "No templates yet" in html and 'id="new-template"' in html and 'id="sync-templates"' in html


# --- the live poll ----------------------------------------------------------------------------

def test_changes_answers_204_until_a_status_webhook_arrives(member_client, tenant, number):
    template = MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id=WABA, name="order_update",
                                      language="en_US", status="PENDING", provider_template_id="1689")
    html = member_client.get(BASE).content.decode()
    start = html.index(f"{BASE}changes/?v=") + len(f"{BASE}changes/?v=")
    version = html[start:html.index('"', start)].split("&")[0]
    from urllib.parse import unquote
    version = unquote(version)
    assert member_client.get(f"{BASE}changes/", {"v": version}, **HX).status_code == 204

    template_status_apply(phone_number=number, update=TemplateStatusUpdate(
        provider="meta_cloud", route_key=WABA, template_id="1689", name="order_update", language="en_US",
        status="APPROVED", reason=None, raw={}))
    response = member_client.get(f"{BASE}changes/", {"v": version, "status": ""}, **HX)
    assert response.status_code == 200
    fragment = response.content.decode()
    assert 'id="template-list"' in fragment and "<html" not in fragment and "pill-approved" in fragment
    template.refresh_from_db()
    assert template.status == "APPROVED"
    # The new list carries the new version: quiet again.
    new_start = fragment.index(f"{BASE}changes/?v=") + len(f"{BASE}changes/?v=")
    new_version = unquote(fragment[new_start:fragment.index('"', new_start)].split("&")[0])
    assert new_version != version
    assert member_client.get(f"{BASE}changes/", {"v": new_version}, **HX).status_code == 204


def test_changes_keeps_the_filters(member_client, tenant, number):
    MessageTemplateFactory(tenant=tenant, phone_number=number, name="order_update", status="APPROVED")
    MessageTemplateFactory(tenant=tenant, phone_number=number, name="welcome", status="PENDING")
    html = member_client.get(BASE, {"status": "PENDING"}).content.decode()
    assert "&amp;status=PENDING" in html
    fragment = member_client.get(f"{BASE}changes/", {"v": "0", "status": "PENDING"}, **HX).content.decode()
    assert "welcome" in fragment and "order_update" not in fragment


# --- detail ------------------------------------------------------------------------------------

def test_detail_preview(member_client, tenant, number):
    template = MessageTemplateFactory(tenant=tenant, phone_number=number, name="order_update", status="REJECTED",
                                      rejected_reason="INVALID_FORMAT", components=[
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::x"]}},
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} shipped.", "example": {"body_text": [["A", "B"]]}},
        {"type": "FOOTER", "text": "Acme <Store>"},
        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop"},
                                        {"type": "URL", "text": "Track", "url": "https://x.example/{{1}}"},
                                        {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "15550001111"}]}])
    html = member_client.get(f"{BASE}{template.pk}/").content.decode()
    assert 'class="wa-media"' in html and ">image<" in html
    assert '<span class="var" title="{{1}}">{{1}}</span>' in html and '<span class="var" title="{{2}}">{{2}}</span>' in html
    assert "Acme &lt;Store&gt;" in html
    assert ">Stop</div>" in html.replace("\n", "") or "Stop</div>" in html
    assert "Track" in html and "Call us" in html
    assert "Rejected:</strong> INVALID_FORMAT" in html
    assert 'id="delete-template"' in html


def test_detail_of_another_workspace_is_404(member_client, other_tenant):
    theirs = MessageTemplateFactory(tenant=other_tenant)
    assert member_client.get(f"{BASE}{theirs.pk}/").status_code == 404


# --- permissions ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "may_manage"), [("owner", True), ("admin", True), ("marketer", True),
                                                  ("agent", False), ("developer", False)])
def test_roles(tenant, number, role, may_manage):
    client = client_for(tenant, role)
    template = MessageTemplateFactory(tenant=tenant, phone_number=number)
    assert client.get(BASE).status_code == 200
    assert client.get(f"{BASE}{template.pk}/").status_code == 200
    assert client.get(f"{BASE}changes/", {"v": "0"}).status_code == 200
    html = client.get(BASE).content.decode()
    assert ('id="new-template"' in html) is may_manage and ('id="sync-templates"' in html) is may_manage
    assert ('id="delete-template"' in client.get(f"{BASE}{template.pk}/").content.decode()) is may_manage
    expected = 200 if may_manage else 403
    assert client.get(f"{BASE}new/").status_code == expected
    assert client.post(f"{BASE}new/preview/", {"body": "x"}).status_code == expected
    if not may_manage:
        assert client.post(f"{BASE}new/", FORM).status_code == 403
        assert client.post(f"{BASE}sync/").status_code == 403
        assert client.post(f"{BASE}{template.pk}/delete/").status_code == 403
        assert templates_of(tenant).filter(pk=template.pk).exclude(status="DELETED").exists()


# --- the builder -----------------------------------------------------------------------------------

def test_builder_page(member_client, number):
    html = member_client.get(f"{BASE}new/").content.decode()
    assert 'name="name"' in html and 'value="MARKETING"' in html and 'value="AUTHENTICATION"' in html
    assert "+15550001111" in html and 'id="preview"' in html and 'id="button-template"' in html


def test_builder_without_a_number_says_so(member_client):
    assert "Connect a number first" in member_client.get(f"{BASE}new/").content.decode()


def test_live_preview(member_client, number):
    response = member_client.post(f"{BASE}new/preview/", {**FORM, "signature": ""}, **HX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and 'id="preview"' in html
    assert '<span class="var is-filled" title="{{1}}">Maya</span>' in html
    assert "Track" in html and "Acme Store" in html
    # The variables changed (the page had none): their example fields come out of band.
    assert 'id="var-examples" hx-swap-oob="true"' in html and 'name="example_body_2"' in html
    # Valid: the exact request to Meta is shown.
    assert "POST /&lt;WABA_ID&gt;/message_templates" in html and "&quot;body_text&quot;" in html
    # Same variables as the page already has: no out-of-band swap.
    signature = "header.1,body.1,body.2"
    again = member_client.post(f"{BASE}new/preview/", {**FORM, "signature": signature}, **HX).content.decode()
    assert "hx-swap-oob" not in again


def test_live_preview_lists_what_is_missing(member_client, number):
    html = member_client.post(f"{BASE}new/preview/", {**FORM, "name": "Bad Name", "example_body_2": ""},
                              **HX).content.decode()
    assert 'id="draft-problems"' in html and "lowercase letters" in html and "Give an example for {{2}}" in html
    assert "message_templates\n" not in html  # no request shown while invalid


def test_create_submits_metas_body_with_the_numbers_token(member_client, tenant, number, meta_backend, rsps):
    rsps.post(CREATE_URL, json={"id": "1689556908129832", "status": "PENDING", "category": "UTILITY"})
    response = member_client.post(f"{BASE}new/", {**FORM, "phone_number": number.pk})
    assert response.status_code == 302 and response["Location"] == BASE
    sent = rsps.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(sent.body) == {
        "name": "order_update", "language": "en_US", "category": "UTILITY", "parameter_format": "positional",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["#10423"]}},
            {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped.",
             "example": {"body_text": [["Maya", "#10423"]]}},
            {"type": "FOOTER", "text": "Acme Store"},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop"},
                {"type": "URL", "text": "Track", "url": "https://acme.example/track/{{1}}",
                 "example": ["https://acme.example/track/10423"]}]},
        ],
    }
    template = templates_of(tenant).get()
    assert (template.name, template.language, template.status, template.category, template.waba_id) == (
        "order_update", "en_US", "PENDING", "UTILITY", WABA)
    assert template.provider_template_id == "1689556908129832" and template.phone_number_id == number.pk
    assert template.components[1]["text"] == "Hi {{1}}, your order {{2}} has shipped."
    page = member_client.get(BASE).content.decode()
    assert "submitted to Meta for review" in page and "pill-pending" in page


def test_create_named(member_client, tenant, number, meta_backend, rsps):
    rsps.post(CREATE_URL, json={"id": "77", "status": "PENDING", "category": "MARKETING"})
    member_client.post(f"{BASE}new/", {
        "phone_number": number.pk, "name": "fall_sale", "category": "MARKETING", "language": "en_US",
        "parameter_format": "named", "header_type": "none", "body": "Hi {{first_name}}, use {{code}} today.",
        "example_body_first_name": "Mark", "example_body_code": "FALL25"})
    body = json.loads(rsps.calls[0].request.body)
    assert body["parameter_format"] == "named"
    assert body["components"] == [{"type": "BODY", "text": "Hi {{first_name}}, use {{code}} today.", "example": {
        "body_text_named_params": [{"param_name": "first_name", "example": "Mark"},
                                   {"param_name": "code", "example": "FALL25"}]}}]
    assert templates_of(tenant).get().parameter_format == "named"


def test_create_shows_metas_error_in_words_and_keeps_the_form(member_client, tenant, number, meta_backend, rsps):
    rsps.post(CREATE_URL, status=400, json={"error": {
        "message": "Invalid parameter", "type": "OAuthException", "code": 100, "error_subcode": 2388024,
        "error_user_title": "Content in this language already exists",
        "error_user_msg": "Content in English (US) already exists for order_update. Try another name.",
        "fbtrace_id": "AbC"}})
    response = member_client.post(f"{BASE}new/", {**FORM, "phone_number": number.pk})
    assert response.status_code == 422
    html = response.content.decode()
    assert "The provider refused to create the template (error 100): Content in English (US) already exists " \
           "for order_update. Try another name." in html
    assert 'value="order_update"' in html and "Hi {{1}}, your order {{2}} has shipped." in html
    assert not templates_of(tenant).exists()


def test_create_refuses_an_invalid_draft_without_calling_meta(member_client, tenant, number, meta_backend, rsps):
    response = member_client.post(f"{BASE}new/", {**FORM, "phone_number": number.pk, "name": "Order Update",
                                                  "footer": "x" * 70})
    assert response.status_code == 422
    html = response.content.decode()
    assert "Fix the highlighted fields" in html and "Use only lowercase letters" in html and "at most 60" in html
    assert len(rsps.calls) == 0 and not templates_of(tenant).exists()


def test_create_refuses_an_existing_name_and_language(member_client, tenant, number, meta_backend, rsps):
    MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id=WABA, name="order_update", language="en_US")
    response = member_client.post(f"{BASE}new/", {**FORM, "phone_number": number.pk})
    assert response.status_code == 422 and "already exists in en_US" in response.content.decode()
    assert len(rsps.calls) == 0


def test_create_reuses_a_deleted_row(member_client, tenant, number, meta_backend, rsps):
    old = MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id=WABA, name="order_update",
                                 language="en_US", status="DELETED")
    rsps.post(CREATE_URL, json={"id": "99", "status": "PENDING", "category": "UTILITY"})
    member_client.post(f"{BASE}new/", {**FORM, "phone_number": number.pk})
    old.refresh_from_db()
    assert old.status == "PENDING" and old.provider_template_id == "99"


def test_create_with_a_gupshup_number_says_it_is_not_supported(member_client, tenant, settings):
    settings.WHATSAPP_BACKENDS = {**settings.WHATSAPP_BACKENDS,
                                  "gupshup": "apps.providers.backends.gupshup.GupshupBackend"}
    number = PhoneNumberFactory(tenant=tenant, provider="gupshup", phone_number_id="", waba_id="DemoApp",
                                provider_app_id="DemoApp", credentials={"api_key": "k"})
    response = member_client.post(f"{BASE}new/", {**FORM, "phone_number": number.pk})
    assert response.status_code == 422
    assert "cannot create templates through its classic API" in response.content.decode()
    assert not templates_of(tenant).exists()


def test_create_with_another_workspaces_number_is_refused(member_client, tenant, other_tenant, number):
    theirs = PhoneNumberFactory(tenant=other_tenant)
    response = member_client.post(f"{BASE}new/", {**FORM, "phone_number": theirs.pk})
    assert response.status_code == 422 and "Choose the number" in response.content.decode()


# --- sync and delete ---------------------------------------------------------------------------------

def test_sync_with_metas_paging(member_client, tenant, number, meta_backend, rsps, django_capture_on_commit_callbacks):
    first = f"{GRAPH}/{WABA}/message_templates?limit=100"
    second = f"{first}&after=MjQZD"
    rsps.get(first, json={"data": [{"name": "a_one", "language": "en", "status": "APPROVED", "category": "UTILITY",
                                    "components": [{"type": "BODY", "text": "One"}], "id": "1"}],
                          "paging": {"cursors": {"after": "MjQZD"}, "next": second}})
    rsps.get(second, json={"data": [{"name": "b_two", "language": "en", "status": "PENDING", "category": "MARKETING",
                                     "components": [{"type": "BODY", "text": "Two"}], "id": "2"}]})
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(f"{BASE}sync/")
    assert response.status_code == 302
    assert {t.name: t.status for t in templates_of(tenant)} == {"a_one": "APPROVED", "b_two": "PENDING"}
    assert "Syncing templates from +15550001111" in member_client.get(BASE).content.decode()


def test_sync_without_numbers_says_so(member_client):
    response = member_client.post(f"{BASE}sync/", follow=True)
    assert "no enabled phone number to sync templates from" in response.content.decode()


def test_delete_at_meta(member_client, tenant, number, meta_backend, rsps):
    template = MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id=WABA, name="order_update",
                                      provider_template_id="1689")
    rsps.delete(f"{GRAPH}/{WABA}/message_templates?name=order_update&hsm_id=1689", json={"success": True})
    response = member_client.post(f"{BASE}{template.pk}/delete/", **HX)
    assert response["HX-Redirect"] == BASE
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    template.refresh_from_db()
    assert template.status == "DELETED"
    assert "deleted" in member_client.get(BASE).content.decode()


def test_delete_error_from_meta(member_client, tenant, number, meta_backend, rsps):
    template = MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id=WABA, name="order_update")
    rsps.delete(f"{GRAPH}/{WABA}/message_templates?name=order_update", status=400, json={"error": {
        "message": "(#100) Message template order_update not found.", "type": "OAuthException", "code": 100}})
    html = member_client.post(f"{BASE}{template.pk}/delete/", **HX).content.decode()
    assert "The provider refused to delete the template (error 100): (#100) Message template order_update not found." in html
    template.refresh_from_db()
    assert template.status == "APPROVED"


def test_delete_with_gupshup_is_not_supported(member_client, tenant, settings):
    settings.WHATSAPP_BACKENDS = {**settings.WHATSAPP_BACKENDS,
                                  "gupshup": "apps.providers.backends.gupshup.GupshupBackend"}
    number = PhoneNumberFactory(tenant=tenant, provider="gupshup", phone_number_id="", waba_id="DemoApp",
                                provider_app_id="DemoApp", credentials={"api_key": "k"})
    template = MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id="DemoApp")
    response = member_client.post(f"{BASE}{template.pk}/delete/", follow=True)
    assert "cannot delete templates through its API" in response.content.decode()
    template.refresh_from_db()
    assert template.status == "APPROVED"


def test_the_quiet_poll_is_cheap_and_the_list_does_not_grow_with_rows(member_client, tenant, number,
                                                                      django_assert_max_num_queries):
    for i in range(60):
        MessageTemplateFactory(tenant=tenant, phone_number=number, name=f"template_{i:03d}")
    version = templates_version(tenant=tenant)
    with django_assert_max_num_queries(6):
        assert member_client.get(f"{BASE}changes/", {"v": version}, **HX).status_code == 204
    with CaptureQueriesContext(connection) as sixty:
        member_client.get(BASE)
    for i in range(60, 120):
        MessageTemplateFactory(tenant=tenant, phone_number=number, name=f"template_{i:03d}")
    with CaptureQueriesContext(connection) as hundred_twenty:
        member_client.get(BASE)
    assert len(hundred_twenty) == len(sixty)
