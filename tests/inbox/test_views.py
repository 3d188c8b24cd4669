from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.contacts.models import Contact
from apps.conversations.inbox_selectors import Cursor, timestamp_micros
from apps.conversations.models import CannedResponse, Conversation, Label, Media, Message
from apps.conversations.services import message_receive
from apps.conversations.templatetags.inbox import day_key, day_label
from apps.core.templatetags.parley import phone
from apps.providers.backends import locmem
from apps.providers.events import InboundMessage
from tests.browser.inbox_scenario import build_rich_thread, png_bytes
from tests.factories import (
    CannedResponseFactory,
    ContactFactory,
    ConversationFactory,
    ConversationLabelFactory,
    LabelFactory,
    MediaFactory,
    MembershipFactory,
    MessageFactory,
    MessageTemplateFactory,
    PhoneNumberFactory,
    TenantFactory,
    UserFactory,
)

from .conftest import HTMX, htmx

pytestmark = pytest.mark.django_db


def body(response) -> str:
    return response.content.decode()


def ids(html: str, prefix: str) -> list[int]:
    return [int(n) for n in re.findall(rf'id="{prefix}-(\d+)"', html)]


def inbound(wamid: str, text: str, wa_id: str = "14155550100", at=None) -> InboundMessage:
    return InboundMessage(provider="meta_cloud", route_key="5550001", wa_id=wa_id, profile_name="Maya",
                          provider_message_id=wamid, timestamp=at or timezone.now(), type="text",
                          content={"body": text}, text=text, context_id=None, media=None, errors=(), raw={})


# --- the list -----------------------------------------------------------------------------

def test_the_list_shows_name_preview_time_unread_assignee_labels_and_window(agent_client, tenant, conversation, agent):
    label = LabelFactory(tenant=tenant, name="billing", color="#b7791f")
    ConversationLabelFactory(conversation=conversation, label=label)
    Conversation.all_tenants.filter(pk=conversation.pk).update(assignee=agent)
    html = body(agent_client.get("/t/acme/inbox/"))
    row = html[html.index(f'id="conv-{conversation.pk}"'):]
    row = row[:row.index("</li>")]
    assert "Maya Patel" in row and "Is my order on its way?" in row
    assert 'class="badge badge-brand"' in row and ">2<" in row
    assert "billing" in row and "--c: #b7791f" in row
    assert 'title="Assigned to Ana Agent"' in row
    assert "wdot-open" in row and "Window closes in 2 h" in row


def test_views_statuses_and_counts(agent_client, tenant, number, agent):
    mine = ConversationFactory(tenant=tenant, phone_number=number, assignee=agent)
    unassigned = ConversationFactory(tenant=tenant, phone_number=number)
    pending = ConversationFactory(tenant=tenant, phone_number=number, status="pending")
    ConversationFactory(tenant=tenant, phone_number=number, status="resolved", assignee=agent)
    assert set(ids(body(agent_client.get("/t/acme/inbox/")), "conv")) == {mine.pk, unassigned.pk}
    assert ids(body(agent_client.get("/t/acme/inbox/?view=mine")), "conv") == [mine.pk]
    assert ids(body(agent_client.get("/t/acme/inbox/?view=unassigned")), "conv") == [unassigned.pk]
    assert ids(body(agent_client.get("/t/acme/inbox/?status=pending")), "conv") == [pending.pk]
    lazy = body(agent_client.get("/t/acme/inbox/?view=mine"))
    assert 'hx-get="/t/acme/inbox/?view=mine&amp;counts=1" hx-trigger="load"' in lazy
    html = body(agent_client.get("/t/acme/inbox/?view=mine&counts=1", **htmx("inbox-tabs")))
    assert html.lstrip().startswith('<div id="inbox-tabs"') and "hx-trigger" not in html
    counts = dict(re.findall(r'value="(\w+)"[^>]*><span>\w+</span><b class="count">(\d+)</b>', html))
    # Views count the selected status; statuses count the selected view.
    assert counts == {"mine": "1", "unassigned": "1", "all": "2", "open": "1", "pending": "0", "resolved": "1"}


def test_filters_by_number_label_and_search(agent_client, tenant, number, conversation):
    other_number = PhoneNumberFactory(tenant=tenant)
    elsewhere = ConversationFactory(tenant=tenant, phone_number=other_number,
                                    contact=ContactFactory(tenant=tenant, name="Jonas Weber", wa_id="4915112345678"))
    label = LabelFactory(tenant=tenant)
    ConversationLabelFactory(conversation=elsewhere, label=label)
    MessageFactory(conversation=elsewhere, direction="inbound", text_preview="Where is the invoice?")
    assert ids(body(agent_client.get(f"/t/acme/inbox/?number={number.pk}")), "conv") == [conversation.pk]
    assert ids(body(agent_client.get(f"/t/acme/inbox/?label={label.pk}")), "conv") == [elsewhere.pk]
    for q in ("jonas", "+49 151 12345678", "invoice"):
        assert ids(body(agent_client.get("/t/acme/inbox/", {"q": q})), "conv") == [elsewhere.pk], q
    assert ids(body(agent_client.get("/t/acme/inbox/", {"q": "order on its way"})), "conv") == [conversation.pk]
    empty = body(agent_client.get("/t/acme/inbox/", {"q": "<nothing>"}))
    assert "Nothing matches “&lt;nothing&gt;”" in empty


