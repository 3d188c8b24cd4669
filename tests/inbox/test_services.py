from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.contacts.models import Contact
from apps.conversations import inbox_selectors as sel
from apps.conversations.models import Conversation, ConversationLabel, Media, Message
from apps.conversations.services import inbox as actions
from apps.conversations.services import message_statuses_apply
from apps.conversations.services.inbox_settings import (
    canned_response_delete,
    canned_response_save,
    label_delete,
    label_save,
)
from apps.core.exceptions import ApplicationError, PolicyError
from apps.providers.backends import locmem
from apps.providers.events import StatusUpdate
from apps.webhooks.models import WebhookDelivery
from tests.browser.inbox_scenario import png_bytes
from tests.factories import (
    CannedResponseFactory,
    ConversationFactory,
    LabelFactory,
    MembershipFactory,
    MessageFactory,
    MessageTemplateFactory,
    TenantFactory,
    UserFactory,
    WebhookEndpointFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(tenant):
    """Events are recorded only for a subscribed endpoint; their delivery is not tested here."""
    return WebhookEndpointFactory(tenant=tenant)


def events(kind: str) -> list[dict]:
    return [d.payload["data"] for d in WebhookDelivery.all_tenants.filter(event_type=kind)]


def activities(conversation) -> list[str]:
    return list(Message.all_tenants.filter(conversation=conversation, type="activity").order_by("id")
                .values_list("text_preview", flat=True))


def stale(conversation) -> None:
    """Push updated_at into the past so a test can see an action move it."""
    Conversation.all_tenants.filter(pk=conversation.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    conversation.refresh_from_db()


# --- assignment ---------------------------------------------------------------------------

def test_assign_to_a_member_writes_an_activity_line_and_the_tenant_event(scoped, endpoint, tenant, conversation, agent, owner):
    stale(conversation)
    before = conversation.updated_at
    actions.conversation_assign(tenant=tenant, conversation=conversation, assignee=agent, by=owner)
    conversation.refresh_from_db()
    assert conversation.assignee == agent and conversation.updated_at > before
    assert activities(conversation) == ["owner@acme.test assigned this conversation to Ana Agent"]
    [data] = events("conversation.assigned")
    assert data["assignee_id"] == agent.pk and data["changed_by_id"] == owner.pk and data["id"] == conversation.pk
    activity = Message.all_tenants.get(type="activity")
    assert activity.direction == "internal" and activity.content["kind"] == "assigned"


def test_self_assign_and_unassign_read_naturally(scoped, endpoint, tenant, conversation, agent):
    actions.conversation_assign(tenant=tenant, conversation=conversation, assignee=agent, by=agent)
    actions.conversation_assign(tenant=tenant, conversation=conversation, assignee=agent, by=agent)  # no change
    actions.conversation_assign(tenant=tenant, conversation=conversation, assignee=None, by=agent)
    assert activities(conversation) == ["Ana Agent self-assigned this conversation", "Ana Agent unassigned Ana Agent"]
    assert len(events("conversation.assigned")) == 2


@pytest.mark.parametrize("role", ["marketer", "developer"])
def test_only_members_with_inbox_access_can_be_assigned(scoped, tenant, conversation, owner, role):
    outsider = MembershipFactory(tenant=tenant, role=role).user
    stranger = MembershipFactory(tenant=TenantFactory(), role="agent").user
    for user in (outsider, stranger):
        with pytest.raises(ApplicationError, match="inbox access"):
            actions.conversation_assign(tenant=tenant, conversation=conversation, assignee=user, by=owner)
    assert Conversation.all_tenants.get(pk=conversation.pk).assignee is None


# --- status -------------------------------------------------------------------------------

def test_resolve_emits_conversation_resolved_and_reopen_emits_opened(scoped, endpoint, tenant, conversation, owner):
    actions.conversation_status_set(tenant=tenant, conversation=conversation, status="resolved", by=owner)
    actions.conversation_status_set(tenant=tenant, conversation=conversation, status="resolved", by=owner)
    actions.conversation_status_set(tenant=tenant, conversation=conversation, status="pending", by=owner)
    actions.conversation_status_set(tenant=tenant, conversation=conversation, status="open", by=owner)
    assert Conversation.all_tenants.get(pk=conversation.pk).status == "open"
    assert activities(conversation) == ["owner@acme.test resolved the conversation",
                                        "owner@acme.test marked the conversation as pending",
                                        "owner@acme.test reopened the conversation"]
    assert [d["status"] for d in events("conversation.resolved")] == ["resolved"]
    assert [d["status"] for d in events("conversation.opened")] == ["open"]


def test_an_unknown_status_is_refused(scoped, tenant, conversation, owner):
    with pytest.raises(ApplicationError, match="Unknown status"):
        actions.conversation_status_set(tenant=tenant, conversation=conversation, status="closed", by=owner)


# --- labels and read state ----------------------------------------------------------------

def test_label_toggle_adds_then_removes(scoped, tenant, conversation, owner):
    label = LabelFactory(tenant=tenant, name="billing")
    assert actions.conversation_label_toggle(tenant=tenant, conversation=conversation, label=label, by=owner) is True
    assert ConversationLabel.all_tenants.filter(conversation=conversation, label=label).exists()
    assert actions.conversation_label_toggle(tenant=tenant, conversation=conversation, label=label, by=owner) is False
    assert not ConversationLabel.all_tenants.filter(conversation=conversation).exists()
    assert activities(conversation) == ["owner@acme.test added the label “billing”",
                                        "owner@acme.test removed the label “billing”"]


def test_another_tenants_label_is_refused(scoped, tenant, conversation, owner):
    foreign = LabelFactory(tenant=TenantFactory())
    with pytest.raises(ApplicationError):
        actions.conversation_label_toggle(tenant=tenant, conversation=conversation, label=foreign, by=owner)
    assert not ConversationLabel.all_tenants.exists()


def test_mark_read_and_unread(scoped, tenant, conversation):
    stale(conversation)
    before = conversation.updated_at
    assert actions.conversation_mark_read(tenant=tenant, conversation=conversation) is True
    assert actions.conversation_mark_read(tenant=tenant, conversation=conversation) is False
    conversation.refresh_from_db()
    assert conversation.unread_count == 0 and conversation.updated_at > before
    actions.conversation_mark_unread(tenant=tenant, conversation=conversation)
    conversation.refresh_from_db()
    assert conversation.unread_count == 1
    assert not activities(conversation)


# --- notes and consent --------------------------------------------------------------------

def test_a_note_stays_inside_and_does_not_move_the_list(scoped, tenant, conversation, agent):
    preview = conversation.last_message_preview
    note = actions.note_add(tenant=tenant, conversation=conversation, body="  Refund approved  ", by=agent)
    assert (note.direction, note.type, note.content, note.sent_by) == ("internal", "note", {"body": "Refund approved"},
                                                                       agent)
    conversation.refresh_from_db()
    assert conversation.last_message_preview == preview
    assert locmem.outbox == []
    with pytest.raises(ApplicationError, match="Write something"):
        actions.note_add(tenant=tenant, conversation=conversation, body="   ", by=agent)


def test_opting_out_from_the_inbox_blocks_sending_and_is_reported(scoped, endpoint, tenant, conversation, agent):
    assert actions.conversation_contact_opt_set(tenant=tenant, conversation=conversation, opted_in=False, by=agent)
    assert not actions.conversation_contact_opt_set(tenant=tenant, conversation=conversation, opted_in=False, by=agent)
    contact = Contact.all_tenants.get(pk=conversation.contact_id)
    assert contact.opt_in_status == "opted_out" and contact.opt_in_source == "inbox"
    assert activities(conversation) == ["Ana Agent opted Maya Patel out of messages"]
    assert events("contact.opted_out")[0]["source"] == "inbox"
    conversation.refresh_from_db()
    assert sel.composer_mode(conversation) == "opted_out"
    with pytest.raises(PolicyError) as error:
        actions.conversation_reply_send(tenant=tenant, conversation=conversation, body="Hello", by=agent)
    assert error.value.code == "contact_opted_out"
    actions.conversation_contact_opt_set(tenant=tenant, conversation=conversation, opted_in=True, by=agent)
    conversation.refresh_from_db()
    assert sel.composer_mode(conversation) == "reply"


# --- replies ------------------------------------------------------------------------------

def test_a_text_reply_is_queued_and_sent_once_committed(scoped, tenant, conversation, agent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        [message] = actions.conversation_reply_send(tenant=tenant, conversation=conversation,
                                                    body="See https://example.com/track", by=agent)
    assert message.direction == "outbound" and message.sent_by == agent
    assert message.content == {"body": "See https://example.com/track", "preview_url": True}
    assert [m.content["body"] for _, m in locmem.outbox] == ["See https://example.com/track"]


def test_a_reply_quotes_only_a_message_of_the_same_conversation(scoped, tenant, conversation, agent):
    quoted = Message.all_tenants.filter(conversation=conversation).first()
    [message] = actions.conversation_reply_send(tenant=tenant, conversation=conversation, body="Yes",
                                                reply_to_id=str(quoted.pk), by=agent)
    assert message.reply_to == quoted and message.reply_to_provider_id == quoted.wa_message_id
    elsewhere = MessageFactory(conversation=ConversationFactory(tenant=tenant), direction="inbound")
    with pytest.raises(ApplicationError, match="not in this conversation"):
        actions.conversation_reply_send(tenant=tenant, conversation=conversation, body="No",
                                        reply_to_id=str(elsewhere.pk), by=agent)


def test_a_closed_window_refuses_free_text_with_the_policy_message(scoped, tenant, conversation, agent):
    Conversation.all_tenants.filter(pk=conversation.pk).update(window_expires_at=timezone.now() - timedelta(minutes=1))
    conversation.refresh_from_db()
    with pytest.raises(PolicyError) as error:
        actions.conversation_reply_send(tenant=tenant, conversation=conversation, body="Hello", by=agent)
    assert error.value.code == "window_closed" and "24-hour" in error.value.message
    assert not Message.all_tenants.filter(direction="outbound").exists()


def test_empty_and_too_long_replies_are_explained(scoped, tenant, conversation, agent):
    with pytest.raises(ApplicationError, match="Type a message"):
        actions.conversation_reply_send(tenant=tenant, conversation=conversation, body="  ", by=agent)
    with pytest.raises(ApplicationError, match="at most 4096"):
        actions.conversation_reply_send(tenant=tenant, conversation=conversation, body="x" * 4097, by=agent)


def test_an_attachment_becomes_a_media_row_and_a_captioned_media_message(scoped, tenant, conversation, agent):
    upload = SimpleUploadedFile("parcel.png", png_bytes(20, 10), content_type="image/png")
    [message] = actions.conversation_reply_send(tenant=tenant, conversation=conversation, body="The label", by=agent,
                                                upload=upload, upload_name=upload.name, upload_type=upload.content_type)
    media = Media.all_tenants.get()
    assert media.source == "upload" and media.status == "ready" and media.mime_type == "image/png"
    assert message.type == "image" and message.media == media
    assert message.content == {"id": str(media.pk), "caption": "The label"}


def test_audio_takes_no_caption_so_the_text_follows(scoped, tenant, conversation, agent):
    upload = SimpleUploadedFile("note.ogg", b"OggS" + b"\0" * 60, content_type="audio/ogg")
    sent = actions.conversation_reply_send(tenant=tenant, conversation=conversation, body="Listen to this", by=agent,
                                           upload=upload, upload_name=upload.name, upload_type=upload.content_type)
    assert [m.type for m in sent] == ["audio", "text"]


def test_a_refused_file_leaves_nothing_behind(scoped, tenant, conversation, agent):
    upload = SimpleUploadedFile("page.html", b"<script>alert(1)</script>", content_type="text/html")
    with pytest.raises(ApplicationError, match="does not accept"):
        actions.conversation_reply_send(tenant=tenant, conversation=conversation, body="", by=agent, upload=upload,
                                        upload_name=upload.name, upload_type=upload.content_type)
    assert not Media.all_tenants.exists() and not Message.all_tenants.filter(direction="outbound").exists()


def test_a_window_closed_attachment_rolls_back_its_media(scoped, tenant, conversation, agent):
    Conversation.all_tenants.filter(pk=conversation.pk).update(window_expires_at=None)
    conversation.refresh_from_db()
    upload = SimpleUploadedFile("parcel.png", png_bytes(20, 10), content_type="image/png")
    with pytest.raises(PolicyError):
        actions.conversation_reply_send(tenant=tenant, conversation=conversation, body="", by=agent, upload=upload,
                                        upload_name=upload.name, upload_type=upload.content_type)
    assert not Media.all_tenants.exists()


# --- templates ----------------------------------------------------------------------------

@pytest.fixture
def closed(conversation):
    Conversation.all_tenants.filter(pk=conversation.pk).update(window_expires_at=timezone.now() - timedelta(hours=2))
    conversation.refresh_from_db()
    return conversation


def test_a_positional_template_is_filled_and_sent_outside_the_window(scoped, tenant, closed, number, agent):
    template = MessageTemplateFactory(
        tenant=tenant, phone_number=number, waba_id="waba-1", name="order_update", language="en",
        components=[{"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
                    {"type": "BODY", "text": "Hi {{1}}, order {{2}} shipped.",
                     "example": {"body_text": [["Maya", "#10423"]]}},
                    {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://t.test/{{1}}"}]}])
    fields = actions.template_fields(template)
    assert [f["name"] for f in fields] == ["header.1", "body.1", "body.2", "button.0.0"]
    assert fields[1]["example"] == "Maya"
    message = actions.conversation_template_send(
        tenant=tenant, conversation=closed, template=template, by=agent,
        values={"header.1": "#10423", "body.1": "Maya", "body.2": "#10423", "button.0.0": "10423"})
    assert message.type == "template" and message.text_preview == "Hi Maya, order #10423 shipped."
    assert message.content["components"] == [
        {"type": "header", "parameters": [{"type": "text", "text": "#10423"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Maya"}, {"type": "text", "text": "#10423"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "10423"}]}]


def test_a_named_template_sends_parameter_names(scoped, tenant, closed, number, agent):
    template = MessageTemplateFactory(
        tenant=tenant, phone_number=number, waba_id="waba-1", name="reminder", language="en_US",
        parameter_format="named", components=[{"type": "BODY", "text": "Hi {{first_name}}, at {{time}}."}])
    message = actions.conversation_template_send(tenant=tenant, conversation=closed, template=template, by=agent,
                                                 values={"body.first_name": "Maya", "body.time": "3 PM"})
    assert message.content["components"][0]["parameters"] == [
        {"type": "text", "text": "Maya", "parameter_name": "first_name"},
        {"type": "text", "text": "3 PM", "parameter_name": "time"}]


def test_empty_variables_are_named_in_the_error(scoped, tenant, closed, number, agent):
    template = MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id="waba-1",
                                      components=[{"type": "BODY", "text": "Hi {{1}} {{2}}"}])
    with pytest.raises(ApplicationError, match=r"\{\{2\}\}"):
        actions.conversation_template_send(tenant=tenant, conversation=closed, template=template, by=agent,
                                           values={"body.1": "Maya", "body.2": " "})


def test_a_media_header_needs_an_https_link(scoped, tenant, closed, number, agent):
    template = MessageTemplateFactory(tenant=tenant, phone_number=number, waba_id="waba-1",
                                      components=[{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Hi"}])
    with pytest.raises(ApplicationError, match="https"):
        actions.conversation_template_send(tenant=tenant, conversation=closed, template=template, by=agent,
                                           values={"header_media": "javascript:alert(1)"})
    message = actions.conversation_template_send(tenant=tenant, conversation=closed, template=template, by=agent,
                                                 values={"header_media": "https://cdn.example.com/p.jpg"})
    assert message.content["components"][0] == {
        "type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example.com/p.jpg"}}]}


def test_a_template_of_another_account_is_refused(scoped, tenant, closed, agent):
    template = MessageTemplateFactory(tenant=tenant, waba_id="another-waba")
    with pytest.raises(PolicyError, match="another WhatsApp account"):
        actions.conversation_template_send(tenant=tenant, conversation=closed, template=template, by=agent,
                                           values={"body.1": "x"})


# --- updated_at on bulk writes ------------------------------------------------------------

def test_status_updates_move_the_message_updated_at(scoped, tenant, conversation, number):
    message = MessageFactory(conversation=conversation, status="accepted", provider_message_id="wamid.OUT",
                             wa_message_id="wamid.OUT")
    Message.all_tenants.filter(pk=message.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    before = Message.all_tenants.get(pk=message.pk).updated_at
    message_statuses_apply(phone_number=number, updates=[StatusUpdate(
        provider="meta_cloud", route_key="5550001", provider_message_id="wamid.OUT", wa_message_id="wamid.OUT",
        status="read", timestamp=timezone.now(), recipient_wa_id=None, errors=(), conversation={}, pricing={},
        callback_data=None, raw={})])
    message.refresh_from_db()
    assert message.status == "read" and message.updated_at > before


def test_dispatch_results_move_the_message_updated_at(scoped, tenant, conversation, agent,
                                                      django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        [message] = actions.conversation_reply_send(tenant=tenant, conversation=conversation, body="Hi", by=agent)
    created = message.updated_at
    message.refresh_from_db()
    assert message.status == "accepted" and message.updated_at > created


# --- canned responses and labels ----------------------------------------------------------

def test_canned_responses_are_validated_and_unique(scoped, tenant):
    canned = canned_response_save(tenant=tenant, canned=None, shortcut="/Shipping", content=" Ships in 24 h ")
    assert (canned.shortcut, canned.content) == ("shipping", "Ships in 24 h")
    with pytest.raises(ApplicationError, match="already used"):
        canned_response_save(tenant=tenant, canned=None, shortcut="shipping", content="Again")
    with pytest.raises(ApplicationError, match="lowercase"):
        canned_response_save(tenant=tenant, canned=None, shortcut="two words", content="x")
    with pytest.raises(ApplicationError, match="Write the reply"):
        canned_response_save(tenant=tenant, canned=canned, shortcut="shipping", content="")
    other = CannedResponseFactory(tenant=TenantFactory(), shortcut="shipping")
    assert other.shortcut == "shipping"  # the same shortcut in another workspace is fine
    canned_response_delete(tenant=tenant, canned=canned)
    assert not type(canned).all_tenants.filter(tenant=tenant).exists()


def test_labels_are_validated_and_deleting_one_unlabels_conversations(scoped, tenant, conversation, owner):
    label = label_save(tenant=tenant, label=None, name="  Billing  ", color="#B7791F")
    assert (label.name, label.color) == ("Billing", "#b7791f")
    with pytest.raises(ApplicationError, match="already a label"):
        label_save(tenant=tenant, label=None, name="billing", color="")
    with pytest.raises(ApplicationError, match="colour"):
        label_save(tenant=tenant, label=label, name="Billing", color="red; background: url(x)")
    actions.conversation_label_toggle(tenant=tenant, conversation=conversation, label=label, by=owner)
    stale(conversation)
    label_delete(tenant=tenant, label=label)
    assert not ConversationLabel.all_tenants.exists()
    conversation.refresh_from_db()
    assert conversation.updated_at > timezone.now() - timedelta(minutes=1)


def test_member_lookup_for_assignment_ignores_other_tenants(scoped, tenant, agent):
    stranger = UserFactory()
    MembershipFactory(tenant=TenantFactory(), user=stranger, role="agent")
    assert sel.inbox_member(tenant=tenant, user_id=agent.pk).user == agent
    assert sel.inbox_member(tenant=tenant, user_id=stranger.pk) is None


def test_a_keyword_opt_out_is_an_activity_line_in_the_thread(scoped, tenant, number):
    from apps.conversations.services import message_receive
    from apps.providers.events import InboundMessage

    def inbound(wamid, text):
        return InboundMessage(provider="meta_cloud", route_key="5550001", wa_id="14155550177", profile_name="Grace",
                              provider_message_id=wamid, timestamp=timezone.now(), type="text",
                              content={"body": text}, text=text, context_id=None, media=None, errors=(), raw={})

    stop = message_receive(phone_number=number, inbound=inbound("wamid.S1", "STOP"))
    message_receive(phone_number=number, inbound=inbound("wamid.S2", "start"))
    assert activities(stop.conversation) == ["Grace opted out of messages (replied “STOP”)",
                                             "Grace opted back in to messages (replied “start”)"]
