from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.api.models import IdempotencyKey
from apps.contacts.models import Contact
from apps.conversations.apis import MessageListCreateApi
from apps.conversations.models import Message
from apps.core.scoping import tenant_scope
from apps.providers.backends import locmem
from apps.providers.exceptions import ProviderPermanentError
from apps.tenants.services import api_key_revoke
from tests.factories import ContactFactory, ConversationFactory, MessageFactory, PhoneNumberFactory

URL = "/api/v1/messages"
QUEUED_KEYS = {"id", "phone_number_id", "direction", "type", "to", "status", "wa_message_id", "conversation_id",
               "created_at"}


def send(client: APIClient, body: dict, **headers):
    return client.post(URL, body, format="json", **headers)


def error_code(response) -> str:
    return response.json()["error"]["code"]


def stored(message_id: int, tenant) -> Message:
    with tenant_scope(tenant):
        return Message.objects.select_related("contact").get(pk=message_id)


# -- sending ---------------------------------------------------------------------------------

def test_text_is_queued_and_answers_202_with_the_message(api_client, tenant, number, open_conversation):
    response = send(api_client, {"to": "+1 (415) 555-0100", "type": "text", "text": {"body": "Hello"}})
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == QUEUED_KEYS
    assert body["status"] == "queued" and body["direction"] == "outbound" and body["type"] == "text"
    assert body["to"] == "14155550100" and body["wa_message_id"] is None
    assert body["phone_number_id"] == number.pk and body["conversation_id"] == open_conversation.pk
    assert isinstance(body["id"], int) and body["created_at"]
    message = stored(body["id"], tenant)
    assert message.content == {"body": "Hello"} and message.status == "queued"
    # The answer is built without the serializer the schema documents; both give the same.
    assert body == MessageListCreateApi.OutputSerializer(message).data
    message.provider_message_id = "gs-1"
    assert MessageListCreateApi.queued_body(message) == MessageListCreateApi.OutputSerializer(message).data


LINK = "https://cdn.example.com/files/a"