def test_the_filter_form_swaps_only_the_list_body(agent_client, conversation):
    html = body(agent_client.get("/t/acme/inbox/?status=open", **htmx("list-body")))
    assert html.lstrip().startswith('<div id="list-body"') and "<html" not in html
    assert f'id="conv-{conversation.pk}"' in html


def test_keyset_pages_have_no_gaps_and_no_duplicates(agent_client, tenant, number):
    now = timezone.now()
    created = [ConversationFactory(tenant=tenant, phone_number=number, last_message_at=now - timedelta(minutes=i % 7))
               for i in range(57)]
    first = body(agent_client.get("/t/acme/inbox/"))
    page_one = ids(first, "conv")
    assert len(page_one) == 50
    cursor = re.search(r"cursor=([\d_]+)", first).group(1)
    assert 'hx-trigger="intersect once"' in first
    second = body(agent_client.get(f"/t/acme/inbox/?cursor={cursor}", **HTMX))
    page_two = ids(second, "conv")
    assert "cursor=" not in second and "<html" not in second
    assert sorted(page_one + page_two) == sorted(c.pk for c in created)
    expected = sorted(created, key=lambda c: (c.last_message_at, c.pk), reverse=True)
    assert page_one + page_two == [c.pk for c in expected]


@pytest.mark.parametrize("scan_max", [5000, 10])  # listed from the label's rows, or by the recent-first walk
def test_a_labels_pages_have_no_gaps_and_keep_the_other_filters(agent_client, tenant, number, monkeypatch, scan_max):
    from apps.conversations import inbox_selectors

    monkeypatch.setattr(inbox_selectors, "LABEL_SCAN_MAX", scan_max)
    now = timezone.now()
    label = LabelFactory(tenant=tenant)
    labelled = [ConversationFactory(tenant=tenant, phone_number=number, last_message_at=now - timedelta(minutes=i % 5),
                                    status="resolved" if i % 4 == 0 else "open") for i in range(70)]
    for conversation in labelled:
        ConversationLabelFactory(conversation=conversation, label=label)
    ConversationFactory(tenant=tenant, phone_number=number, last_message_at=now)  # open, not labelled
    first = body(agent_client.get(f"/t/acme/inbox/?label={label.pk}"))
    cursor = re.search(r"cursor=([\d_]+)", first).group(1)
    second = body(agent_client.get(f"/t/acme/inbox/?label={label.pk}&cursor={cursor}", **HTMX))
    expected = sorted((c for c in labelled if c.status == "open"), key=lambda c: (c.last_message_at, c.pk),
                      reverse=True)
    assert ids(first, "conv") + ids(second, "conv") == [c.pk for c in expected]
    resolved = ids(body(agent_client.get(f"/t/acme/inbox/?label={label.pk}&status=resolved")), "conv")
    assert sorted(resolved) == sorted(c.pk for c in labelled if c.status == "resolved")


def test_a_cursor_round_trips():
    at = timezone.now()
    assert Cursor.decode(Cursor(at=at, id=42).encode()) == Cursor(at=at, id=42)
    assert Cursor.decode("junk") is None and Cursor.decode("1_2_3") is None


# --- the thread ---------------------------------------------------------------------------

def test_a_thread_is_a_full_page_or_a_fragment_and_opening_it_marks_it_read(agent_client, conversation):
    url = f"/t/acme/inbox/{conversation.pk}/"
    full = body(agent_client.get(url))
    assert "<html" in full and 'id="conv-list"' in full and 'id="thread"' in full and 'id="poller"' in full
    Conversation.all_tenants.filter(pk=conversation.pk).update(unread_count=3)
    fragment = body(agent_client.get(url, **htmx("thread-pane")))
    assert "<html" not in fragment and 'id="conv-list"' not in fragment
    assert fragment.lstrip().startswith('<div class="thread" id="thread"')
    # Reading is a write: the thread asks for it once it is shown, the GET itself changes nothing.
    assert Conversation.all_tenants.get(pk=conversation.pk).unread_count == 3
    assert f'hx-post="/t/acme/inbox/{conversation.pk}/read/" hx-trigger="load"' in fragment
    read = body(agent_client.post(f"/t/acme/inbox/{conversation.pk}/read/", **HTMX))
    assert '<ul id="conv-stage" hx-swap-oob="beforeend">' in read and 'data-match="update"' in read
    assert 'class="badge' not in read
    assert Conversation.all_tenants.get(pk=conversation.pk).unread_count == 0
    assert agent_client.post(f"/t/acme/inbox/{conversation.pk}/read/", **HTMX).status_code == 204


