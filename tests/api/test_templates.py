"""/api/v1/templates: list with filters, read, and sync from the provider. The sync runs the
real MetaCloudBackend (and GupshupBackend) against Meta's / Gupshup's HTTP API mocked with
``responses``, two pages of Meta's paging."""

from __future__ import annotations

import pytest
import responses
from celery import current_app

from apps.message_templates.models import MessageTemplate
from apps.message_templates.services import template_sync
from apps.message_templates.tasks import template_sync_task
from apps.phone_numbers.models import PhoneNumber
from apps.providers.exceptions import ProviderConfigurationError
from apps.webhooks.models import WebhookDelivery
from tests.factories import MessageTemplateFactory, PhoneNumberFactory, WebhookEndpointFactory

URL = "/api/v1/templates"
SYNC_URL = "/api/v1/templates/sync"
GRAPH = "https://graph.facebook.com/v23.0"
WABA = "102290129340398"
TOKEN = "EAAG-secret-token-never-shown"
FIRST_PAGE = f"{GRAPH}/{WABA}/message_templates?limit=100"
SECOND_PAGE = f"{GRAPH}/{WABA}/message_templates?limit=100&after=MjQZD"
OUTPUT_FIELDS = {"id", "name", "language", "category", "status", "parameter_format", "components", "variables",
                 "quality_rating", "rejected_reason", "provider_template_id", "phone_number_id", "waba_id",
                 "last_synced_at", "created_at", "updated_at"}


def templates_of(tenant):
    return MessageTemplate.objects.for_tenant(tenant)


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code, response.json()
    return response.json()["error"]


@pytest.fixture
def meta_backend(settings):
    settings.WHATSAPP_BACKENDS = {**settings.WHATSAPP_BACKENDS,
                                  "meta_cloud": "apps.providers.backends.meta_cloud.MetaCloudBackend"}
    settings.META_GRAPH_API_URL = "https://graph.facebook.com"
    settings.META_GRAPH_API_VERSION = "v23.0"


@pytest.fixture
def number(tenant):
    return PhoneNumberFactory(tenant=tenant, provider="meta_cloud", waba_id=WABA,
                              credentials={"access_token": TOKEN, "app_secret": "app-secret"})


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def meta_pages(rsps):
    """Meta's GET /<WABA>/message_templates in two pages, following ``paging.next``."""
    rsps.get(FIRST_PAGE, json={"data": [
        {"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
         "parameter_format": "POSITIONAL", "id": "1689556908129832",
         "quality_score": {"score": "GREEN", "date": 1740000000},
         "components": [{"type": "HEADER", "format": "IMAGE"},
                        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."},
                        {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track",
                                                         "url": "https://shop.example/t/{{1}}"}]}]},
        {"name": "reminder", "language": "en", "status": "PENDING", "category": "MARKETING",
         "parameter_format": "NAMED", "id": "2001",
         "components": [{"type": "BODY", "text": "Hi {{first_name}}, see you at {{time}}."}]},
    ], "paging": {"cursors": {"before": "MAZDZD", "after": "MjQZD"}, "next": SECOND_PAGE}})
    rsps.get(SECOND_PAGE, json={"data": [
        {"name": "promo", "language": "en_US", "status": "REJECTED", "category": "MARKETING", "id": "2002",
         "rejected_reason": "PROMOTIONAL", "components": [{"type": "BODY", "text": "Sale!"}]},
        {"language": "en"},  # no name: skipped
    ], "paging": {"cursors": {"before": "MjQZD", "after": "MzZD"}}})


# -- list and read --------------------------------------------------------------------------