EVERY_TYPE = {
    "text": {"body": "Hi there", "preview_url": True},
    "image": {"link": f"{LINK}.jpg", "caption": "A photo"},
    "video": {"link": f"{LINK}.mp4", "caption": "A clip"},
    "audio": {"link": f"{LINK}.ogg"},
    "document": {"link": f"{LINK}.pdf", "filename": "a.pdf", "caption": "Invoice"},
    "sticker": {"link": f"{LINK}.webp"},
    "location": {"latitude": 37.44, "longitude": -122.16, "name": "Office", "address": "1 Hacker Way"},
    "contacts": [{"name": {"formatted_name": "Grace Hopper", "first_name": "Grace"},
                  "phones": [{"phone": "+1 415 555 0199", "type": "WORK"}]}],
}
INTERACTIVE = {
    "button": {"type": "button", "body": {"text": "Pick one"},
               "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                                      {"type": "reply", "reply": {"id": "no", "title": "No"}}]}},
    "list": {"type": "list", "header": {"type": "text", "text": "Menu"}, "body": {"text": "Choose a size"},
             "footer": {"text": "Prices include tax"},
             "action": {"button": "Sizes", "sections": [{"title": "Shirts", "rows": [
                 {"id": "s", "title": "Small", "description": "S"}, {"id": "m", "title": "Medium"}]}]}},
    "cta_url": {"type": "cta_url", "body": {"text": "Track your order"},
                "action": {"name": "cta_url", "parameters": {"display_text": "Track", "url": "https://x.test/t"}}},
}


@pytest.mark.parametrize("kind", sorted(EVERY_TYPE))
def test_every_free_form_type_is_sent_as_metas_object(api_client, tenant, number, open_conversation, kind,
                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = send(api_client, {"to": "14155550100", "type": kind, kind: EVERY_TYPE[kind]})
    assert response.status_code == 202, response.content
    (_, outbound), = locmem.outbox
    assert outbound.type == kind and outbound.content == EVERY_TYPE[kind] and outbound.to == "14155550100"
    assert stored(response.json()["id"], tenant).status == "accepted"


@pytest.mark.parametrize("variant", sorted(INTERACTIVE))
def test_interactive_messages(api_client, tenant, number, open_conversation, variant,
                              django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = send(api_client, {"to": "14155550100", "type": "interactive", "interactive": INTERACTIVE[variant]})
    assert response.status_code == 202, response.content
    (_, outbound), = locmem.outbox
    assert outbound.type == "interactive" and outbound.content == INTERACTIVE[variant]


@pytest.mark.parametrize(("template", "components"), [
    ({"name": "order_update", "language": "en", "variables": ["Ada", 1234]},
     [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "1234"}]}]),
    ({"name": "order_update", "language": {"code": "en"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "#9"}]}]},
     [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "#9"}]}]),
    ({"name": "reminder", "language": "en_US", "variables": {"first_name": "Ada", "time": "10:00"}},
     [{"type": "body", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Ada"},
                                      {"type": "text", "parameter_name": "time", "text": "10:00"}]}]),
], ids=["positional-variables", "meta-components", "named-variables"])
def test_templates_in_metas_form_and_with_variables(api_client, tenant, number, templates, template, components,
                                                    django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        # No conversation yet: a template may open one.
        response = send(api_client, {"to": "14155550177", "type": "template", "template": template})
    assert response.status_code == 202, response.content
    message = stored(response.json()["id"], tenant)
    assert message.content["components"] == components
    (_, outbound), = locmem.outbox
    assert outbound.type == "template" and outbound.content["name"] == template["name"]
    assert outbound.content["components"] == components
    assert outbound.template_parameter_format == ("named" if template["name"] == "reminder" else "positional")


def test_template_language_en_finds_the_only_english_variant(api_client, tenant, number, templates):
    response = send(api_client, {"to": "14155550177", "type": "template",
                                 "template": {"name": "reminder", "language": "en",
                                              "variables": {"first_name": "Ada", "time": "9"}}})
    assert response.status_code == 202, response.content
    assert stored(response.json()["id"], tenant).content["language"] == {"code": "en_US"}


def test_template_variables_and_a_body_component_together_are_refused(api_client, number, templates):
    response = send(api_client, {"to": "14155550177", "type": "template", "template": {
        "name": "order_update", "language": "en", "variables": ["a", "b"],
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "a"}]}]}})
    assert response.status_code == 400 and error_code(response) == "invalid_request"
    assert "variables" in response.json()["error"]["details"]["template"]


def test_reaction_to_a_parley_message_id_uses_its_whatsapp_id(api_client, tenant, open_conversation,
                                                              django_capture_on_commit_callbacks):
    earlier = MessageFactory(conversation=open_conversation, direction="inbound", status="received",
                             provider_message_id="wamid.IN1", wa_message_id="wamid.IN1")
    with django_capture_on_commit_callbacks(execute=True):
        response = send(api_client, {"to": "14155550100", "type": "reaction",
                                     "reaction": {"message_id": str(earlier.pk), "emoji": "👍"}})
    assert response.status_code == 202, response.content
    (_, outbound), = locmem.outbox
    assert outbound.type == "reaction" and outbound.content == {"message_id": "wamid.IN1", "emoji": "👍"}
    # A wamid Parley does not know is passed through as is.
    response = send(api_client, {"to": "14155550100", "type": "reaction",
                                 "reaction": {"message_id": "wamid.ELSEWHERE", "emoji": ""}})
    assert response.status_code == 202
    assert stored(response.json()["id"], tenant).content == {"message_id": "wamid.ELSEWHERE", "emoji": ""}


