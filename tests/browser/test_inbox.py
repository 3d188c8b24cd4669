"""The agent inbox in a real browser against the live server: live rows without reloading,
replies, ticks, the closed window's template picker, assignment, resolve, the composer's
helpers and the management pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.conversations.models import CannedResponse, Conversation, Label, Message
from apps.conversations.services import message_receive, message_statuses_apply
from apps.core.scoping import tenant_scope
from apps.providers.backends import locmem
from apps.providers.events import InboundMessage, StatusUpdate
from tests.factories import (
    CannedResponseFactory,
    ContactFactory,
    LabelFactory,
    MembershipFactory,
    MessageTemplateFactory,
    PhoneNumberFactory,
    TenantFactory,
    UserFactory,
)

from .conftest import login, screenshot
from .inbox_scenario import build_rich_thread

pytestmark = pytest.mark.django_db(transaction=True)

LIVE = 6_000  # ms: a 2-second poll, with room to spare


def inbound(wamid: str, text: str, wa_id: str = "14155550123", name: str = "Maya Patel") -> InboundMessage:
    return InboundMessage(provider="meta_cloud", route_key="5550001", wa_id=wa_id, profile_name=name,
                          provider_message_id=wamid, timestamp=timezone.now(), type="text", content={"body": text},
                          text=text, context_id=None, media=None, errors=(), raw={})


def status(wamid: str, value: str) -> StatusUpdate:
    return StatusUpdate(provider="meta_cloud", route_key="5550001", provider_message_id=wamid, wa_message_id=wamid,
                        status=value, timestamp=timezone.now(), recipient_wa_id=None, errors=(), conversation={},
                        pricing={}, callback_data=None, raw={})


@pytest.fixture
def workspace(db):
    locmem.reset()
    tenant = TenantFactory(slug="acme", name="Acme Store")
    agent = UserFactory(email="ana@acme.test", first_name="Ana", last_name="Agent")
    MembershipFactory(tenant=tenant, user=agent, role="agent")
    colleague = UserFactory(email="sam@acme.test", first_name="Sam", last_name="Support")
    MembershipFactory(tenant=tenant, user=colleague, role="agent")
    number = PhoneNumberFactory(tenant=tenant, phone_number_id="5550001", waba_id="waba-1",
                                display_number="15550001111", display_name="Acme Support", messages_per_second=1000)
    MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id="waba-1", name="order_update", language="en",
                           components=[{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped.",
                                        "example": {"body_text": [["Maya", "#10423"]]}}])
    yield {"tenant": tenant, "agent": agent, "colleague": colleague, "number": number}
    locmem.reset()


def thread_url(live_server, conversation) -> str:
    return f"{live_server.url}/t/acme/inbox/{conversation.pk}/"


def test_live_inbox_reply_ticks_template_assignment_and_resolve(page, live_server, workspace):
    number, tenant = workspace["number"], workspace["tenant"]
    with tenant_scope(tenant):
        for i, (wa_id, name, text) in enumerate((("14155550140", "Jonas Weber", "Can I change the address?"),
                                                 ("14155550141", "Aiko Tanaka", "Do you ship to Japan?"))):
            message_receive(phone_number=number, inbound=inbound(f"wamid.OLD{i}", text, wa_id=wa_id, name=name))

    login(page, live_server, "ana@acme.test", "password")
    assert page.url.endswith("/t/acme/inbox/")
    assert page.locator("#conv-list > .conv-row").count() == 2

    # A customer writes: the row appears without a reload.
    with tenant_scope(tenant):
        first = message_receive(phone_number=number, inbound=inbound("wamid.IN1", "Hi! Is my order on its way?"))
    row = page.locator(f"#conv-{first.conversation_id}")
    row.wait_for(timeout=LIVE)
    assert "Is my order on its way?" in row.inner_text()
    assert page.locator("#conv-list > .conv-row").first.get_attribute("id") == f"conv-{first.conversation_id}"
    assert row.locator(".badge").inner_text() == "1"

    # Open it (htmx, URL pushed), then a second message arrives in the open thread.
    row.locator(".conv-link").click()
    page.wait_for_url(f"**/t/acme/inbox/{first.conversation_id}/")
    page.locator("#thread h2", has_text="Maya Patel").wait_for()
    assert page.locator("#composer-input").is_visible()
    with tenant_scope(tenant):
        second = message_receive(phone_number=number, inbound=inbound("wamid.IN2", "It's order #10423 🙏"))
    page.locator(f"#msg-{second.pk}").wait_for(timeout=LIVE)
    assert "order #10423" in page.locator(f"#msg-{second.pk}").inner_text()
    assert page.locator(f"#conv-{first.conversation_id} .badge").count() == 0  # read while open

    # Reply: the row is there at once, the locmem backend got it.
    page.fill("#composer-input", "Hi Maya! It shipped this morning: https://track.example.com/10423")
    page.keyboard.press("Enter")
    reply_row = page.locator("#messages .msg-out").last
    reply_row.wait_for()
    assert "shipped this morning" in reply_row.inner_text()
    assert page.input_value("#composer-input") == ""
    reply = Message.all_tenants.get(direction="outbound", conversation_id=first.conversation_id)
    assert [m.content["body"] for _, m in locmem.outbox][-1].startswith("Hi Maya! It shipped")
    assert reply_row.locator("a[href='https://track.example.com/10423']").count() == 1

    # Delivery reports move the ticks by themselves.
    wamid = Message.all_tenants.get(pk=reply.pk).provider_message_id
    with tenant_scope(tenant):
        message_statuses_apply(phone_number=number, updates=[status(wamid, "delivered")])
    page.locator(f"#msg-{reply.pk} .tick-delivered").wait_for(timeout=LIVE)
    with tenant_scope(tenant):
        message_statuses_apply(phone_number=number, updates=[status(wamid, "read")])
    page.locator(f"#msg-{reply.pk} .tick-read").wait_for(timeout=LIVE)
    assert page.locator(f"#msg-{reply.pk} .tick-delivered").count() == 0
    screenshot(page, "inbox")

    # Assign to me, then resolve: the header, the row and the tabs follow.
    page.click("#assign-menu summary")
    page.click("#assign-menu [data-assign-me]")
    page.locator("#assign-menu summary", has_text="Ana Agent").wait_for()
    page.locator(f"#conv-{first.conversation_id} .avatar-xs[title='Assigned to Ana Agent']").wait_for()
    page.locator("#messages .msg-activity", has_text="Ana Agent self-assigned").wait_for()
    assert Conversation.all_tenants.get(pk=first.conversation_id).assignee == workspace["agent"]

    # The window closes: the composer becomes the template picker on the next poll.
    Conversation.all_tenants.filter(pk=first.conversation_id).update(
        window_expires_at=timezone.now() - timedelta(seconds=1))
    # htmx binds the new composer's controls when it settles (20 ms after the swap), and
    # takes off `htmx-added` just before: a change made before that would go unheard.
    page.locator("#composer[data-mode='template']:not(.htmx-added)").wait_for(timeout=LIVE)
    page.select_option("#template-select", label="order_update · en · Utility")
    page.locator("#template-form input[name='body.1']").wait_for()
    assert page.get_attribute("#template-form input[name='body.1']", "placeholder") == "e.g. Maya"
    page.fill("#template-form input[name='body.1']", "Maya")
    page.fill("#template-form input[name='body.2']", "#10423")
    preview = page.locator(".tpl-bubble").inner_text()
    assert "Hi Maya, your order #10423 has shipped." in preview
    screenshot(page, "inbox-template-picker")
    page.click(".tpl-send")
    template_row = page.locator("#messages .msg-type-template")
    template_row.wait_for()
    assert "Hi Maya, your order #10423 has shipped." in template_row.inner_text()
    sent = Message.all_tenants.get(type="template")
    assert sent.content["components"][0]["parameters"][1] == {"type": "text", "text": "#10423"}

    page.click("#status-main")
    page.locator("#thread-head .status-pill", has_text="Resolved").wait_for()
    page.locator(f"#conv-{first.conversation_id}").wait_for(state="detached")
    assert page.locator(".stab-resolved .count").inner_text() == "1"
    assert Conversation.all_tenants.get(pk=first.conversation_id).status == "resolved"


def test_two_agents_see_each_others_assignments(browser, live_server, workspace):
    number, tenant = workspace["number"], workspace["tenant"]
    with tenant_scope(tenant):
        message = message_receive(phone_number=number, inbound=inbound("wamid.A1", "Hello?"))
    pages = []
    for email in ("ana@acme.test", "sam@acme.test"):
        context = browser.new_context(viewport={"width": 1360, "height": 860})
        tab = context.new_page()
        tab.set_default_timeout(10_000)
        login(tab, live_server, email, "password")
        pages.append(tab)
    ana, sam = pages
    ana.goto(thread_url(live_server, message.conversation))
    ana.click("#assign-menu summary")
    ana.click("#assign-menu [data-assign-me]")
    sam.locator(f"#conv-{message.conversation_id} .avatar-xs[title='Assigned to Ana Agent']").wait_for(timeout=LIVE)
    # Sam opens it and hands it back; Ana sees it in her open thread.
    sam.goto(thread_url(live_server, message.conversation))
    sam.click("#assign-menu summary")
    sam.click("#assign-menu .menu-item-muted")  # Unassign
    ana.locator("#assign-menu summary", has_text="Unassigned").wait_for(timeout=LIVE)
    ana.locator("#messages .msg-activity", has_text="Sam Support unassigned Ana Agent").wait_for(timeout=LIVE)
    for tab in pages:
        tab.context.close()


def test_a_policy_error_shows_under_the_composer_and_keeps_the_text(page, live_server, workspace):
    number, tenant = workspace["number"], workspace["tenant"]
    with tenant_scope(tenant):
        message = message_receive(phone_number=number, inbound=inbound("wamid.P1", "Hello"))
    login(page, live_server, "ana@acme.test", "password")
    page.goto(thread_url(live_server, message.conversation))
    page.route("**/inbox/changes/**", lambda route: route.abort())  # the page does not learn of the change
    Conversation.all_tenants.filter(pk=message.conversation_id).update(window_expires_at=timezone.now())
    page.fill("#composer-input", "Are you still there?")
    page.click("#reply-form .btn-send")
    error = page.locator("#composer-error")
    error.get_by_text("window is closed").wait_for()
    assert page.input_value("#composer-input") == "Are you still there?"
    assert not Message.all_tenants.filter(direction="outbound").exists()


def test_composer_helpers_and_keyboard(page, live_server, workspace):
    number, tenant = workspace["number"], workspace["tenant"]
    CannedResponseFactory(tenant=tenant, shortcut="shipping", content="Orders ship within 24 hours.")
    with tenant_scope(tenant):
        older = message_receive(phone_number=number, inbound=inbound("wamid.K0", "First", wa_id="14155550150",
                                                                     name="Noah Kim"))
        message = message_receive(phone_number=number, inbound=inbound("wamid.K1", "When do you ship?"))
    login(page, live_server, "ana@acme.test", "password")

    # j / k move through the list and open the conversation.
    page.keyboard.press("j")
    page.wait_for_url(f"**/t/acme/inbox/{message.conversation_id}/")
    page.keyboard.press("j")
    page.wait_for_url(f"**/t/acme/inbox/{older.conversation_id}/")
    page.keyboard.press("k")
    page.wait_for_url(f"**/t/acme/inbox/{message.conversation_id}/")
    page.locator("#thread h2", has_text="Maya Patel").wait_for()

    # "c" focuses the composer; "/" opens the canned responses.
    page.keyboard.press("c")
    assert page.evaluate("document.activeElement.id") == "composer-input"
    page.keyboard.type("Hi! /shi")
    page.locator("#canned-menu .canned-opt", has_text="/shipping").wait_for()
    page.keyboard.press("Enter")
    assert page.input_value("#composer-input") == "Hi! Orders ship within 24 hours."
    # An emoji lands at the caret.
    page.click("[data-emoji-toggle]")
    page.click("#emoji-popover [data-emoji='🙏']")
    assert page.input_value("#composer-input").endswith("🙏")
    # Reply to a message: it is quoted.
    page.hover(f"#msg-{message.pk}")
    page.click(f"#msg-{message.pk} .msg-reply")
    assert page.locator("#reply-chip").is_visible() and "When do you ship?" in page.inner_text("#reply-chip")
    page.keyboard.press("Enter")
    quoted = page.locator("#messages .msg-out .quote")
    quoted.wait_for()
    assert "When do you ship?" in quoted.inner_text()
    assert Message.all_tenants.get(direction="outbound").reply_to_id == message.pk
    assert page.locator("#reply-chip").is_hidden()

    # A private note: yellow, never sent.
    sent_before = len(locmem.outbox)
    page.click("#reply-form .ctab-note")
    assert page.is_checked("#reply-form input[name=mode][value=note]")
    page.fill("#composer-input", "Customer asked twice — prioritise")
    page.keyboard.press("Enter")
    page.locator("#messages .msg-note", has_text="prioritise").wait_for()
    assert len(locmem.outbox) == sent_before
    assert page.evaluate("getComputedStyle(document.querySelector('#messages .msg-note .bubble')).backgroundColor") \
        == "rgb(255, 245, 204)"

    # "?" lists the shortcuts, Esc closes them; "e" resolves.
    page.locator("#composer-input").blur()
    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    page.keyboard.press("Escape")
    assert page.locator("#shortcuts").is_hidden()
    page.keyboard.press("e")
    page.locator("#thread-head .status-pill", has_text="Resolved").wait_for()


def test_rich_thread_screenshot_and_media(page, live_server, workspace):
    tenant, number, agent = workspace["tenant"], workspace["number"], workspace["agent"]
    contact = ContactFactory(tenant=tenant, wa_id="14155550101", name="Maya Patel",
                             attributes={"city": "San Francisco", "plan": "pro"}, opt_in_status="opted_in",
                             opt_in_source="checkout")
    with tenant_scope(tenant):
        conversation = build_rich_thread(tenant=tenant, number=number, contact=contact, agent=agent)
        for i, (wa_id, name, text) in enumerate((("14155550102", "Jonas Weber", "Can I change the delivery address?"),
                                                 ("14155550103", "Aiko Tanaka", "Do you ship to Japan?"),
                                                 ("14155550104", "Lucas Oliveira", "The app keeps logging me out"))):
            message_receive(phone_number=number, inbound=inbound(f"wamid.S{i}", text, wa_id=wa_id, name=name))
    login(page, live_server, "ana@acme.test", "password")
    page.set_viewport_size({"width": 1600, "height": 900})
    page.goto(thread_url(live_server, conversation))
    image = page.locator("#messages .media-img img")
    image.wait_for()
    page.wait_for_function("document.querySelector('#messages .media-img img').naturalWidth > 0")
    assert page.locator("#messages .reaction", has_text="🙏").count() == 1
    assert page.locator("#contact-panel").is_visible()
    screenshot(page, "inbox-thread")
    page.evaluate("document.querySelector('#messages-scroll').scrollTop = 0")
    screenshot(page, "inbox-thread-top")


def test_canned_responses_and_labels_pages(page, live_server, workspace):
    tenant = workspace["tenant"]
    owner = UserFactory(email="owner@acme.test")
    MembershipFactory(tenant=tenant, user=owner, role="owner")
    LabelFactory(tenant=tenant, name="billing", color="#b7791f")
    login(page, live_server, "owner@acme.test", "password")
    page.goto(f"{live_server.url}/t/acme/inbox/canned/")
    page.fill("#canned-form input[name=shortcut]", "thanks")
    page.fill("#canned-form textarea[name=content]", "Thank you! Anything else?")
    page.click("#canned-form button[type=submit]")
    page.locator("#canned-list .shortcut", has_text="/thanks").wait_for()
    assert page.input_value("#canned-form input[name=shortcut]") == ""
    page.fill("#canned-form input[name=shortcut]", "thanks")
    page.fill("#canned-form textarea[name=content]", "Again")
    page.click("#canned-form button[type=submit]")
    page.locator("#canned-form-error", has_text="already used").wait_for()
    canned = CannedResponse.all_tenants.get()
    page.click(f"#canned-{canned.pk} button:has-text('Edit')")
    page.fill(f"#canned-{canned.pk} textarea", "Thanks a lot!")
    page.click(f"#canned-{canned.pk} button:has-text('Save')")
    page.locator(f"#canned-{canned.pk} .canned-content", has_text="Thanks a lot!").wait_for()
    screenshot(page, "inbox-canned")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#canned-{canned.pk} button:has-text('Delete')")
    page.locator(f"#canned-{canned.pk}").wait_for(state="detached")
    assert not CannedResponse.all_tenants.exists()

    page.goto(f"{live_server.url}/t/acme/inbox/labels/")
    page.fill("#label-form input[name=name]", "shipping")
    page.click("#label-form .swatches label:nth-child(3)")
    page.click("#label-form button[type=submit]")
    page.locator("#label-list .lbl", has_text="shipping").wait_for()
    assert Label.all_tenants.get(name="shipping").color == "#b7791f"
    screenshot(page, "inbox-labels")