def test_list_shape_with_variables(api_client, tenant, number):
    template = MessageTemplateFactory(
        tenant=tenant, phone_number=number, name="order_update", language="en_US",
        components=[{"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
                    {"type": "BODY", "text": "Hi {{1}}, order {{2}} shipped."},
                    {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Thanks"},
                                                    {"type": "URL", "url": "https://x.test/{{1}}"}]}])
    body = api_client.get(URL).json()
    assert (body["page"], body["per_page"], body["has_more"]) == (1, 20, False)
    [row] = body["data"]
    assert set(row) == OUTPUT_FIELDS
    assert (row["id"], row["name"], row["language"], row["status"]) == (template.pk, "order_update", "en_US", "APPROVED")
    assert row["parameter_format"] == "positional" and row["components"] == template.components
    assert row["variables"] == {"header": {"type": "text", "variables": ["1"]}, "body": ["1", "2"],
                                "buttons": [{"index": 1, "type": "url", "count": 1}]}
    assert (row["phone_number_id"], row["waba_id"]) == (number.pk, number.waba_id)


def test_variables_for_named_media_and_plain_templates(api_client, tenant, number):
    named = MessageTemplateFactory(tenant=tenant, phone_number=number, name="a", parameter_format="named",
                                   components=[{"type": "HEADER", "format": "IMAGE"},
                                               {"type": "BODY", "text": "Hi {{first_name}}, {{first_name}}!"}])
    plain = MessageTemplateFactory(tenant=tenant, phone_number=number, name="b",
                                   components=[{"type": "BODY", "text": "Hello"}])
    assert api_client.get(f"{URL}/{named.pk}").json()["variables"] == {
        "header": {"type": "image", "variables": []}, "body": ["first_name"], "buttons": []}
    assert api_client.get(f"{URL}/{plain.pk}").json()["variables"] == {"header": None, "body": [], "buttons": []}


def test_filters(api_client, tenant, number):
    other_number = PhoneNumberFactory(tenant=tenant, waba_id="waba-other")
    a = MessageTemplateFactory(tenant=tenant, phone_number=number, name="a", language="en", category="UTILITY")
    b = MessageTemplateFactory(tenant=tenant, phone_number=number, name="b", language="pt_BR", status="PENDING",
                               category="MARKETING")
    c = MessageTemplateFactory(tenant=tenant, phone_number=other_number, name="a", language="pt_BR")

    def ids(**params):
        response = api_client.get(URL, params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["data"]]

    assert ids() == [a.pk, c.pk, b.pk]
    assert ids(status="APPROVED") == [a.pk, c.pk]
    assert ids(name="a") == [a.pk, c.pk]
    assert ids(language="pt_BR") == [c.pk, b.pk]
    assert ids(category="MARKETING") == [b.pk]
    assert ids(phone_number_id=number.pk) == [a.pk, b.pk]
    assert ids(phone_number_id=other_number.pk, name="a") == [c.pk]
    assert ids(phone_number_id=number.pk + 1000) == []
    assert_error(api_client.get(URL, {"status": "approved-ish"}), 400, "invalid_request")
    assert_error(api_client.get(URL, {"phone_number_id": "x"}), 400, "invalid_request")


@pytest.mark.parametrize("params", [{"per_page": 0}, {"per_page": 101}])
def test_paging_bounds(api_client, params):
    error = assert_error(api_client.get(URL, params), 400, "invalid_request")
    assert "per_page" in error["details"]


def test_paging(api_client, tenant, number):
    for i in range(3):
        MessageTemplateFactory(tenant=tenant, phone_number=number, name=f"t{i}")
    first = api_client.get(URL, {"per_page": 2}).json()
    second = api_client.get(URL, {"per_page": 2, "page": 2}).json()
    assert [r["name"] for r in first["data"]] == ["t0", "t1"] and first["next_page"] == 2
    assert [r["name"] for r in second["data"]] == ["t2"] and second["has_more"] is False


def test_get_one_and_404(api_client, tenant, number):
    template = MessageTemplateFactory(tenant=tenant, phone_number=number)
    assert api_client.get(f"{URL}/{template.pk}").json()["id"] == template.pk
    assert_error(api_client.get(f"{URL}/{template.pk + 1000}"), 404, "not_found")


# -- sync -----------------------------------------------------------------------------------

def test_sync_task_goes_to_the_default_queue():
    route = current_app.amqp.router.route({}, template_sync_task.name, args=(), kwargs={})
    assert route["queue"].name == "default"