def test_a_conversation_opened_by_its_address_loads_the_list_in_its_own_request(agent_client, tenant, number,
                                                                                  conversation):
    other = ConversationFactory(tenant=tenant, phone_number=number, last_message_at=timezone.now())
    full = body(agent_client.get(f"/t/acme/inbox/{conversation.pk}/?view=all"))
    assert 'id="thread"' in full and ids(full, "conv") == []
    lazy = re.search(r'<div id="list-body" class="list-body" hx-get="([^"]+)" hx-trigger="load"', full)
    url = lazy.group(1).replace("&amp;", "&")
    assert url == f"/t/acme/inbox/?active={conversation.pk}"
    rows = body(agent_client.get(url, **htmx("list-body")))
    assert rows.lstrip().startswith('<div id="list-body"') and ids(rows, "conv") == [other.pk, conversation.pk]
    assert re.search(rf'id="conv-{conversation.pk}" class="conv-row is-active', rows)
    pending = body(agent_client.get(f"/t/acme/inbox/{conversation.pk}/?status=pending"))
    assert 'hx-get="/t/acme/inbox/?status=pending&amp;active=' in pending


def test_a_history_restore_gets_the_whole_page(agent_client, conversation):
    response = agent_client.get(f"/t/acme/inbox/{conversation.pk}/", HTTP_HX_REQUEST="true",
                                HTTP_HX_HISTORY_RESTORE_REQUEST="true", HTTP_HX_TARGET="thread-pane")
    assert "<html" in body(response)
    assert "HX-Request" in response["Vary"]


def test_every_message_type_renders(agent_client, tenant, number, contact, agent):
    conversation = build_rich_thread(tenant=tenant, number=number, contact=contact, agent=agent)
    html = body(agent_client.get(f"/t/acme/inbox/{conversation.pk}/"))
    photo = Media.all_tenants.get(filename="parcel.png")
    invoice = Media.all_tenants.get(filename="invoice-10423.pdf")
    assert f'src="/t/acme/inbox/media/{photo.pk}/"' in html  # the image, through the authenticated view
    assert f'href="/t/acme/inbox/media/{invoice.pk}/?download=1"' in html and "invoice-10423.pdf" in html
    assert "https://www.openstreetmap.org/?mlat=37.779300&amp;mlon=-122.419300" in html and "Open map" in html
    assert "Yes, that&#x27;s fine" in html and "Selected" in html  # the buttons and the customer's choice
    assert "Template · order_update" in html and "Hi Maya, your order #10423 has shipped" in html
    assert 'class="reaction"' in html and "🙏" in html  # shown on the message it reacts to
    assert 'class="msg msg-note' in html and "Private note" in html
    assert 'class="msg msg-activity"' in html and "self-assigned this conversation" in html
    assert 'class="quote quote-inbound"' in html  # the reply quotes the first message
    assert "tick tick-read" in html and "tick tick-delivered" in html and "tick tick-failed" in html
    assert "Message undeliverable" in html and "could not be reached" in html and "error 131026" in html
    days = re.findall(r'<div class="day-sep" data-day="([\d-]+)"><span>([^<]+)</span>', html)
    first, last = (Message.all_tenants.filter(conversation=conversation).order_by(order).first()
                   for order in ("id", "-id"))
    assert days[0] == (day_key(first.occurred_at), day_label(first.occurred_at))
    assert days[-1] == (day_key(last.occurred_at), day_label(last.occurred_at)) and len(days) >= 2
    assert 'href="https://track.example.com/10423"' in html and "<strong>Great</strong>" in html


def test_every_message_type_renders_from_the_rows_loaded(agent_client, tenant, number, contact, agent):
    """The thread loads only the fields a row shows: a field left out would cost a query per
    message. The rich thread runs the queries of a plain one, plus the template bodies'."""
    rich = build_rich_thread(tenant=tenant, number=number, contact=contact, agent=agent)
    plain = ConversationFactory(tenant=tenant, phone_number=number,
                                window_expires_at=rich.window_expires_at)  # the same composer
    MessageFactory(conversation=plain, direction="inbound", status="received", content={"body": "Hi"},
                   text_preview="Hi")
    counts = {}
    for name, conversation in (("rich", rich), ("plain", plain)):
        agent_client.get(f"/t/acme/inbox/{conversation.pk}/", **htmx("thread-pane"))  # marks it read
        with CaptureQueriesContext(connection) as captured:
            agent_client.get(f"/t/acme/inbox/{conversation.pk}/", **htmx("thread-pane"))
        counts[name] = len(captured.captured_queries)
    assert counts["rich"] == counts["plain"] + 1


@pytest.mark.parametrize("status,tick", [("queued", "tick-queued"), ("sending", "tick-sending"),
                                         ("accepted", "tick-accepted"), ("sent", "tick-sent"),
                                         ("delivered", "tick-delivered"), ("read", "tick-read"),
                                         ("failed", "tick-failed")])
