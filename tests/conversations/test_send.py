from datetime import timedelta

import pytest
from django.utils import timezone

from apps.contacts.models import Contact
from apps.conversations.models import Conversation, Message
from apps.conversations.services import message_send
from apps.core.exceptions import ApplicationError, PolicyError
from apps.providers.backends import locmem
from tests.factories import ContactFactory, PhoneNumberFactory, TenantFactory


def body_params(*values):
    return [{"type": "body", "parameters": [{"type": "text", "text": v} for v in values]}]


def error_code(call) -> str:
    with pytest.raises(ApplicationError) as info:
        call()
    return info.value.code


def test_text_inside_the_window_is_queued_and_dispatched_after_commit(
        scoped, tenant, number, open_conversation, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        message = message_send(tenant=tenant, to="+1 415 555 0100", type="text", content={"body": "Hello"})
        assert message.status == "queued" and locmem.outbox == []  # nothing leaves before commit
    assert len(callbacks) == 1
    message.refresh_from_db()
    assert message.status == "accepted" and message.provider_message_id.startswith("wamid.LOCMEM")
    assert message.conversation == open_conversation and message.text_preview == "Hello"
    (number_id, sent), = locmem.outbox
    assert sent.to == "14155550100" and sent.content == {"body": "Hello"} and sent.callback_data == str(message.pk)
    conversation = Conversation.objects.get(pk=open_conversation.pk)
    assert conversation.last_message_preview == "Hello" and conversation.last_message_direction == "outbound"


def test_closed_window_refuses_a_free_form_message(scoped, tenant, number):
    assert error_code(lambda: message_send(tenant=tenant, to="14155550111", type="text",
                                           content={"body": "Hi"})) == "window_closed"
    ContactFactory(tenant=tenant, wa_id="14155550112")
    conversation = Conversation.objects.create(tenant=tenant, phone_number=number,
                                               contact=Contact.objects.get(wa_id="14155550112"),
                                               window_expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(PolicyError) as info:
        message_send(tenant=tenant, to="14155550112", type="image", content={"link": "https://x.test/a.jpg"})
    assert info.value.code == "window_closed" and info.value.http_status == 422
    assert info.value.details["window_expires_at"] == conversation.window_expires_at.isoformat()
    assert not Message.objects.exists()


def test_opted_out_contacts_get_nothing(scoped, tenant, number, templates):
    ContactFactory(tenant=tenant, wa_id="14155550113", opt_in_status="opted_out")
    assert error_code(lambda: message_send(tenant=tenant, to="14155550113", type="template", content={
        "name": "order_update", "language": {"code": "en"}, "components": body_params("A", "B")})) == "contact_opted_out"


@pytest.mark.parametrize("to", ["", "12", "not a number", "+999 1"])
def test_invalid_recipient(scoped, tenant, number, to):
    assert error_code(lambda: message_send(tenant=tenant, to=to, type="text", content={"body": "x"})) == "invalid_recipient"


def test_unknown_type_and_malformed_content(scoped, tenant, number, open_conversation):
    assert error_code(lambda: message_send(tenant=tenant, to="14155550100", type="fax", content={})) == "invalid_message"
    assert error_code(lambda: message_send(tenant=tenant, to="14155550100", type="contacts",
                                           content={"name": "x"})) == "invalid_message"


def test_template_policies(scoped, tenant, number, templates):
    def send(content):
        return message_send(tenant=tenant, to="14155550120", type="template", content=content)

    assert error_code(lambda: send({"name": "nope", "language": {"code": "en"}})) == "template_not_approved"
    assert error_code(lambda: send({"name": "draft", "language": {"code": "en"}})) == "template_not_approved"
    assert error_code(lambda: send({"name": "order_update", "language": {"code": "en"},
                                    "components": body_params("only one")})) == "template_parameters_mismatch"
    assert error_code(lambda: send({"name": "reminder", "language": {"code": "en_US"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Ada"}]}]})
    ) == "template_parameters_mismatch"
    assert error_code(lambda: send({"name": "promo", "language": {"code": "en"},
                                    "components": body_params("Ada")})) == "template_parameters_mismatch"
    assert error_code(lambda: send({"language": {"code": "en"}})) == "template_parameters_mismatch"


def test_a_valid_template_is_queued_with_its_rendered_body(scoped, tenant, number, templates):
    message = message_send(tenant=tenant, to="14155550121", type="template", content={
        "name": "reminder", "language": {"code": "en"},  # "en" finds the only English variant, en_US
        "components": [{"type": "body", "parameters": [
            {"type": "text", "parameter_name": "time", "text": "3 PM"},
            {"type": "text", "parameter_name": "first_name", "text": "Ada"}]}]})
    assert message.status == "queued"
    assert message.text_preview == "Hi Ada, see you at 3 PM."
    assert message.content["language"] == {"code": "en_US"}
    promo = message_send(tenant=tenant, to="14155550122", type="template", content={
        "name": "promo", "language": {"code": "en"}, "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x.test/p.jpg"}}]},
            *body_params("Ada"),
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "abc"}]}]})
    assert promo.text_preview == "Ada, 20% off"


