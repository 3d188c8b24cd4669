"""A rare search lists just the conversations its words were found in; a common one looks among
the newest conversations first and through the whole workspace only when they do not fill the
page. Either way the page holds the newest matches, in order, and keyset pages go on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.conversations import inbox_selectors as sel
from apps.conversations.inbox_selectors import InboxFilters
from tests.factories import ContactFactory, ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["rare", "common"])
def path(request, monkeypatch):
    """Every test runs both ways: words found in few rows, and words found in too many rows to
    list them all (RARE_SEARCH_MAX of 0)."""
    if request.param == "common":
        monkeypatch.setattr(sel, "RARE_SEARCH_MAX", 0)
    return request.param


@pytest.fixture
def six(tenant, number, monkeypatch, path):
    """Six open conversations, newest first; 'needle' is in a message of the 2nd and the 5th,
    the 4th customer is called Needleman, each ends with "Hello" (the list's preview), and the
    window holds four conversations."""
    monkeypatch.setattr(sel, "SEARCH_WINDOW", 4)
    now = timezone.now()
    rows = []
    for i in range(6):
        contact = ContactFactory(tenant=tenant, wa_id=f"1415555{i:04d}", name="Ada Needleman" if i == 3 else f"C{i}")
        conversation = ConversationFactory(tenant=tenant, phone_number=number, contact=contact, status="open",
                                           last_message_at=now - timedelta(minutes=i), last_message_preview="Hello")
        MessageFactory(conversation=conversation, direction="inbound", text_preview="a haystack")
        if i in (1, 4):
            MessageFactory(conversation=conversation, direction="inbound", text_preview="the NEEDLE is here")
        MessageFactory(conversation=conversation, direction="inbound", text_preview="Hello")
        rows.append(conversation)
    return rows


def _page(tenant, user, q, *, limit, cursor=None):
    rows, next_cursor = sel.conversation_page(tenant=tenant, user=user, filters=InboxFilters(q=q), limit=limit,
                                              cursor=cursor)
    return [row.pk for row in rows], next_cursor


def test_matches_inside_and_outside_the_window_in_order(scoped, agent, six):
    found, cursor = _page(scoped, agent, "needle", limit=10)
    assert found == [six[1].pk, six[3].pk, six[4].pk] and cursor is None


def test_a_page_is_the_newest_matches(scoped, agent, six, path, django_assert_max_num_queries):
    # rare: contacts, messages, the matches' keys, their rows, the labels; common (a page filled
    # inside the window): the contacts and messages found too many, the window, its matches, the labels
    with django_assert_max_num_queries(5):
        found, cursor = _page(scoped, agent, "needle", limit=1)
    assert found == [six[1].pk] and cursor is not None
    found, cursor = _page(scoped, agent, "needle", limit=1, cursor=cursor)
    assert found == [six[3].pk]
    found, cursor = _page(scoped, agent, "needle", limit=1, cursor=cursor)
    assert found == [six[4].pk] and cursor is None


def test_name_number_and_preview_match_outside_the_window(scoped, agent, six):
    assert _page(scoped, agent, "needleman", limit=10)[0] == [six[3].pk]
    assert _page(scoped, agent, "+1 415 555 0005", limit=10)[0] == [six[5].pk]
    assert _page(scoped, agent, "hello", limit=10)[0] == [row.pk for row in six]
    assert _page(scoped, agent, "nowhere at all", limit=10) == ([], None)