def test_sync_through_the_api_with_meta_paging(api_client, tenant, number, meta_backend, rsps,
                                               django_capture_on_commit_callbacks):
    WebhookEndpointFactory(tenant=tenant, url="https://hooks.example.com/parley", events=["template.status_changed"])
    rsps.post("https://hooks.example.com/parley", status=204)
    stale = MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id=WABA, name="old_one", language="en")
    changed = MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id=WABA, name="reminder",
                                     language="en", status="APPROVED", components=[{"type": "BODY", "text": "x"}])
    elsewhere = MessageTemplateFactory(tenant=tenant, waba_id="another-waba", name="old_one", language="en")
    meta_pages(rsps)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(SYNC_URL, {"phone_number_id": number.pk}, format="json")
    assert response.status_code == 202, response.content
    assert response.json() == {"status": "queued", "phone_number_ids": [number.pk]}
    graph_calls = [call for call in rsps.calls if call.request.url.startswith(GRAPH)]
    assert [call.request.url for call in graph_calls] == [FIRST_PAGE, SECOND_PAGE]
    assert all(call.request.headers["Authorization"] == f"Bearer {TOKEN}" for call in graph_calls)

    order = templates_of(tenant).get(waba_id=WABA, name="order_update")
    assert (order.language, order.status, order.category, order.parameter_format) == (
        "en_US", "APPROVED", "UTILITY", "positional")
    assert (order.provider_template_id, order.quality_rating, order.phone_number_id) == ("1689556908129832", "GREEN",
                                                                                         number.pk)
    assert order.components[1] == {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."}
    assert order.last_synced_at is not None
    changed.refresh_from_db()
    assert (changed.status, changed.parameter_format, changed.category) == ("PENDING", "named", "MARKETING")
    assert changed.components == [{"type": "BODY", "text": "Hi {{first_name}}, see you at {{time}}."}]
    promo = templates_of(tenant).get(waba_id=WABA, name="promo")
    assert (promo.status, promo.rejected_reason) == ("REJECTED", "PROMOTIONAL")
    stale.refresh_from_db()
    elsewhere.refresh_from_db()
    assert stale.status == "DELETED" and elsewhere.status == "APPROVED"
    assert templates_of(tenant).filter(waba_id=WABA).count() == 4

    events = {(d.payload["data"]["name"], d.payload["data"]["previous_status"], d.payload["data"]["status"])
              for d in WebhookDelivery.objects.for_tenant(tenant).filter(event_type="template.status_changed")}
    assert events == {("reminder", "APPROVED", "PENDING"), ("old_one", "APPROVED", "DELETED")}
    hook_calls = [call for call in rsps.calls if call.request.url == "https://hooks.example.com/parley"]
    assert len(hook_calls) == 2  # the events went out after the sync committed

    listed = api_client.get(URL, {"phone_number_id": number.pk, "name": "order_update"}).json()["data"]
    assert listed[0]["variables"] == {"header": {"type": "image", "variables": []}, "body": ["1", "2"],
                                      "buttons": [{"index": 0, "type": "url", "count": 1}]}


def test_sync_again_changes_nothing(tenant, number, meta_backend, rsps):
    meta_pages(rsps)
    first = template_sync(tenant=tenant, phone_number=number)
    assert (first.created, first.updated, first.deleted, first.skipped) == (3, 0, 0, 1)
    meta_pages(rsps)
    second = template_sync(tenant=tenant, phone_number=number)
    assert (second.created, second.updated, second.unchanged, second.deleted) == (0, 0, 3, 0)


def test_a_failed_sync_changes_nothing(tenant, number, meta_backend, rsps):
    kept = MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id=WABA, name="kept")
    rsps.get(FIRST_PAGE, json={"data": [{"name": "new", "language": "en", "status": "APPROVED"}],
                               "paging": {"next": SECOND_PAGE}})
    rsps.get(SECOND_PAGE, status=401, json={"error": {"message": "Error validating access token", "code": 190,
                                                      "type": "OAuthException", "fbtrace_id": "A1"}})
    with pytest.raises(ProviderConfigurationError):
        template_sync(tenant=tenant, phone_number=number)
    kept.refresh_from_db()
    assert kept.status == "APPROVED" and list(templates_of(tenant)) == [kept]