def test_phone_number_resolution(scoped, tenant, number, open_conversation):
    other_tenants_number = PhoneNumberFactory(tenant=TenantFactory())
    assert error_code(lambda: message_send(tenant=tenant, to="14155550100", type="text", content={"body": "x"},
                                           phone_number=other_tenants_number.pk)) == "phone_number_not_found"
    assert error_code(lambda: message_send(tenant=tenant, to="14155550100", type="text", content={"body": "x"},
                                           phone_number=other_tenants_number)) == "phone_number_not_found"
    PhoneNumberFactory(tenant=tenant)
    assert error_code(lambda: message_send(tenant=tenant, to="14155550100", type="text",
                                           content={"body": "x"})) == "phone_number_not_found"
    message = message_send(tenant=tenant, to="14155550100", type="text", content={"body": "x"}, phone_number=number.pk)
    assert message.phone_number == number


def test_idempotency_key_returns_the_first_message(scoped, tenant, number, open_conversation):
    first = message_send(tenant=tenant, to="14155550100", type="text", content={"body": "x"}, idempotency_key="k")
    again = message_send(tenant=tenant, to="14155550100", type="text", content={"body": "x"}, idempotency_key="k")
    assert first.pk == again.pk and Message.objects.count() == 1


def test_reply_must_quote_the_same_conversation(scoped, tenant, number, open_conversation):
    from tests.factories import MessageFactory

    elsewhere = MessageFactory(tenant=tenant)
    assert error_code(lambda: message_send(tenant=tenant, to="14155550100", type="text", content={"body": "x"},
                                           reply_to=elsewhere)) == "invalid_message"
    quoted = MessageFactory(conversation=open_conversation, direction="inbound", wa_message_id="wamid.Q",
                            provider_message_id="wamid.Q", status="received")
    reply = message_send(tenant=tenant, to="14155550100", type="text", content={"body": "x"}, reply_to=quoted)
    assert reply.reply_to_provider_id == "wamid.Q"


# -- the common case in one statement (PostgreSQL) --------------------------------------------


def _statements(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries]


def test_a_free_form_send_in_an_open_window_is_one_statement_that_writes_what_two_did(
        scoped, tenant, number, open_conversation):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    message_send(tenant=tenant, to="14155550100", type="text", content={"body": "warm the number cache"})
    with CaptureQueriesContext(connection) as captured:
        message = message_send(tenant=tenant, to="+1 415 555 0100", type="text", content={"body": "Hello"},
                               sent_by=None, campaign_recipient_id=None)
    if connection.vendor == "postgresql":
        (statement,) = _statements(captured)
        assert statement.startswith("WITH target AS (SELECT c.id AS queue_conversation_id")
    stored = Message.objects.select_related("conversation", "contact").get(pk=message.pk)
    assert (stored.conversation_id, stored.contact_id) == (open_conversation.pk, open_conversation.contact_id)
    assert (stored.status, stored.direction, stored.text_preview, stored.idempotency_key) == (
        "queued", "outbound", "Hello", None)
    assert stored.content == {"body": "Hello"} and stored.created_at == message.created_at
    conversation = stored.conversation
    assert (conversation.last_message_preview, conversation.last_message_type,
            conversation.last_message_direction) == ("Hello", "text", "outbound")
    # The returned message carries its conversation and contact, as the general path's does.
    assert message.conversation.pk == open_conversation.pk and message.contact.wa_id == "14155550100"
    assert message.conversation.contact is message.contact and not message._state.adding


@pytest.mark.parametrize("case", ["no conversation", "window closed", "opted out"])
def test_when_the_one_statement_finds_no_row_it_writes_nothing_and_the_general_path_says_why(
        scoped, tenant, number, case):
    contact = ContactFactory(tenant=tenant, wa_id="14155550120",
                             opt_in_status="opted_out" if case == "opted out" else "unknown")
    conversation = None
    if case != "no conversation":
        conversation = Conversation.objects.create(
            tenant=tenant, phone_number=number, contact=contact, last_message_preview="before",
            window_expires_at=timezone.now() + (timedelta(hours=-1) if case == "window closed" else timedelta(hours=1)))
    code = error_code(lambda: message_send(tenant=tenant, to="14155550120", type="text", content={"body": "Hi"}))
    assert code == {"no conversation": "window_closed", "window closed": "window_closed",
                    "opted out": "contact_opted_out"}[case]
    assert not Message.objects.exists()
    if conversation is not None:
        assert Conversation.objects.get(pk=conversation.pk).last_message_preview == "before"


def test_the_opt_out_confirmation_reaches_a_contact_who_just_opted_out(scoped, tenant, number):
    contact = ContactFactory(tenant=tenant, wa_id="14155550121", opt_in_status="opted_out")
    conversation = Conversation.objects.create(tenant=tenant, phone_number=number, contact=contact,
                                               window_expires_at=timezone.now() + timedelta(hours=1))
    message = message_send(tenant=tenant, to="14155550121", type="text", content={"body": "You are unsubscribed."},
                           opt_out_confirmation=True)
    assert message.conversation_id == conversation.pk and Message.objects.filter(pk=message.pk).exists()
    assert error_code(lambda: message_send(tenant=tenant, to="14155550121", type="text",
                                           content={"body": "Another"})) == "contact_opted_out"
