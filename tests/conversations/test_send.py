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
