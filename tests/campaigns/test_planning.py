from collections import Counter

from apps.campaigns.models import Campaign, CampaignRecipient
from apps.campaigns.planning import CHUNK, campaign_plan
from apps.campaigns.services import campaign_create, campaign_start
from apps.contacts.models import Contact
from tests.factories import ContactFactory, SegmentFactory

from .conftest import MAPPING, tagged


def plan(campaign):
    report = campaign_plan(tenant_id=campaign.tenant_id, campaign_id=campaign.pk, time_budget=60)
    campaign.refresh_from_db()
    return report


def reasons(campaign):
    return Counter(CampaignRecipient.objects.for_tenant(campaign.tenant_id).filter(campaign=campaign)
                   .values_list("status", "skip_reason"))


def test_audience_planning_records_every_skip_reason_and_resolved_variables(scoped, number, template, vip):
    ok = tagged(scoped, vip, 3)
    first_number = ok[0].wa_id
    opted_out = tagged(scoped, vip, 1)[0]
    Contact.objects.for_tenant(scoped).filter(pk=opted_out.pk).update(opt_in_status="opted_out", wa_id="14155559999")
    invalid = ContactFactory(tenant=scoped, wa_id="12")  # not a possible number
    vip.contact_tags.create(tenant=scoped, contact=invalid)
    missing = ContactFactory(tenant=scoped, wa_id="14155558888", name="")
    vip.contact_tags.create(tenant=scoped, contact=missing)
    mapping = {"1": {"source": "name"}, "2": {"source": "literal", "value": "Everything"}}
    campaign = campaign_create(tenant=scoped, name="Spring", phone_number=number, template=template,
                               audience={"tags": ["vip"]}, variable_mapping=mapping, recipients=[
                                   {"to": "+" + first_number, "variables": {"1": "Dup"}},  # = ok[0]: duplicate
                                   {"to": "not a number"},
                                   {"to": "+351 912 345 678", "variables": {"1": "Rui"}},  # new contact
                                   {"to": "351912345678", "variables": {"1": "Rui again"}},  # duplicate in list
                               ])
    campaign_start(campaign=campaign)
    report = plan(campaign)
    assert report.done and campaign.status == Campaign.Status.RUNNING and campaign.planned_at
    assert reasons(campaign) == Counter({
        ("pending", ""): 4, ("skipped", "opted_out"): 1, ("skipped", "invalid_number"): 2,
        ("skipped", "missing_variable"): 1, ("skipped", "duplicate"): 2,
    })
    first = CampaignRecipient.objects.for_tenant(scoped).get(campaign=campaign, contact=ok[0])
    assert first.variables == {"1": ok[0].name, "2": "Everything"}
    rui = CampaignRecipient.objects.for_tenant(scoped).get(campaign=campaign, to="351912345678", status="pending")
    assert rui.contact.wa_id == "351912345678" and rui.variables == {"1": "Rui", "2": "Everything"}
    skipped = CampaignRecipient.objects.for_tenant(scoped).get(campaign=campaign, contact=missing)
    assert skipped.variables == {"missing": ["1"]}


def test_already_messaged_by_this_campaign(scoped, number, template):
    campaign = campaign_create(tenant=scoped, name="List", phone_number=number, template=template, audience={},
                               variable_mapping=MAPPING, recipients=[{"to": "+14155550100"}])
    campaign_start(campaign=campaign)
    plan(campaign)
    CampaignRecipient.objects.for_tenant(scoped).filter(campaign=campaign).update(status="delivered")
    # The same number arrives again (a later chunk of the list) after its first row went out.
    CampaignRecipient.objects.for_tenant(scoped).create(tenant=scoped, campaign=campaign, to="14155550100",
                                                        status="new")
    Campaign.objects.for_tenant(scoped).filter(pk=campaign.pk).update(planned_at=None, status="planning")
    plan(campaign)
    assert reasons(campaign)[("skipped", "already_messaged")] == 1