def test_ticks(agent_client, conversation, status, tick):
    message = MessageFactory(conversation=conversation, status=status)
    html = body(agent_client.get(f"/t/acme/inbox/{conversation.pk}/"))
    row = html[html.index(f'id="msg-{message.pk}"'):]
    assert f'class="tick {tick}"' in row[:row.index("</div>\n  </div>")]


def test_user_text_is_escaped_and_only_web_links_become_links(agent_client, conversation, tenant):
    contact = Contact.all_tenants.get(pk=conversation.contact_id)
    contact.name = '<img src=x onerror="alert(1)">'
    contact.save()
    MessageFactory(conversation=conversation, direction="inbound", status="received",
                   content={"body": '<script>alert("x")</script> javascript:alert(1) www.example.com/a_b_c'},
                   text_preview="<script>")
    LabelFactory(tenant=tenant, name="<b>x</b>", color="red;x:url(//e)")  # fits the column
    html = body(agent_client.get(f"/t/acme/inbox/{conversation.pk}/"))
    assert "<script>alert" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert '<img src=x onerror' not in html and "&lt;img src=x onerror=" in html
    assert 'href="javascript' not in html
    assert '<a href="https://www.example.com/a_b_c"' in html
    assert "<b>x</b>" not in html and "url(//e)" not in html


# --- media --------------------------------------------------------------------------------

def test_media_is_served_to_members_only_and_never_sniffed(agent_client, tenant):
    media = MediaFactory(tenant=tenant, status="ready", mime_type="image/png", filename="parcel.png")
    media.file.save("parcel.png", ContentFile(png_bytes(4, 4)), save=True)
    url = f"/t/acme/inbox/media/{media.pk}/"
    response = agent_client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff" and "inline" in response["Content-Disposition"]
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    assert "attachment" in agent_client.get(url + "?download=1")["Content-Disposition"]
    assert Client().get(url).status_code == 302  # to the login page
    outsider = Client()
    outsider.force_login(MembershipFactory(tenant=TenantFactory(slug="globex")).user)
    assert outsider.get(url).status_code == 404
    assert outsider.get(f"/t/globex/inbox/media/{media.pk}/").status_code == 404


def test_risky_files_are_downloads_and_missing_files_answer_no_content(agent_client, tenant):
    page = MediaFactory(tenant=tenant, status="ready", mime_type="text/html", filename="page.html")
    page.file.save("page.html", ContentFile(b"<script>alert(1)</script>"), save=True)
    response = agent_client.get(f"/t/acme/inbox/media/{page.pk}/")
    assert "attachment" in response["Content-Disposition"] and "sandbox" in response["Content-Security-Policy"]
    pending = MediaFactory(tenant=tenant)
    assert agent_client.get(f"/t/acme/inbox/media/{pending.pk}/").status_code == 204


# --- composing ----------------------------------------------------------------------------

def test_sending_answers_with_the_queued_row_at_once(agent_client, conversation):
    response = agent_client.post(f"/t/acme/inbox/{conversation.pk}/send/",
                                 {"body": "On its way!", "composer": "reply", "conversation": conversation.pk},
                                 **HTMX)
    html = body(response)
    message = Message.all_tenants.get(direction="outbound")
    assert "parley:sent" in response["HX-Trigger"]
    assert '<div id="msg-stage" hx-swap-oob="beforeend">' in html and f'id="msg-{message.pk}"' in html
    assert "tick tick-queued" in html and "On its way!" in html
    assert 'id="composer"' not in html  # the composer is left alone
    assert [m.content["body"] for _, m in locmem.outbox] == []  # sent after commit, by the task


def test_a_policy_error_is_shown_under_the_composer(agent_client, conversation):
    Conversation.all_tenants.filter(pk=conversation.pk).update(window_expires_at=timezone.now() - timedelta(hours=1))
    response = agent_client.post(f"/t/acme/inbox/{conversation.pk}/send/", {"body": "Hello?"}, **HTMX)
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#composer-error" and response["HX-Reswap"] == "innerHTML"
    assert "24-hour customer service window is closed" in body(response)
    assert "HX-Trigger" not in response  # the composer keeps its text
    assert not Message.all_tenants.filter(direction="outbound").exists()


def test_an_attachment_is_uploaded_and_sent(agent_client, conversation):
    upload = SimpleUploadedFile("parcel.png", png_bytes(8, 8), content_type="image/png")
    response = agent_client.post(f"/t/acme/inbox/{conversation.pk}/send/",
                                 {"body": "Label photo", "attachment": upload}, **HTMX)
    assert "parley:sent" in response["HX-Trigger"]
    message = Message.all_tenants.get(direction="outbound")
    assert message.type == "image" and f'src="/t/acme/inbox/media/{message.media_id}/"' in body(response)