@pytest.mark.parametrize("by", ["wamid", "parley id"])
def test_reply_context_by_wamid_or_parley_id(api_client, tenant, open_conversation, by,
                                            django_capture_on_commit_callbacks):
    earlier = MessageFactory(conversation=open_conversation, direction="inbound", status="received",
                             provider_message_id="wamid.Q1", wa_message_id="wamid.Q1")
    reference = "wamid.Q1" if by == "wamid" else str(earlier.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = send(api_client, {"to": "14155550100", "type": "text", "text": {"body": "Yes"},
                                     "context": {"message_id": reference}})
    assert response.status_code == 202, response.content
    message = stored(response.json()["id"], tenant)
    assert message.reply_to_id == earlier.pk and message.reply_to_provider_id == "wamid.Q1"
    (_, outbound), = locmem.outbox
    assert outbound.reply_to == "wamid.Q1"


def test_reply_to_an_unknown_message_is_invalid(api_client, open_conversation):
    for reference in ("wamid.NOPE", "987654"):
        response = send(api_client, {"to": "14155550100", "type": "text", "text": {"body": "Yes"},
                                     "context": {"message_id": reference}})
        assert response.status_code == 422 and error_code(response) == "invalid_message"


def test_idempotency_body_field_returns_the_same_message(api_client, tenant, open_conversation):
    body = {"to": "14155550100", "type": "text", "text": {"body": "Once"}, "idempotency": "order-1-shipped"}
    first, second = send(api_client, body), send(api_client, body)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    with tenant_scope(tenant):
        assert Message.objects.filter(idempotency_key="order-1-shipped").count() == 1


# -- the phone number ------------------------------------------------------------------------

def test_phone_number_may_be_left_out_only_with_one_number(api_client, tenant, number, templates):
    template = {"name": "order_update", "language": "en", "variables": ["Ada", "#1"]}
    one = send(api_client, {"to": "14155550177", "type": "template", "template": template})
    assert one.status_code == 202 and one.json()["phone_number_id"] == number.pk

    second = PhoneNumberFactory(tenant=tenant, waba_id="waba-1")
    ambiguous = send(api_client, {"to": "14155550177", "type": "template", "template": template})
    assert ambiguous.status_code == 422 and error_code(ambiguous) == "phone_number_not_found"
    chosen = send(api_client, {"phone_number_id": second.pk, "to": "14155550177", "type": "template",
                               "template": template})
    assert chosen.status_code == 202 and chosen.json()["phone_number_id"] == second.pk


def test_unknown_or_foreign_phone_number_is_not_found(api_client, other_tenant, number, open_conversation):
    foreign = PhoneNumberFactory(tenant=other_tenant)
    for phone_number_id in (999999, foreign.pk):
        response = send(api_client, {"phone_number_id": phone_number_id, "to": "14155550100", "type": "text",
                                     "text": {"body": "x"}})
        assert response.status_code == 404 and error_code(response) == "phone_number_not_found"


# -- policy errors ---------------------------------------------------------------------------

def test_window_closed(api_client, tenant, number):
    ContactFactory(tenant=tenant, wa_id="14155550123")
    ConversationFactory(tenant=tenant, phone_number=number, contact=Contact.all_tenants.get(wa_id="14155550123"),
                        window_expires_at=timezone.now() - timedelta(minutes=1))
    response = send(api_client, {"to": "14155550123", "type": "text", "text": {"body": "Hello?"}})
    assert response.status_code == 422 and error_code(response) == "window_closed"
    assert response.json()["error"]["message"] and "window_expires_at" in response.json()["error"]["details"]


def test_contact_opted_out(api_client, tenant, number, templates):
    ContactFactory(tenant=tenant, wa_id="14155550124", opt_in_status="opted_out")
    response = send(api_client, {"to": "14155550124", "type": "template",
                                 "template": {"name": "order_update", "language": "en", "variables": ["a", "b"]}})
    assert response.status_code == 422 and error_code(response) == "contact_opted_out"


@pytest.mark.parametrize(("template", "code"), [
    ({"name": "missing", "language": "en"}, "template_not_approved"),
    ({"name": "draft", "language": "en"}, "template_not_approved"),
    ({"name": "order_update", "language": "en", "variables": ["only one"]}, "template_parameters_mismatch"),
    ({"name": "reminder", "language": "en_US", "variables": {"first_name": "Ada"}}, "template_parameters_mismatch"),
])
def test_template_policy_errors(api_client, number, templates, template, code):
    response = send(api_client, {"to": "14155550177", "type": "template", "template": template})
    assert response.status_code == 422 and error_code(response) == code


@pytest.mark.parametrize("to", ["12", "not a number", "+999 1"])
def test_invalid_recipient(api_client, number, to):
    response = send(api_client, {"to": to, "type": "text", "text": {"body": "x"}})
    assert response.status_code == 422 and error_code(response) == "invalid_recipient"


def test_nothing_is_stored_when_a_policy_refuses(api_client, tenant, number):
    send(api_client, {"to": "14155550125", "type": "text", "text": {"body": "x"}})
    with tenant_scope(tenant):
        assert not Message.objects.exists()


# -- request validation ----------------------------------------------------------------------

@pytest.mark.parametrize(("body", "field"), [
    ({"type": "text", "text": {"body": "x"}}, "to"),
    ({"to": "14155550100", "text": {"body": "x"}}, "type"),
    ({"to": "14155550100", "type": "fax", "fax": {}}, "type"),
    ({"to": "14155550100", "type": "text"}, "text"),
    ({"to": "14155550100", "type": "text", "text": {}}, "text"),
    ({"to": "14155550100", "type": "image", "image": {}}, "image"),
    ({"to": "14155550100", "type": "image", "image": {"link": LINK, "id": "5"}}, "image"),
    ({"to": "14155550100", "type": "image", "image": {"link": "ftp://x.test/a.jpg"}}, "image"),
    ({"to": "14155550100", "type": "sticker", "sticker": {"link": LINK, "caption": "no"}}, "sticker"),
    ({"to": "14155550100", "type": "location", "location": {"latitude": 91, "longitude": 0}}, "location"),
    ({"to": "14155550100", "type": "contacts", "contacts": [{"phones": []}]}, "contacts"),
    ({"to": "14155550100", "type": "interactive", "interactive": {"type": "button", "body": {"text": "x"},
                                                                   "action": {"buttons": []}}}, "interactive"),
    ({"to": "14155550100", "type": "template", "template": {"name": "x"}}, "template"),
    ({"to": "14155550100", "type": "template", "template": {"name": "x", "language": "en",
                                                             "variables": [{"nested": 1}]}}, "template"),
    ({"to": "14155550100", "type": "reaction", "reaction": {"emoji": "👍"}}, "reaction"),
    ({"phone_number_id": "abc", "to": "14155550100", "type": "text", "text": {"body": "x"}}, "phone_number_id"),
])
def test_missing_or_malformed_fields_are_400_with_details(api_client, number, body, field):
    response = send(api_client, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and field in error["details"]


def test_malformed_json_is_400(api_client, number):
    response = api_client.post(URL, data="{not json", content_type="application/json")
    assert response.status_code == 400 and error_code(response) == "invalid_json"


# -- Idempotency-Key -------------------------------------------------------------------------

def test_idempotency_key_replays_the_first_response(api_client, tenant, open_conversation):
    body = {"to": "14155550100", "type": "text", "text": {"body": "Only once"}}
    first = send(api_client, body, HTTP_IDEMPOTENCY_KEY="k-1")
    replay = send(api_client, body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == replay.status_code == 202
    assert replay.json() == first.json() and replay["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    with tenant_scope(tenant):
        assert Message.objects.count() == 1

    other = send(api_client, {**body, "text": {"body": "Something else"}}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 409 and error_code(other) == "idempotency_key_reused"


def test_a_key_whose_first_request_is_still_running_is_a_409(api_client, tenant, open_conversation):
    IdempotencyKey.all_tenants.create(tenant=tenant, key="k-busy", fingerprint="not yet known")
    body = {"to": "14155550100", "type": "text", "text": {"body": "Hi"}}
    response = send(api_client, body, HTTP_IDEMPOTENCY_KEY="k-busy")
    assert response.status_code == 409 and error_code(response) == "idempotency_key_reused"
    IdempotencyKey.all_tenants.filter(key="k-busy").delete()
    first = send(api_client, body, HTTP_IDEMPOTENCY_KEY="k-busy")
    busy = IdempotencyKey.all_tenants.get(key="k-busy")
    IdempotencyKey.all_tenants.filter(pk=busy.pk).update(completed=False)
    again = send(api_client, body, HTTP_IDEMPOTENCY_KEY="k-busy")
    assert first.status_code == 202 and again.status_code == 409 and error_code(again) == "idempotency_in_progress"


def test_a_key_older_than_a_day_is_used_afresh(api_client, tenant, open_conversation):
    body = {"to": "14155550100", "type": "text", "text": {"body": "Hi"}}
    first = send(api_client, body, HTTP_IDEMPOTENCY_KEY="k-old")
    IdempotencyKey.all_tenants.filter(key="k-old").update(created_at=timezone.now() - timedelta(hours=25))
    second = send(api_client, body, HTTP_IDEMPOTENCY_KEY="k-old")
    assert first.status_code == second.status_code == 202
    assert second.json()["id"] != first.json()["id"] and "Idempotent-Replayed" not in second
    assert IdempotencyKey.all_tenants.filter(key="k-old").count() == 1


def test_a_refused_send_does_not_burn_its_idempotency_key(api_client, tenant, number):
    body = {"to": "14155550126", "type": "text", "text": {"body": "Hi"}}
    assert send(api_client, body, HTTP_IDEMPOTENCY_KEY="k-2").status_code == 422
    ConversationFactory(tenant=tenant, phone_number=number, contact=ContactFactory(tenant=tenant, wa_id="14155550126"),
                        window_expires_at=timezone.now() + timedelta(hours=1))
    assert send(api_client, body, HTTP_IDEMPOTENCY_KEY="k-2").status_code == 202


# -- authentication --------------------------------------------------------------------------

def test_missing_key_is_unauthenticated(db, number):
    response = APIClient().get(URL)
    assert response.status_code == 401 and error_code(response) == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Bearer two words", "Basic dXNlcjpwYXNz"])
def test_malformed_authorization_header(db, header):
    response = APIClient().get(URL, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and error_code(response) == "malformed_credentials"


def test_unknown_and_revoked_keys(api_key, tenant):
    response = APIClient().get(URL, HTTP_AUTHORIZATION="Bearer prl_000000000000.nope")
    assert response.status_code == 401 and error_code(response) == "invalid_api_key"
    api_key_revoke(tenant=tenant, api_key_id=api_key.pk)
    response = APIClient().get(URL, HTTP_AUTHORIZATION=f"Bearer {api_key.plaintext}")
    assert response.status_code == 401 and error_code(response) == "api_key_revoked"


def test_x_api_key_header_works(api_key, number, open_conversation):
    client = APIClient()
    response = client.post(URL, {"to": "14155550100", "type": "text", "text": {"body": "Hi"}}, format="json",
                           HTTP_X_API_KEY=api_key.plaintext)
    assert response.status_code == 202
    assert client.get(URL, HTTP_X_API_KEY=api_key.plaintext).status_code == 200


# -- reading ---------------------------------------------------------------------------------

@pytest.fixture
def history(tenant, number, open_conversation):
    """Five messages over five days on ``number`` plus one on a second number, oldest first."""
    now = timezone.now()
    rows = []
    for days, direction, status in [(5, "inbound", "received"), (4, "outbound", "delivered"),
                                    (3, "outbound", "failed"), (2, "inbound", "received"), (1, "outbound", "read")]:
        message = MessageFactory(conversation=open_conversation, direction=direction, status=status)
        Message.all_tenants.filter(pk=message.pk).update(created_at=now - timedelta(days=days))
        rows.append(message)
    other_number = PhoneNumberFactory(tenant=tenant)
    rows.append(MessageFactory(conversation=ConversationFactory(tenant=tenant, phone_number=other_number,
                                                                contact=open_conversation.contact),
                               direction="outbound", status="sent"))
    MessageFactory(conversation=open_conversation, direction="internal", type="note", status="received")
    return rows


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["data"]]


def test_list_is_newest_first_and_hides_internal_notes(api_client, history):
    assert ids(api_client.get(URL)) == [m.pk for m in reversed(history)]


def test_list_filters(api_client, number, history):
    assert ids(api_client.get(URL, {"phone_number_id": number.pk})) == [m.pk for m in reversed(history[:5])]
    assert ids(api_client.get(URL, {"direction": "inbound"})) == [history[3].pk, history[0].pk]
    assert ids(api_client.get(URL, {"status": "failed"})) == [history[2].pk]
    since = (timezone.now() - timedelta(days=3, hours=1)).isoformat()
    until = (timezone.now() - timedelta(days=1, hours=1)).isoformat()
    assert ids(api_client.get(URL, {"since": since, "until": until})) == [history[3].pk, history[2].pk]
    assert ids(api_client.get(URL, {"since": "2000-01-01T00:00:00Z", "direction": "outbound",
                                    "phone_number_id": number.pk})) == [history[4].pk, history[2].pk, history[1].pk]


@pytest.mark.parametrize("params", [{"since": "yesterday"}, {"until": "2025-13-01"}, {"direction": "internal"},
                                    {"status": "lost"}, {"phone_number_id": "x"}, {"per_page": 0},
                                    {"per_page": 101}, {"page": 0}])
def test_bad_list_parameters_are_400(api_client, params):
    response = api_client.get(URL, params)
    assert response.status_code == 400 and error_code(response) == "invalid_request"


def test_pagination(api_client, history):
    first = api_client.get(URL, {"per_page": 4}).json()
    assert [r["id"] for r in first["data"]] == [m.pk for m in reversed(history)][:4]
    assert first["has_more"] is True and first["next_page"] == 2 and first["page"] == 1 and first["per_page"] == 4
    second = api_client.get(URL, {"per_page": 4, "page": 2}).json()
    assert [r["id"] for r in second["data"]] == [m.pk for m in reversed(history)][4:]
    assert second["has_more"] is False and second["next_page"] is None
    beyond = api_client.get(URL, {"per_page": 4, "page": 9}).json()
    assert beyond["data"] == [] and beyond["has_more"] is False
    assert api_client.get(URL).json()["per_page"] == 20
    assert api_client.get(URL, {"per_page": 100}).status_code == 200


def test_list_item_shape(api_client, number, open_conversation, history):
    inbound = next(r for r in api_client.get(URL, {"direction": "inbound"}).json()["data"])
    assert inbound["from"] == "14155550100" and inbound["to"] == number.display_number
    outbound = api_client.get(URL, {"direction": "outbound", "phone_number_id": number.pk}).json()["data"][0]
    assert outbound["from"] == number.display_number and outbound["to"] == "14155550100"
    assert outbound["contact"] == {"id": open_conversation.contact_id, "wa_id": "14155550100"}
    assert outbound["content"] == {"body": "hello"} and outbound["error"] is None


def test_list_never_counts_and_its_query_count_does_not_grow(api_client, history, django_assert_num_queries):
    api_client.get(URL)  # the key is read (and last_used_at written) once a minute; do that first
    for per_page in (1, 100):
        with django_assert_num_queries(1) as captured:  # the page (the key comes from the cache)
            assert api_client.get(URL, {"per_page": per_page}).status_code == 200
        assert not any("COUNT(" in q["sql"].upper() for q in captured.captured_queries)


def test_detail_with_status_history_error_and_attempts(api_client, tenant, number, open_conversation,
                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        created = send(api_client, {"to": "14155550100", "type": "text", "text": {"body": "Hi"}}).json()
    detail = api_client.get(f"{URL}/{created['id']}")
    assert detail.status_code == 200
    body = detail.json()
    assert [step["status"] for step in body["status_history"]] == ["queued", "sending", "accepted"]
    assert body["status"] == "accepted" and body["wa_message_id"].startswith("wamid.LOCMEM")
    assert body["attempts"] == 1 and body["error"] is None and body["content"] == {"body": "Hi"}
    assert body["context"] is None and body["media_id"] is None

    now = timezone.now()
    failed = MessageFactory(conversation=open_conversation, status="failed", sending_at=now, accepted_at=now,
                            sent_at=now, failed_at=now + timedelta(seconds=1), error_code=131026,
                            error_title="Message undeliverable", error_detail="The number is not on WhatsApp.",
                            attempt_count=1)
    body = api_client.get(f"{URL}/{failed.pk}").json()
    assert [step["status"] for step in body["status_history"]] == ["queued", "sending", "accepted", "sent", "failed"]
    assert body["error"] == {"code": 131026, "title": "Message undeliverable",
                             "detail": "The number is not on WhatsApp."}


def test_detail_of_a_delivered_and_read_message(api_client, open_conversation):
    now = timezone.now()
    read = MessageFactory(conversation=open_conversation, status="read", sending_at=now, accepted_at=now,
                          sent_at=now, delivered_at=now, read_at=now, wa_message_id="wamid.R")
    body = api_client.get(f"{URL}/{read.pk}").json()
    assert [s["status"] for s in body["status_history"]] == ["queued", "sending", "accepted", "sent", "delivered",
                                                             "read"]
    assert all(step["at"] for step in body["status_history"])


def test_a_permanent_provider_error_shows_on_the_message(api_client, number, open_conversation,
                                                         django_capture_on_commit_callbacks):
    locmem.script(ProviderPermanentError("bad", code=131026, title="Message undeliverable",
                                         explanation="Not on WhatsApp."))
    with django_capture_on_commit_callbacks(execute=True):
        created = send(api_client, {"to": "14155550100", "type": "text", "text": {"body": "Hi"}}).json()
    body = api_client.get(f"{URL}/{created['id']}").json()
    assert body["status"] == "failed" and body["error"]["code"] == 131026
    assert body["error"]["title"] == "Message undeliverable"


# -- tenant isolation ------------------------------------------------------------------------

def test_another_tenants_key_sees_nothing(api_client, other_api_client, open_conversation, history):
    message_id = history[0].pk
    assert api_client.get(f"{URL}/{message_id}").status_code == 200
    response = other_api_client.get(f"{URL}/{message_id}")
    assert response.status_code == 404 and error_code(response) == "not_found"
    assert other_api_client.get(URL).json()["data"] == []
    # Nor can it quote or react to this tenant's messages.
    response = send(other_api_client, {"to": "14155550100", "type": "text", "text": {"body": "x"},
                                       "context": {"message_id": str(message_id)}})
    assert response.status_code == 422 and error_code(response) == "invalid_message"


def test_unknown_and_enormous_ids_are_404(api_client, number):
    for message_id in (999999, 10**30, "abc", "1.5"):
        response = api_client.get(f"{URL}/{message_id}")
        assert response.status_code == 404 and error_code(response) == "not_found"


def test_nul_characters_are_refused_not_a_server_error(api_client):
    response = api_client.post("/api/v1/messages", {"to": "14155550100", "type": "text",
                                                    "text": {"body": "a\x00b"}}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