def test_planning_is_chunked_resumable_and_idempotent(scoped, number, template, vip, django_assert_max_num_queries):
    tagged(scoped, vip, CHUNK + 5)
    campaign = campaign_create(tenant=scoped, name="Big", phone_number=number, template=template,
                               audience={"tags": ["vip"]}, variable_mapping=MAPPING)
    campaign_start(campaign=campaign)
    # A planner that stops after one chunk (killed, or out of time) leaves a cursor behind ...
    report = campaign_plan(tenant_id=scoped.pk, campaign_id=campaign.pk, time_budget=0)
    campaign.refresh_from_db()
    assert not report.done and report.planned == CHUNK and campaign.planning_cursor > 0
    # ... and replaying a chunk already written changes nothing (unique constraint, cursor).
    Campaign.objects.for_tenant(scoped).filter(pk=campaign.pk).update(planning_cursor=0)
    with django_assert_max_num_queries(50):  # bulk: no per-row round trips for 1,000 contacts
        plan(campaign)
    assert CampaignRecipient.objects.for_tenant(scoped).filter(campaign=campaign).count() == CHUNK + 5
    assert campaign.status == Campaign.Status.RUNNING


def test_audience_union_of_segment_filters_and_contact_ids(scoped, number, template, vip):
    gold = tagged(scoped, vip, 2)
    Contact.objects.for_tenant(scoped).filter(pk=gold[0].pk).update(attributes={"plan": "gold"})
    extra = ContactFactory(tenant=scoped, wa_id="14155557777")
    segment = SegmentFactory(tenant=scoped, filters={"attributes": [{"key": "plan", "op": "eq", "value": "gold"}]})
    campaign = campaign_create(tenant=scoped, name="Seg", phone_number=number, template=template,
                               audience={"segment_id": segment.pk, "tags": ["vip"], "contact_ids": [extra.pk]},
                               variable_mapping=MAPPING)
    campaign_start(campaign=campaign)
    plan(campaign)
    contacts = set(CampaignRecipient.objects.for_tenant(scoped).filter(campaign=campaign)
                   .values_list("contact_id", flat=True))
    assert contacts == {gold[0].pk, extra.pk}


def test_a_deleted_segment_fails_the_campaign_with_a_reason(scoped, number, template):
    segment = SegmentFactory(tenant=scoped, filters={})
    campaign = campaign_create(tenant=scoped, name="Seg", phone_number=number, template=template,
                               audience={"segment_id": segment.pk}, variable_mapping=MAPPING)
    campaign_start(campaign=campaign)
    segment.delete()
    plan(campaign)
    assert campaign.status == Campaign.Status.FAILED and "segment" in campaign.status_reason


def test_planning_keeps_only_so_far_ahead_of_the_sending_and_resumes(scoped, number, template, vip, monkeypatch):
    from apps.campaigns import planning

    monkeypatch.setattr(planning, "CHUNK", 5)
    monkeypatch.setattr(planning, "PLAN_AHEAD_SECONDS", 1)
    tagged(scoped, vip, 23)
    campaign = campaign_create(tenant=scoped, name="Paced", phone_number=number, template=template,
                               audience={"tags": ["vip"]}, variable_mapping=MAPPING, messages_per_second=8)
    campaign_start(campaign=campaign)
    recipients = CampaignRecipient.objects.for_tenant(scoped).filter(campaign=campaign)

    report = plan(campaign)
    # A second of an 8/s campaign is planned (two chunks of 5), then planning waits for the feeder.
    assert (report.ahead, report.done, report.planned) == (True, False, 10)
    assert campaign.planned_at is None and recipients.count() == 10
    assert plan(campaign).planned == 0  # still far enough ahead: nothing more yet

    recipients.filter(status="pending").update(status="queued")  # the feeder took them
    report = plan(campaign)
    assert report.planned == 10 and recipients.count() == 20
    recipients.filter(status="pending").update(status="queued")
    report = plan(campaign)
    assert report.done and recipients.count() == 23 and campaign.planned_at is not None