def test_a_private_note_is_yellow_and_never_sent(agent_client, conversation):
    response = agent_client.post(f"/t/acme/inbox/{conversation.pk}/send/", {"body": "VIP", "mode": "note"}, **HTMX)
    assert 'class="msg msg-note' in body(response) and "Private note" in body(response)
    assert Message.all_tenants.get(type="note").direction == "internal"
    assert locmem.outbox == []


def test_replying_to_a_message_quotes_it(agent_client, conversation):
    quoted = Message.all_tenants.filter(conversation=conversation).order_by("id").first()
    html = body(agent_client.post(f"/t/acme/inbox/{conversation.pk}/send/",
                                  {"body": "Yes", "reply_to": quoted.pk}, **HTMX))
    assert f'href="#msg-{quoted.pk}"' in html and "Hi there" in html


def test_the_template_picker_shows_fields_and_a_live_preview_and_sends(agent_client, tenant, number, conversation):
    Conversation.all_tenants.filter(pk=conversation.pk).update(window_expires_at=timezone.now() - timedelta(hours=1))
    template = MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id="waba-1", name="order_update",
                                      components=[{"type": "BODY", "text": "Hi {{1}}, order {{2}} <b>shipped</b>."}])
    MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id="waba-1", name="draft", status="PENDING")
    page = body(agent_client.get(f"/t/acme/inbox/{conversation.pk}/"))
    assert 'data-mode="template"' in page and "The 24-hour window is closed." in page
    assert "order_update · en" in page and "draft" not in page
    form = body(agent_client.get(f"/t/acme/inbox/{conversation.pk}/template/?template={template.pk}", **HTMX))
    assert 'name="body.1"' in form and 'name="body.2"' in form
    assert '<span class="var" data-var="body.1" data-empty="{{1}}">{{1}}</span>' in form
    assert "&lt;b&gt;shipped&lt;/b&gt;" in form
    missing = agent_client.post(f"/t/acme/inbox/{conversation.pk}/template/",
                                {"template": template.pk, "body.1": "Maya"}, **HTMX)
    assert missing["HX-Retarget"] == "#template-error" and "{{2}}" in body(missing)
    sent = agent_client.post(f"/t/acme/inbox/{conversation.pk}/template/",
                             {"template": template.pk, "body.1": "Maya", "body.2": "#1"}, **HTMX)
    assert "parley:sent" in sent["HX-Trigger"] and "Template · order_update" in body(sent)
    assert Message.all_tenants.get(type="template").text_preview == "Hi Maya, order #1 <b>shipped</b>."


# --- actions ------------------------------------------------------------------------------

def test_assign_answers_with_the_new_head_row_and_activity(agent_client, conversation, agent, owner):
    response = agent_client.post(f"/t/acme/inbox/{conversation.pk}/assign/",
                                 {"assignee": owner.pk, "view": "unassigned", "conversation": conversation.pk,
                                  "composer": "reply"}, **HTMX)
    html = body(response)
    assert Conversation.all_tenants.get(pk=conversation.pk).assignee == owner
    assert '<header id="thread-head" class="thread-head" hx-swap-oob="true">' in html and "owner@acme.test" in html
    assert f'<li id="conv-{conversation.pk}" data-id="{conversation.pk}" data-match="0"' in html  # leaves "unassigned"
    assert "Ana Agent assigned this conversation to owner@acme.test" in html
    me = agent_client.post(f"/t/acme/inbox/{conversation.pk}/assign/", {"assignee": "me"}, **HTMX)
    assert me.status_code == 200 and Conversation.all_tenants.get(pk=conversation.pk).assignee == agent


def test_assigning_to_someone_without_inbox_access_is_explained(agent_client, tenant, conversation):
    marketer = MembershipFactory(tenant=tenant, role="marketer").user
    response = agent_client.post(f"/t/acme/inbox/{conversation.pk}/assign/", {"assignee": marketer.pk}, **HTMX)
    assert response["HX-Retarget"] == "#thread-error" and "inbox access" in body(response)
    stranger = UserFactory()
    response = agent_client.post(f"/t/acme/inbox/{conversation.pk}/assign/", {"assignee": stranger.pk}, **HTMX)
    assert "inbox access" in body(response)


def test_status_labels_unread_and_opt_in(agent_client, tenant, conversation):
    url = f"/t/acme/inbox/{conversation.pk}"
    html = body(agent_client.post(f"{url}/status/", {"to": "resolved", "status": "open"}, **HTMX))
    assert Conversation.all_tenants.get(pk=conversation.pk).status == "resolved" and "Reopen" in html
    assert "resolved the conversation" in html
    bad = agent_client.post(f"{url}/status/", {"to": "nope"}, **HTMX)
    assert bad["HX-Retarget"] == "#thread-error"
    label = LabelFactory(tenant=tenant, name="vip")
    html = body(agent_client.post(f"{url}/labels/{label.pk}/", **HTMX))
    assert 'aria-pressed="true"' in html and Conversation.all_tenants.get(pk=conversation.pk).labels.count() == 1
    response = agent_client.post(f"{url}/unread/", **HTMX)
    assert Conversation.all_tenants.get(pk=conversation.pk).unread_count >= 1
    assert "Select a conversation" in body(response) and response["HX-Push-Url"] == "/t/acme/inbox/"
    html = body(agent_client.post(f"{url}/opt-in/", {"opted_in": "0", "composer": "reply"}, **HTMX))
    assert Contact.all_tenants.get(pk=conversation.contact_id).opt_in_status == "opted_out"
    assert 'data-mode="opted_out"' in html and 'name="composer" value="opted_out"' in html


