"""Creation rules, scheduling in the tenant's time zone, quiet hours, test sends, CSV audiences."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from apps.campaigns.dispatch import campaign_feed, in_quiet_hours
from apps.campaigns.models import Campaign, CampaignRecipient
from apps.campaigns.planning import campaign_plan
from apps.campaigns.selectors import campaign_audience_preview
from apps.campaigns.services import (
    campaign_create,
    campaign_launch,
    campaign_recipients_csv_parse,
    campaign_send_test,
    campaigns_start_due,
    campaigns_tick,
)
from apps.conversations.models import Message
from apps.core.exceptions import ApplicationError
from apps.tenants.models import Tenant
from tests.factories import MessageTemplateFactory, PhoneNumberFactory

from .conftest import MAPPING, tagged


def create(scoped, number, template, **kwargs):
    values = {"tenant": scoped, "name": "Spring", "phone_number": number, "template": template,
              "audience": {"tags": ["vip"]}, "variable_mapping": MAPPING}
    values.update(kwargs)
    return campaign_create(**values)


def code_of(call):
    with pytest.raises(ApplicationError) as exc:
        call()
    return exc.value.code


def test_creation_is_validated(scoped, number, template, vip):
    pending = MessageTemplateFactory(tenant=scoped, phone_number=number, waba_id="waba-1", status="PENDING")
    other_waba = MessageTemplateFactory(tenant=scoped, waba_id="waba-2")
    assert code_of(lambda: create(scoped, number, pending)) == "template_not_approved"
    assert code_of(lambda: create(scoped, number, other_waba)) == "template_not_approved"
    assert code_of(lambda: create(scoped, number, template, variable_mapping={"1": {"source": "name"}})) \
        == "invalid_variable_mapping"
    assert code_of(lambda: create(scoped, number, template, messages_per_second=1001)) == "invalid_pace"
    assert code_of(lambda: create(scoped, number, template, audience={})) == "empty_audience"
    assert code_of(lambda: create(scoped, number, template, audience={"color": "red"})) == "invalid_audience"
    assert code_of(lambda: create(scoped, number, template, quiet_hours={"start": "25:00", "end": "08:00"})) \
        == "invalid_quiet_hours"
    assert code_of(lambda: create(scoped, number, template,
                                  scheduled_at=timezone.now() - timedelta(minutes=1))) == "invalid_schedule"
    assert code_of(lambda: create(scoped, number, template, recipients=[{"to": "1"}] * 100_001)) \
        == "too_many_recipients"
    elsewhere = PhoneNumberFactory()
    assert code_of(lambda: create(scoped, elsewhere, template)) == "phone_number_not_found"
    campaign = create(scoped, number, template, messages_per_second=200)
    assert campaign.status == Campaign.Status.DRAFT and campaign.messages_per_second == 200


def test_a_schedule_in_the_tenants_time_zone_starts_when_due(scoped, number, template, vip):
    Tenant.objects.filter(pk=scoped.pk).update(time_zone="Asia/Kolkata")
    scoped.refresh_from_db()
    tagged(scoped, vip, 2)
    local = (timezone.now() + timedelta(days=1)).astimezone(ZoneInfo("Asia/Kolkata")).replace(tzinfo=None)
    campaign = create(scoped, number, template, scheduled_at=local)  # naive: read in the tenant's zone
    assert campaign.scheduled_at == local.replace(tzinfo=ZoneInfo("Asia/Kolkata"))
    campaign = campaign_launch(campaign=campaign)
    assert campaign.status == Campaign.Status.SCHEDULED
    with pytest.raises(ApplicationError):
        campaign_launch(campaign=campaign)
    assert campaigns_start_due() == 0
    assert campaigns_start_due(now=campaign.scheduled_at + timedelta(seconds=1)) == 1
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PLANNING and campaign.started_at


def test_the_tick_rings_planning_and_feeding_and_is_cheap(scoped, number, template, vip, settings,
                                                         django_capture_on_commit_callbacks):
    # Eager tasks run one after another: the feeder watches for completion until its time
    # budget ends, and only then does the dispatch it rang run (a worker runs them side by side).
    settings.PARLEY_CAMPAIGN_FEED_TIME_BUDGET = 0.5
    tagged(scoped, vip, 3)
    campaign = create(scoped, number, template)
    campaign_launch(campaign=campaign)
    with django_capture_on_commit_callbacks(execute=True):
        campaigns_tick()  # eager tasks: plan and feed run now
    campaign.refresh_from_db()
    assert campaign.status in (Campaign.Status.RUNNING, Campaign.Status.COMPLETED)
    assert campaign.planned_at is not None
    assert Message.objects.for_tenant(scoped).count() == 3


def test_quiet_hours_hold_dispatch_in_the_tenants_time_zone(scoped, number, template, vip):
    Tenant.objects.filter(pk=scoped.pk).update(time_zone="America/New_York")
    scoped.refresh_from_db()
    tagged(scoped, vip, 3)
    campaign = create(scoped, number, template, quiet_hours={"start": "21:00", "end": "08:00"})
    ny = ZoneInfo("America/New_York")
    assert in_quiet_hours(campaign, now=datetime(2026, 11, 20, 22, 30, tzinfo=ny))
    assert in_quiet_hours(campaign, now=datetime(2026, 11, 21, 7, 59, tzinfo=ny))
    assert not in_quiet_hours(campaign, now=datetime(2026, 11, 21, 8, 0, tzinfo=ny))
    now_local = timezone.localtime(timezone.now(), ny)
    start = (now_local - timedelta(hours=1)).strftime("%H:%M")
    end = (now_local + timedelta(hours=1)).strftime("%H:%M")
    Campaign.objects.for_tenant(scoped).filter(pk=campaign.pk).update(quiet_hours={"start": start, "end": end})
    campaign_launch(campaign=campaign)
    campaign_plan(tenant_id=scoped.pk, campaign_id=campaign.pk, time_budget=10)
    report = campaign_feed(tenant_id=scoped.pk, campaign_id=campaign.pk, time_budget=0)
    assert report.stopped == "quiet_hours" and report.fed == 0
    assert CampaignRecipient.objects.for_tenant(scoped).filter(campaign=campaign, status="pending").count() == 3


def test_send_test_renders_for_a_sample_contact(scoped, number, template, vip):
    contact = tagged(scoped, vip, 1)[0]
    message = campaign_send_test(tenant=scoped, phone_number=number, template=template, variable_mapping=MAPPING,
                                 to="+1 650 555 1234", contact=contact)
    assert message.status == "queued" and message.contact.wa_id == "16505551234"
    assert message.text_preview == f"Hi {contact.name}, Everything is on sale."
    with pytest.raises(ApplicationError) as exc:
        campaign_send_test(tenant=scoped, phone_number=number, template=template,
                           variable_mapping={"1": {"source": "name"}}, to="+16505551234")
    assert exc.value.code == "missing_variable"


def test_csv_upload_rows(scoped):
    rows = campaign_recipients_csv_parse(tenant=scoped, file=b"\xef\xbb\xbfPhone,1,city\n+1 650 555 1234,Ana,Porto\n\n"
                                                          b"16505551235,Rui,\n")
    assert rows == [{"to": "+1 650 555 1234", "variables": {"1": "Ana", "city": "Porto"}},
                    {"to": "16505551235", "variables": {"1": "Rui"}}]
    with pytest.raises(ApplicationError) as exc:
        campaign_recipients_csv_parse(tenant=scoped, file="name,city\nAna,Porto\n")
    assert exc.value.code == "invalid_csv"


def test_audience_preview(scoped, vip):
    contacts = tagged(scoped, vip, 7)
    preview = campaign_audience_preview(tenant=scoped, audience={"tags": ["vip"]})
    assert preview["count"] == 7 and [c.pk for c in preview["sample"]] == [c.pk for c in contacts[::-1][:5]]
