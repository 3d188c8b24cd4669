"""A marketer's campaign in a real browser against the live server: the stepwise form with its
live audience count and preview, a test send, scheduling, the scheduled campaign starting, the
results page following it live to completion, and the recipients table's filters."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.utils import timezone

from apps.campaigns.dispatch import campaign_feed
from apps.campaigns.models import Campaign, CampaignRecipient
from apps.campaigns.services import campaigns_start_due
from apps.conversations.models import Message
from apps.conversations.services import message_receive, message_statuses_apply, messages_dispatch
from apps.core.scoping import tenant_scope
from apps.providers.backends import locmem
from apps.providers.events import ErrorInfo, InboundMessage, StatusUpdate
from tests.factories import (
    ContactFactory,
    ContactTagFactory,
    MembershipFactory,
    MessageTemplateFactory,
    PhoneNumberFactory,
    SegmentFactory,
    TagFactory,
    TenantFactory,
    UserFactory,
)

from .conftest import login, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

LIVE = 12_000  # ms: the results page asks every 2 s while sending, every 5 s before
ZONE = "Europe/Lisbon"
NAMES = ["Maya Patel", "Jonas Weber", "Aiko Tanaka", "Lucas Silva", "Amara Okafor", "Sofia Rossi", "Noah Kim",
         "Ines Costa", "Omar Haddad", "Lena Fischer", "Ravi Menon", "Clara Dubois", "Mateo García", "Yuki Sato",
         "Hannah Berg", "Diego Alves", "Priya Nair", "Tom Walsh", "Elif Yılmaz", "Kofi Mensah", "Anna Nowak",
         "Sam Carter", "Leila Ahmadi", "Marta Lopes"]


def status(message: Message, value: str, code: int | None = None) -> StatusUpdate:
    errors = (ErrorInfo(code, "Message undeliverable", "", ""),) if code else ()
    return StatusUpdate(provider="meta_cloud", route_key="5550001", provider_message_id=message.provider_message_id,
                        wa_message_id=message.wa_message_id, status=value, timestamp=timezone.now(),
                        recipient_wa_id="", errors=errors, conversation={}, pricing={}, callback_data=None, raw={})


def reply(wa_id: str, name: str, wamid: str, text: str) -> InboundMessage:
    return InboundMessage(provider="meta_cloud", route_key="5550001", wa_id=wa_id, profile_name=name,
                          provider_message_id=wamid, timestamp=timezone.now(), type="text", content={"body": text},
                          text=text, context_id=None, media=None, errors=(), raw={})


@pytest.fixture
def workspace(db):
    cache.clear()
    locmem.reset()
    tenant = TenantFactory(slug="acme", name="Acme Store", time_zone=ZONE)
    marketer = UserFactory(email="mia@acme.test", first_name="Mia", last_name="Marketing")
    MembershipFactory(tenant=tenant, user=marketer, role="marketer")
    number = PhoneNumberFactory(tenant=tenant, phone_number_id="5550001", waba_id="waba-1",
                                display_number="15550001111", display_name="Acme Store", messages_per_second=80)
    MessageTemplateFactory(
        tenant=tenant, phone_number=number, waba_id="waba-1", name="spring_sale", language="en",
        category="MARKETING", components=[
            {"type": "HEADER", "format": "TEXT", "text": "Spring sale 🌷"},
            {"type": "BODY", "text": "Hi {{1}}, our spring sale is on: {{2}} off everything in {{3}} until Sunday.",
             "example": {"body_text": [["Maya", "20%", "Lisbon"]]}},
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Show me"},
                                            {"type": "QUICK_REPLY", "text": "Not now"}]}])
    MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id="waba-1", name="draft_offer", language="en",
                           status="PENDING")
    vip = TagFactory(tenant=tenant, name="vip")
    TagFactory(tenant=tenant, name="newsletter")
    TagFactory(tenant=tenant, name="wholesale")
    cities = ["Lisbon", "Porto", "Berlin", ""]
    for i, name in enumerate(NAMES):
        attributes = {"city": cities[i % 4]} if cities[i % 4] else {}
        contact = ContactFactory(tenant=tenant, wa_id=f"1415555{i + 100:04d}", name=name, attributes=attributes)
        ContactTagFactory(tenant=tenant, contact=contact, tag=vip)
    opted_out = ContactFactory(tenant=tenant, wa_id="14155550999", name="Otto Out", opt_in_status="opted_out")
    ContactTagFactory(tenant=tenant, contact=opted_out, tag=vip)
    SegmentFactory(tenant=tenant, name="Lisbon VIPs", filters={"tags": ["vip"], "attributes": [
        {"key": "city", "op": "eq", "value": "Lisbon"}]})
    yield {"tenant": tenant, "number": number, "marketer": marketer}
    locmem.reset()
    cache.clear()


def pump(campaign: Campaign) -> None:
    """What the worker does between two polls: feed the campaign, dispatch its messages."""
    for _ in range(40):
        fed = campaign_feed(tenant_id=campaign.tenant_id, campaign_id=campaign.pk, time_budget=0).fed
        sent = messages_dispatch(tenant_id=campaign.tenant_id, phone_number_id=campaign.phone_number_id,
                                 time_budget=0).claimed
        if not fed and not sent:
            return


def test_marketer_creates_schedules_and_watches_a_campaign(page, live_server, workspace):
    tenant, number = workspace["tenant"], workspace["number"]
    login(page, live_server, "mia@acme.test", "password")
    page.goto(f"{live_server.url}/t/acme/campaigns/")
    page.get_by_text("No campaigns yet").wait_for()
    screenshot(page, "campaigns-empty")

    # Step 1: the one number is chosen already; only approved templates are offered.
    page.click("text=New campaign")
    page.wait_for_url("**/t/acme/campaigns/new")
    page.fill("input[name=name]", "Spring sale — VIPs")
    options = page.locator("select[name=template] option").all_inner_texts()
    assert any("spring_sale" in o for o in options) and not any("draft_offer" in o for o in options)
    page.select_option("select[name=template]", label="spring_sale · en · Marketing")
    page.locator(".map-row").nth(2).wait_for()
    # The first guess: {{1}} is the contact's name, the others the template's examples.
    assert page.input_value("select[name='map-1-source']") == "name"
    assert page.input_value("input[name='map-2-value']") == "20%"

    # Step 2: tag vip; the live count says how many, the preview fills the name per contact.
    page.click("label.tag-pick:has-text('vip')")
    page.locator("#audience-count", has_text="25").wait_for()
    # {{3}} from each contact's city, with a fallback for those without one.
    page.select_option("select[name='map-3-source']", "attribute")
    page.fill("input[name='map-3-key']", "city")
    page.fill("input[name='map-3-fallback']", "our stores")
    page.fill("input[name='map-1-fallback']", "there")
    page.locator(".chat-bubble", has_text="our stores").first.wait_for()
    bubbles = page.locator(".chat-bubble").all_inner_texts()
    assert len(bubbles) == 3 and all("off everything in" in b for b in bubbles)
    assert not page.locator(".var.is-missing").count()

    # A test to one number, before anything goes out.
    page.fill("input[name=test_to]", "+1 415 555 0100")
    page.click(".test-send button[type=submit]")
    page.locator(".test-ok", has_text="Test queued").wait_for()
    assert [m.to for _, m in locmem.outbox] == ["14155550100"]

    # Step 4: schedule it for tomorrow 09:30 in the workspace's time zone, at 40 messages/s.
    page.click(".seg-control label:has(input[value=later])")
    when = (timezone.now().astimezone(ZoneInfo(ZONE)) + timedelta(days=1)).replace(hour=9, minute=30)
    page.fill("input[name=scheduled_at]", when.strftime("%Y-%m-%dT%H:%M"))
    page.fill("input[name=messages_per_second]", "40")
    page.locator(".aud-eta").wait_for()
    page.evaluate("window.scrollTo(0, 0); document.querySelector('#content').scrollTo(0, 0)")
    screenshot(page, "campaign-new")
    page.locator("#step-delivery").scroll_into_view_if_needed()
    screenshot(page, "campaign-new-delivery")

    # A pace above the number's budget is refused next to the pace field.
    page.fill("input[name=messages_per_second]", "500")
    page.click("button.btn-launch")
    page.locator("#step-delivery .field-error", has_text="budget of 80").wait_for()
    assert not Campaign.all_tenants.exists()
    assert page.input_value("input[name=name]") == "Spring sale — VIPs"  # nothing typed is lost
    assert page.is_checked("input[name=tag][value=vip]")
    page.fill("input[name=messages_per_second]", "40")
    page.click("button.btn-launch")

    page.wait_for_url("**/t/acme/campaigns/*/")
    campaign = Campaign.all_tenants.get()
    assert campaign.status == Campaign.Status.SCHEDULED and campaign.messages_per_second == 40
    assert campaign.scheduled_at == when.replace(second=0, microsecond=0)
    assert campaign.variable_mapping["3"] == {"source": "attribute", "key": "city", "fallback": "our stores"}
    page.locator(".banner-info", has_text="Scheduled for").wait_for()
    screenshot(page, "campaign-scheduled")

    # The time comes: the beat starts it and the page follows without a reload.
    with tenant_scope(tenant):
        campaigns_start_due(now=campaign.scheduled_at + timedelta(seconds=1))
        pump(campaign)
    page.locator("#live[data-status='running'], #live[data-status='completed']").wait_for(timeout=LIVE)
    messages = list(Message.all_tenants.filter(campaign_recipient__campaign=campaign).order_by("id"))
    assert len(messages) == 24  # the opted-out contact is skipped
    # Spread the acceptances over the 20 seconds a real run at this pace would take, for the chart.
    start = timezone.now() - timedelta(seconds=20)
    for i, message in enumerate(messages):
        Message.all_tenants.filter(pk=message.pk).update(accepted_at=start + timedelta(seconds=i * 20 // 24))
    with tenant_scope(tenant):
        message_statuses_apply(phone_number=number, updates=[status(m, "delivered") for m in messages[:21]])
        message_statuses_apply(phone_number=number, updates=[status(m, "read") for m in messages[:14]])
        message_statuses_apply(phone_number=number, updates=[status(m, "failed", 131026) for m in messages[21:23]])
        for i, message in enumerate(messages[:5]):
            contact = CampaignRecipient.all_tenants.get(pk=message.campaign_recipient_id).contact
            message_receive(phone_number=number, inbound=reply(contact.wa_id, contact.name, f"wamid.RE{i}",
                                                                 "Show me!"))
        campaign_feed(tenant_id=tenant.pk, campaign_id=campaign.pk, time_budget=0)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED

    # Fast polling stops at the final state; delivery reports and replies still come in for a
    # day, so the page then refreshes every 30 s (here: a reload) with the funnel and the reasons.
    page.locator("#live[data-status='completed']").wait_for(timeout=LIVE)
    assert page.get_attribute("#live", "hx-trigger") == "every 30s"
    page.reload()
    funnel = {key: page.inner_text(f"[data-funnel={key}]") for key in
              ("targeted", "sent", "delivered", "read", "replied", "failed", "skipped")}
    assert funnel == {"targeted": "25", "sent": "22", "delivered": "21", "read": "14", "replied": "5",
                      "failed": "2", "skipped": "1"}
    reasons = page.inner_text(".reasons")
    assert "131026" in reasons and "Opted out" in reasons
    assert page.locator(".rate-chart rect").count() > 5
    assert page.locator("#campaign-actions button").count() == 0  # nothing left to pause or cancel
    screenshot(page, "campaign-results")

    # The recipients table filters by status and by error code.
    page.locator("#recipients").scroll_into_view_if_needed()
    screenshot(page, "campaign-recipients")
    page.select_option(".recipient-filters select[name=status]", "failed")
    page.locator("#recipients-table tbody tr").first.wait_for()
    page.wait_for_function("document.querySelectorAll('#recipients-table tbody tr').length === 2")
    assert "131026" in page.inner_text("#recipients-table")

    # The list shows it with its counts.
    page.goto(f"{live_server.url}/t/acme/campaigns/")
    card = page.locator(".camp-card", has_text="Spring sale — VIPs")
    assert "Completed" in card.inner_text() and "25" in card.inner_text()
    screenshot(page, "campaigns-list")


def test_a_spam_rate_pause_shows_why_resume_finishes_and_cancel_asks_first(page, live_server, workspace):
    from django.db import transaction

    from apps.campaigns.services import campaign_create, campaign_launch, campaign_pause_for_error
    from apps.message_templates.models import MessageTemplate

    tenant, number = workspace["tenant"], workspace["number"]
    mapping = {"1": {"source": "name", "fallback": "there"}, "2": {"source": "literal", "value": "30%"},
               "3": {"source": "literal", "value": "Lisbon"}}
    with tenant_scope(tenant):
        template = MessageTemplate.objects.for_tenant(tenant).get(name="spring_sale")
        with transaction.atomic():  # WhatsApp's 131048 arrives before the first batch leaves
            flash = campaign_create(tenant=tenant, name="Flash offer", phone_number=number, template=template,
                                    audience={"tags": ["vip"]}, variable_mapping=mapping)
            campaign_launch(campaign=flash)
            campaign_pause_for_error(campaign=flash, code=131048)
        later = campaign_create(tenant=tenant, name="Weekend reminder", phone_number=number, template=template,
                                audience={"tags": ["vip"]}, variable_mapping=mapping,
                                scheduled_at=timezone.now() + timedelta(days=2))
        campaign_launch(campaign=later)
    flash.refresh_from_db()
    assert flash.status == Campaign.Status.PAUSED and locmem.outbox == []

    login(page, live_server, "mia@acme.test", "password")
    page.goto(f"{live_server.url}/t/acme/campaigns/")
    page.locator(".camp-card", has_text="Flash offer").locator(".camp-card-note", has_text="131048").wait_for()
    screenshot(page, "campaigns-list-states")
    page.goto(f"{live_server.url}/t/acme/campaigns/{flash.pk}/")
    banner = page.locator(".banner-warn")
    assert "131048" in banner.inner_text() and "Spam rate" in banner.inner_text()
    screenshot(page, "campaign-paused")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "campaign-paused-phone")
    page.set_viewport_size({"width": 1360, "height": 860})
    page.click("#campaign-actions button:has-text('Resume')")
    page.locator("#live[data-status='completed']").wait_for(timeout=LIVE)
    assert len(locmem.outbox) == 24

    # Cancelling asks first; keeping it closes the question and changes nothing.
    page.goto(f"{live_server.url}/t/acme/campaigns/{later.pk}/")
    page.locator("[data-funnel=expected]", has_text="25").wait_for()
    screenshot(page, "campaign-scheduled-ready")
    page.click("#campaign-actions summary:has-text('Cancel')")
    page.locator(".confirm-panel", has_text="cannot be undone").wait_for()
    page.click(".confirm-panel button:has-text('Keep sending')")
    assert not page.locator(".confirm-panel").is_visible()
    later.refresh_from_db()
    assert later.status == Campaign.Status.SCHEDULED
    page.click("#campaign-actions summary:has-text('Cancel')")
    page.click(".confirm-panel button:has-text('Yes, cancel it')")
    page.locator("#live[data-status='cancelled']").wait_for(timeout=LIVE)
    later.refresh_from_db()
    assert later.status == Campaign.Status.CANCELLED
    assert page.get_attribute("#live", "hx-trigger") is None  # final: nothing more to ask for