# --- live updates -------------------------------------------------------------------------

def test_nothing_changed_is_204(agent_client, conversation):
    Conversation.all_tenants.update(updated_at=timezone.now() - timedelta(minutes=5))
    Message.all_tenants.update(updated_at=timezone.now() - timedelta(minutes=5))
    since = timestamp_micros(timezone.now())
    response = agent_client.get(f"/t/acme/inbox/changes/?since={since}", **HTMX)
    assert response.status_code == 204
    response = agent_client.get(f"/t/acme/inbox/changes/?since={since}&conversation={conversation.pk}&composer=reply",
                                **HTMX)
    assert response.status_code == 204


def test_an_inbound_message_comes_as_out_of_band_rows(agent_client, tenant, number, conversation):
    Conversation.all_tenants.update(updated_at=timezone.now() - timedelta(minutes=5), unread_count=0)
    Message.all_tenants.update(updated_at=timezone.now() - timedelta(minutes=5))
    since = timestamp_micros(timezone.now())
    message = message_receive(phone_number=number, inbound=inbound("wamid.NEW", "Any update?"))
    html = body(agent_client.get(f"/t/acme/inbox/changes/?since={since}&conversation={conversation.pk}"
                                 f"&composer=reply&from=1", **HTMX))
    assert '<div id="poller"' in html and 'hx-swap-oob="true"' in html
    assert '<ul id="conv-stage" hx-swap-oob="beforeend">' in html and f'id="conv-{conversation.pk}"' in html
    assert f'id="msg-{message.pk}"' in html and "Any update?" in html
    assert 'id="inbox-tabs" class="inbox-tabs" hx-swap-oob="true"' in html
    assert 'id="composer"' not in html  # never reset while its mode holds
    # The agent has it open: what arrived is read.
    assert Conversation.all_tenants.get(pk=conversation.pk).unread_count == 0


def test_a_status_update_sends_the_changed_row_only(agent_client, tenant, number, conversation):
    message = MessageFactory(conversation=conversation, status="accepted", provider_message_id="wamid.OUT")
    Conversation.all_tenants.update(updated_at=timezone.now() - timedelta(minutes=5))
    Message.all_tenants.update(updated_at=timezone.now() - timedelta(minutes=5))
    since = timestamp_micros(timezone.now())
    Message.all_tenants.filter(pk=message.pk).update(status="read", read_at=timezone.now(), updated_at=timezone.now())
    html = body(agent_client.get(f"/t/acme/inbox/changes/?since={since}&conversation={conversation.pk}"
                                 f"&composer=reply", **HTMX))
    assert ids(html, "msg") == [message.pk] and "tick tick-read" in html
    assert "conv-stage" not in html and "thread-head" not in html


def test_a_window_that_closed_swaps_the_composer_for_the_template_picker(agent_client, conversation):
    Conversation.all_tenants.update(updated_at=timezone.now() - timedelta(minutes=5),
                                    window_expires_at=timezone.now() - timedelta(seconds=1))
    Message.all_tenants.update(updated_at=timezone.now() - timedelta(minutes=5))
    since = timestamp_micros(timezone.now())
    html = body(agent_client.get(f"/t/acme/inbox/changes/?since={since}&conversation={conversation.pk}"
                                 f"&composer=reply", **HTMX))
    assert 'id="composer" class="composer composer-template" data-mode="template" hx-swap-oob="true"' in html
    assert 'name="composer" value="template"' in html


def test_another_agents_assignment_reaches_my_list(client, tenant, conversation, agent, owner):
    client.force_login(owner)
    Conversation.all_tenants.update(updated_at=timezone.now() - timedelta(minutes=5))
    since = timestamp_micros(timezone.now())
    agent_client = Client()
    agent_client.force_login(agent)
    agent_client.post(f"/t/acme/inbox/{conversation.pk}/assign/", {"assignee": "me"}, **HTMX)
    html = body(client.get(f"/t/acme/inbox/changes/?since={since}", **HTMX))
    assert f'id="conv-{conversation.pk}"' in html and 'title="Assigned to Ana Agent"' in html


# --- canned responses and labels pages ----------------------------------------------------

