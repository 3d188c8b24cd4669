from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ContactFactory, ConversationFactory, MessageFactory, PhoneNumberFactory

URL = "/api/v1/conversations"


def error_code(response) -> str:
    return response.json()["error"]["code"]


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["data"]]


@pytest.fixture
def conversations(tenant, number):
    """Three conversations on ``number`` and one on a second number, most recent first."""
    now = timezone.now()
    second = PhoneNumberFactory(tenant=tenant)
    return [
        ConversationFactory(tenant=tenant, phone_number=number, last_message_at=now - timedelta(minutes=1),
                            contact=ContactFactory(tenant=tenant, wa_id="14155550101", name="Ada"),
                            window_expires_at=now + timedelta(hours=5), last_message_preview="Hi",
                            last_message_type="text", last_message_direction="inbound", unread_count=2),
        ConversationFactory(tenant=tenant, phone_number=second, last_message_at=now - timedelta(minutes=2),
                            contact=ContactFactory(tenant=tenant, wa_id="14155550102")),
        ConversationFactory(tenant=tenant, phone_number=number, last_message_at=now - timedelta(minutes=3),
                            status="resolved", contact=ContactFactory(tenant=tenant, wa_id="14155550103"),
                            window_expires_at=now - timedelta(hours=1)),
        ConversationFactory(tenant=tenant, phone_number=number, last_message_at=now - timedelta(minutes=4),
                            status="pending", contact=ContactFactory(tenant=tenant, wa_id="14155550104")),
    ]


def test_list_most_recent_first_with_its_shape(api_client, number, conversations):
    response = api_client.get(URL)
    assert ids(response) == [c.pk for c in conversations]
    first = response.json()["data"][0]
    assert first["contact"] == {"id": conversations[0].contact_id, "wa_id": "14155550101", "name": "Ada"}
    assert first["phone_number_id"] == number.pk and first["status"] == "open" and first["window_open"] is True
    assert first["last_message_preview"] == "Hi" and first["unread_count"] == 2 and first["assignee_id"] is None
    assert response.json()["data"][2]["window_open"] is False


def test_list_filters(api_client, number, conversations):
    assert ids(api_client.get(URL, {"status": "resolved"})) == [conversations[2].pk]
    assert ids(api_client.get(URL, {"phone_number_id": number.pk})) == [conversations[0].pk, conversations[2].pk,
                                                                        conversations[3].pk]
    assert ids(api_client.get(URL, {"wa_id": "+1 415 555 0102"})) == [conversations[1].pk]
    assert ids(api_client.get(URL, {"wa_id": "14155550104", "status": "pending",
                                    "phone_number_id": number.pk})) == [conversations[3].pk]
    assert ids(api_client.get(URL, {"wa_id": "12"})) == []  # not a possible number: nobody has it


@pytest.mark.parametrize("params", [{"status": "closed"}, {"phone_number_id": "one"},
                                    {"per_page": 0}, {"per_page": 101}, {"page": "last"}])
def test_bad_parameters_are_400(api_client, params):
    response = api_client.get(URL, params)
    assert response.status_code == 400 and error_code(response) == "invalid_request"


def test_pagination(api_client, conversations):
    first = api_client.get(URL, {"per_page": 3}).json()
    assert len(first["data"]) == 3 and first["has_more"] is True and first["next_page"] == 2
    second = api_client.get(URL, {"per_page": 3, "page": 2}).json()
    assert [r["id"] for r in second["data"]] == [conversations[3].pk] and second["has_more"] is False
    beyond = api_client.get(URL, {"per_page": 3, "page": 5}).json()
    assert beyond["data"] == [] and beyond["has_more"] is False and beyond["next_page"] is None


def test_detail(api_client, conversations):
    response = api_client.get(f"{URL}/{conversations[1].pk}")
    assert response.status_code == 200 and response.json()["contact"]["wa_id"] == "14155550102"


def test_messages_of_one_conversation(api_client, tenant, conversations, django_assert_num_queries):
    conversation = conversations[0]
    thread = [MessageFactory(conversation=conversation, direction=direction, status=status)
              for direction, status in [("inbound", "received"), ("outbound", "read"), ("inbound", "received")]]
    MessageFactory(conversation=conversation, direction="internal", type="note", status="received")
    MessageFactory(conversation=conversations[1], direction="inbound", status="received")
    url = f"{URL}/{conversation.pk}/messages"
    assert ids(api_client.get(url)) == [m.pk for m in reversed(thread)]
    page = api_client.get(url, {"per_page": 2, "page": 2}).json()
    assert [r["id"] for r in page["data"]] == [thread[0].pk] and page["has_more"] is False
    assert page["data"][0]["conversation_id"] == conversation.pk and page["data"][0]["direction"] == "inbound"
    for per_page in (1, 100):
        with django_assert_num_queries(2) as captured:  # the conversation, the page (the key is cached)
            assert api_client.get(url, {"per_page": per_page}).status_code == 200
        assert not any("COUNT(" in q["sql"].upper() for q in captured.captured_queries)
    assert api_client.get(url, {"per_page": 101}).status_code == 400


def test_another_tenants_key_gets_404(api_client, other_api_client, conversations):
    conversation = conversations[0]
    MessageFactory(conversation=conversation, direction="inbound", status="received")
    for path in (f"{URL}/{conversation.pk}", f"{URL}/{conversation.pk}/messages"):
        assert api_client.get(path).status_code == 200
        response = other_api_client.get(path)
        assert response.status_code == 404 and error_code(response) == "not_found"
    assert other_api_client.get(URL).json()["data"] == []


def test_unknown_conversation_is_404(api_client, number):
    for conversation_id in (31337, 10**30, "abc", "null,null", "-1"):
        for path in (f"{URL}/{conversation_id}", f"{URL}/{conversation_id}/messages"):
            response = api_client.get(path)
            assert response.status_code == 404 and error_code(response) == "not_found"