def test_sync_gupshup_templates(settings, tenant, rsps):
    settings.WHATSAPP_BACKENDS = {**settings.WHATSAPP_BACKENDS,
                                  "gupshup": "apps.providers.backends.gupshup.GupshupBackend"}
    settings.GUPSHUP_API_URL = "https://api.gupshup.io"
    number = PhoneNumberFactory(tenant=tenant, provider="gupshup", phone_number_id="", waba_id="DemoApp",
                                provider_app_id="DemoApp", credentials={"api_key": "gs-key"})
    rsps.get("https://api.gupshup.io/sm/api/v1/template/list/DemoApp", json={"status": "success", "templates": [
        {"id": "c6ae", "elementName": "order_update", "languageCode": "en", "status": "APPROVED",
         "category": "UTILITY", "data": "Hi {{1}} | [Track]",
         "containerMeta": '{"header": "Order", "data": "Hi {{1}}", "footer": "Acme"}'},
        {"id": "7a1", "elementName": "promo", "languageCode": "en", "status": "REJECTED", "category": "MARKETING",
         "reason": "Promotional content", "data": "Sale"},
    ]})
    report = template_sync(tenant=tenant, phone_number=number)
    assert report.created == 2
    order = templates_of(tenant).get(name="order_update")
    assert order.components == [{"type": "HEADER", "format": "TEXT", "text": "Order"},
                                {"type": "BODY", "text": "Hi {{1}}"}, {"type": "FOOTER", "text": "Acme"}]
    assert (order.provider_template_id, order.waba_id) == ("c6ae", "DemoApp")
    promo = templates_of(tenant).get(name="promo")
    assert (promo.status, promo.rejected_reason, promo.components) == (
        "REJECTED", "Promotional content", [{"type": "BODY", "text": "Sale"}])


def test_sync_every_number_once_per_waba(api_client, tenant, meta_backend, rsps, django_capture_on_commit_callbacks):
    first = PhoneNumberFactory(tenant=tenant, waba_id="waba-a")
    PhoneNumberFactory(tenant=tenant, waba_id="waba-a")  # same WABA: synced once
    second = PhoneNumberFactory(tenant=tenant, waba_id="waba-b")
    PhoneNumberFactory(tenant=tenant, waba_id="waba-c", status=PhoneNumber.Status.DISABLED)  # not synced
    for waba, name in (("waba-a", "from_a"), ("waba-b", "from_b")):
        rsps.get(f"{GRAPH}/{waba}/message_templates?limit=100",
                 json={"data": [{"name": name, "language": "en", "status": "APPROVED", "category": "UTILITY",
                                 "components": [{"type": "BODY", "text": "Hello"}], "id": name}]})
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(SYNC_URL, {}, format="json")
    assert response.status_code == 202
    assert response.json() == {"status": "queued", "phone_number_ids": [first.pk, second.pk]}
    assert len(rsps.calls) == 2
    assert sorted(templates_of(tenant).values_list("waba_id", "name")) == [("waba-a", "from_a"), ("waba-b", "from_b")]


def test_sync_errors(api_client, tenant):
    assert_error(api_client.post(SYNC_URL, {}, format="json"), 409, "no_phone_numbers")
    assert_error(api_client.post(SYNC_URL, {"phone_number_id": 999999}, format="json"), 404, "not_found")
    assert_error(api_client.post(SYNC_URL, {"phone_number_id": "x"}, format="json"), 400, "invalid_request")


# -- tenant isolation -----------------------------------------------------------------------

def test_another_tenant_gets_404_and_sees_nothing(other_api_client, tenant, number):
    template = MessageTemplateFactory(tenant=tenant, phone_number=number)
    assert_error(other_api_client.get(f"{URL}/{template.pk}"), 404, "not_found")
    assert other_api_client.get(URL).json()["data"] == []
    assert other_api_client.get(URL, {"phone_number_id": number.pk}).json()["data"] == []
    assert_error(other_api_client.post(SYNC_URL, {"phone_number_id": number.pk}, format="json"), 404, "not_found")