def test_canned_responses_crud_for_admins(member_client, tenant):
    response = member_client.post("/t/acme/inbox/canned/", {"shortcut": "hello", "content": "Hi! <3"}, **HTMX)
    assert "parley:saved" in response["HX-Trigger"] and "/hello" in body(response) and "Hi! &lt;3" in body(response)
    canned = CannedResponse.all_tenants.get()
    duplicate = member_client.post("/t/acme/inbox/canned/", {"shortcut": "hello", "content": "x"}, **HTMX)
    assert duplicate["HX-Retarget"] == "#canned-form-error" and "already used" in body(duplicate)
    form = body(member_client.get(f"/t/acme/inbox/canned/{canned.pk}/", **HTMX))
    assert '<form class="inline-edit"' in form
    member_client.post(f"/t/acme/inbox/canned/{canned.pk}/", {"shortcut": "hi", "content": "Hello"}, **HTMX)
    assert CannedResponse.all_tenants.get().shortcut == "hi"
    assert member_client.post(f"/t/acme/inbox/canned/{canned.pk}/delete/", **HTMX).status_code == 200
    assert not CannedResponse.all_tenants.exists()
    page = body(member_client.get("/t/acme/inbox/canned/"))
    assert "No canned responses yet" in page and "New canned response" in page


def test_agents_use_canned_responses_and_labels_but_do_not_manage_them(agent_client, tenant):
    canned = CannedResponseFactory(tenant=tenant, shortcut="shipping", content="Ships in 24 h")
    label = LabelFactory(tenant=tenant)
    assert "/shipping" in body(agent_client.get("/t/acme/inbox/canned/"))
    suggestions = body(agent_client.get("/t/acme/inbox/canned/?suggest=shi", **HTMX))
    assert 'data-content="Ships in 24 h"' in suggestions
    assert "No canned response matches" in body(agent_client.get("/t/acme/inbox/canned/?suggest=zzz", **HTMX))
    for url, data in (("/t/acme/inbox/canned/", {"shortcut": "x", "content": "y"}),
                      (f"/t/acme/inbox/canned/{canned.pk}/", {"shortcut": "x", "content": "y"}),
                      (f"/t/acme/inbox/canned/{canned.pk}/delete/", {}),
                      ("/t/acme/inbox/labels/", {"name": "x"}),
                      (f"/t/acme/inbox/labels/{label.pk}/", {"name": "x"}),
                      (f"/t/acme/inbox/labels/{label.pk}/delete/", {})):
        assert agent_client.post(url, data, **HTMX).status_code == 403, url
    assert CannedResponse.all_tenants.count() == 1 and Label.all_tenants.count() == 1
    assert "New label" not in body(agent_client.get("/t/acme/inbox/labels/"))


def test_labels_crud(member_client, tenant):
    response = member_client.post("/t/acme/inbox/labels/", {"name": "billing", "color": "#b7791f"}, **HTMX)
    assert "billing" in body(response) and "parley:saved" in response["HX-Trigger"]
    label = Label.all_tenants.get()
    bad = member_client.post(f"/t/acme/inbox/labels/{label.pk}/", {"name": "", "color": "#b7791f"}, **HTMX)
    assert "Give the label a name" in body(bad)
    member_client.post(f"/t/acme/inbox/labels/{label.pk}/", {"name": "invoices", "color": "#c93b3b"}, **HTMX)
    assert Label.all_tenants.get().name == "invoices"
    member_client.post(f"/t/acme/inbox/labels/{label.pk}/delete/", **HTMX)
    assert not Label.all_tenants.exists()


def test_the_pages_work_without_htmx(member_client):
    response = member_client.post("/t/acme/inbox/canned/", {"shortcut": "hi", "content": "Hello"})
    assert response.status_code == 200 and "/hi" in body(response)
    response = member_client.post("/t/acme/inbox/labels/", {"name": "", "color": ""})
    assert "Give the label a name" in body(response)


# --- access -------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["marketer", "developer"])
def test_roles_without_the_inbox_get_403_everywhere_in_it(tenant, conversation, role):
    user = MembershipFactory(tenant=tenant, role=role).user
    client = Client()
    client.force_login(user)
    label = LabelFactory(tenant=tenant)
    for url in ("/t/acme/inbox/", f"/t/acme/inbox/{conversation.pk}/", "/t/acme/inbox/changes/",
                "/t/acme/inbox/canned/", "/t/acme/inbox/labels/", f"/t/acme/inbox/media/{MediaFactory(tenant=tenant).pk}/"):
        assert client.get(url).status_code == 403, url
    for url in (f"/t/acme/inbox/{conversation.pk}/send/", f"/t/acme/inbox/{conversation.pk}/assign/",
                f"/t/acme/inbox/{conversation.pk}/status/", f"/t/acme/inbox/{conversation.pk}/labels/{label.pk}/"):
        assert client.post(url, {"body": "x", "to": "resolved"}).status_code == 403, url
    assert not Message.all_tenants.filter(direction="outbound").exists()


