import pytest

from apps.campaigns.models import CampaignRecipient
from apps.conversations import statuses as s
from apps.conversations.models import Message


@pytest.mark.parametrize("current,new,allowed", [
    (s.QUEUED, s.SENDING, True),
    (s.SENDING, s.ACCEPTED, True),
    (s.ACCEPTED, s.SENT, True),
    (s.SENT, s.DELIVERED, True),
    (s.DELIVERED, s.READ, True),
    (s.SENT, s.READ, True),           # delivered may be skipped
    (s.QUEUED, s.DELIVERED, True),    # a webhook can beat the POST's answer
    (s.READ, s.DELIVERED, False),     # out of order: never backwards
    (s.DELIVERED, s.SENT, False),
    (s.READ, s.READ, False),          # duplicates change nothing
    (s.SENT, s.SENT, False),
    (s.SENT, s.FAILED, True),
    (s.ACCEPTED, s.FAILED, True),
    (s.QUEUED, s.FAILED, True),
    (s.DELIVERED, s.FAILED, False),   # failed replaces only what is below delivered
    (s.READ, s.FAILED, False),
    (s.FAILED, s.FAILED, False),
    (s.FAILED, s.DELIVERED, True),    # a late success report is the truth
    (s.FAILED, s.QUEUED, False),
    (s.FAILED, s.SENDING, False),
    (s.RECEIVED, s.READ, False),      # inbound rows are outside the ladder
])
def test_transition_rule(current, new, allowed):
    assert s.can_transition(current, new) is allowed


def test_sql_helper_agrees_with_the_rule():
    assert set(s.statuses_that_may_become(s.DELIVERED)) == {s.QUEUED, s.SENDING, s.ACCEPTED, s.SENT, s.FAILED}
    assert set(s.statuses_that_may_become(s.FAILED)) == {s.QUEUED, s.SENDING, s.ACCEPTED, s.SENT}
    assert s.statuses_that_may_become(s.QUEUED) == ()


def test_models_use_the_same_status_values():
    ladder = set(s.ORDER) | {s.FAILED}
    assert ladder <= set(Message.Status.values)
    assert ladder <= set(CampaignRecipient.Status.values)
