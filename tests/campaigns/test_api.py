"""The campaigns REST API."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.campaigns.models import Campaign, CampaignRecipient
from apps.campaigns.planning import campaign_plan
from apps.tenants.services import api_key_create

from .conftest import MAPPING, tagged


@pytest.fixture
def api(tenant):
    cache.clear()
    _, key = api_key_create(tenant=tenant, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


BODY = {"name": "Spring", "template": {"name": "spring_sale", "language": "en"}, "audience": {"tags": ["vip"]},
        "variable_mapping": MAPPING}


def test_create_launch_read_and_control_a_campaign(api, tenant, number, template, vip):
    tagged(tenant, vip, 4)
    response = api.post("/api/v1/campaigns", {**BODY, "messages_per_second": 50,
                                              "quiet_hours": {"start": "21:00", "end": "08:00"}}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "planning" and body["pace"] == 50 and body["template"] == {"name": "spring_sale",
                                                                                       "language": "en"}
    campaign_id = body["id"]
    campaign_plan(tenant_id=tenant.pk, campaign_id=campaign_id, time_budget=10)
    detail = api.get(f"/api/v1/campaigns/{campaign_id}").json()
    assert detail["status"] == "running" and detail["funnel"]["targeted"] == 4 and detail["funnel"]["pending"] == 4
    assert api.post(f"/api/v1/campaigns/{campaign_id}/pause").json()["status"] == "paused"
    again = api.post(f"/api/v1/campaigns/{campaign_id}/pause")
    assert again.status_code == 409 and again.json()["error"]["code"] == "campaign_state"
    assert api.post(f"/api/v1/campaigns/{campaign_id}/resume").json()["status"] == "running"
    assert api.post(f"/api/v1/campaigns/{campaign_id}/cancel").json()["status"] == "cancelled"
    page = api.get("/api/v1/campaigns").json()
    assert [c["id"] for c in page["data"]] == [campaign_id] and page["has_more"] is False
    recipients = api.get(f"/api/v1/campaigns/{campaign_id}/recipients", {"limit": 3}).json()
    assert len(recipients["data"]) == 3 and recipients["next_after_id"] == recipients["data"][-1]["id"]
    rest = api.get(f"/api/v1/campaigns/{campaign_id}/recipients", {"after_id": recipients["next_after_id"]}).json()
    assert len(rest["data"]) == 1 and rest["next_after_id"] is None and rest["data"][0]["status"] == "cancelled"


def test_explicit_recipients_and_a_schedule(api, tenant, number, template):
    body = {"name": "List", "template": {"name": "spring_sale", "language": "en"},
            "recipients": [{"to": "+14155550101", "variables": {"1": "Ana", "2": "Shoes"}},
                           {"to": "+14155550102", "variables": ["Rui", "Hats"]}],
            "scheduled_at": "2099-01-01T09:00:00", "phone_number_id": str(number.pk)}
    response = api.post("/api/v1/campaigns", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "scheduled" and response.json()["funnel"]["pending"] == 2
    replay = api.post("/api/v1/campaigns", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert replay.json()["id"] == response.json()["id"] and Campaign.objects.for_tenant(tenant).count() == 1
    assert CampaignRecipient.objects.for_tenant(tenant).filter(status="new").count() == 2


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"template": {"name": "nope", "language": "en"}}, 422, "template_not_approved"),
    ({"variable_mapping": {}}, 400, "invalid_variable_mapping"),
    ({"messages_per_second": 1000, "phone_number_id": "999999"}, 404, "phone_number_not_found"),
    ({"scheduled_at": "2001-01-01T00:00:00Z"}, 400, "invalid_schedule"),
    ({"audience": {}}, 400, "empty_audience"),
    ({"recipients": [{"to": ""}]}, 400, "invalid_recipients"),
])
def test_invalid_campaigns_are_refused_with_a_code(api, number, template, change, status, code):
    response = api.post("/api/v1/campaigns", {**BODY, **change}, format="json")
    assert response.status_code == status and response.json()["error"]["code"] == code


def test_another_tenants_campaign_is_404(api, other_tenant):
    from tests.factories import CampaignFactory

    theirs = CampaignFactory(tenant=other_tenant)
    assert api.get(f"/api/v1/campaigns/{theirs.pk}").status_code == 404
    assert api.post(f"/api/v1/campaigns/{theirs.pk}/pause").status_code == 404