def test_another_tenants_objects_are_404_on_every_inbox_url(agent_client, tenant):
    other = TenantFactory(slug="globex")
    theirs = ConversationFactory(tenant=other)
    label = LabelFactory(tenant=other)
    canned = CannedResponseFactory(tenant=other)
    media = MediaFactory(tenant=other, status="ready")
    mine = ConversationFactory(tenant=tenant)
    own_label = LabelFactory(tenant=tenant)
    gets = [f"/t/acme/inbox/{theirs.pk}/", f"/t/acme/inbox/{theirs.pk}/template/", f"/t/acme/inbox/media/{media.pk}/",
            f"/t/acme/inbox/canned/{canned.pk}/", f"/t/acme/inbox/labels/{label.pk}/", "/t/globex/inbox/"]
    posts = [f"/t/acme/inbox/{theirs.pk}/{action}/" for action in ("send", "assign", "status", "read", "unread",
                                                                    "opt-in")]
    posts += [f"/t/acme/inbox/{mine.pk}/labels/{label.pk}/", f"/t/acme/inbox/{theirs.pk}/labels/{own_label.pk}/",
              f"/t/acme/inbox/canned/{canned.pk}/delete/", f"/t/acme/inbox/labels/{label.pk}/delete/"]
    for url in gets:
        assert agent_client.get(url).status_code == 404, url
    for url in posts:
        assert agent_client.post(url, {"body": "x", "to": "resolved", "assignee": "me"}).status_code == 404, url
    # The poll ignores a conversation it may not see.
    since = timestamp_micros(timezone.now() - timedelta(hours=1))
    html = body(agent_client.get(f"/t/acme/inbox/changes/?since={since}&conversation={theirs.pk}", **HTMX))
    assert f"conv-{theirs.pk}" not in html and "thread-head" not in html


# --- queries ------------------------------------------------------------------------------

def count_queries(client: Client, url: str, **headers) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    assert response.status_code == 200
    return len(captured)


def test_the_list_runs_the_same_queries_for_10_or_50_conversations(agent_client, tenant, number,
                                                                   django_assert_max_num_queries):
    labels = [LabelFactory(tenant=tenant) for _ in range(3)]
    users = [MembershipFactory(tenant=tenant, role="agent").user for _ in range(3)]

    def add(n):
        for i in range(n):
            conversation = ConversationFactory(tenant=tenant, phone_number=number, assignee=users[i % 3])
            ConversationLabelFactory(conversation=conversation, label=labels[i % 3])

    add(10)
    count_queries(agent_client, "/t/acme/inbox/")  # the user and membership are remembered from then on
    small = count_queries(agent_client, "/t/acme/inbox/")
    add(40)
    with django_assert_max_num_queries(small):
        large = count_queries(agent_client, "/t/acme/inbox/")
    assert small == large <= 12
    assert count_queries(agent_client, "/t/acme/inbox/", **htmx("list-body")) <= 10


def test_the_thread_runs_the_same_queries_for_10_or_50_messages(agent_client, tenant, conversation,
                                                                django_assert_max_num_queries):
    media = MediaFactory(tenant=tenant, status="ready", mime_type="image/png")

    def add(n):
        for i in range(n):
            quoted = Message.all_tenants.filter(conversation=conversation).order_by("-id").first()
            MessageFactory(conversation=conversation, direction="inbound" if i % 2 else "outbound",
                           status="received" if i % 2 else "read", reply_to=quoted,
                           type="image" if i % 5 == 0 else "text", media=media if i % 5 == 0 else None,
                           wa_message_id=f"wamid.Q{n}.{i}")
            if i % 4 == 0:
                MessageFactory(conversation=conversation, direction="inbound", status="received", type="reaction",
                               content={"message_id": f"wamid.Q{n}.{i}", "emoji": "👍"})

    url = f"/t/acme/inbox/{conversation.pk}/"
    add(10)
    count_queries(agent_client, url, **htmx("thread-pane"))  # the user and membership are remembered from then on
    small = count_queries(agent_client, url, **htmx("thread-pane"))
    add(60)
    with django_assert_max_num_queries(small):
        large = count_queries(agent_client, url, **htmx("thread-pane"))
    assert small == large <= 14
    with django_assert_max_num_queries(small + 8):
        count_queries(agent_client, url)


def test_the_list_body_reads_the_numbers_only_for_a_number_filter(agent_client, tenant, number, conversation):
    def number_queries(url):
        with CaptureQueriesContext(connection) as captured:
            html = body(agent_client.get(url, **htmx("list-body")))
        return html, [q for q in captured.captured_queries if 'FROM "phone_numbers_phonenumber"' in q["sql"]]

    html, queries = number_queries("/t/acme/inbox/?view=all&status=open")
    assert queries == [] and 'class="active-filters"' not in html
    html, queries = number_queries(f"/t/acme/inbox/?view=all&status=open&number={number.pk}")
    assert len(queries) == 1
    chips = html[html.index('class="active-filters"'):]
    assert phone(number.display_number) in chips[:chips.index("</div>")]
