"""The one place where the delivery-status ordering rule lives (design.md):

    queued < sending < accepted < sent < delivered < read

``failed`` may replace anything below ``delivered``; nothing replaces ``read``. Late,
duplicate and out-of-order webhooks therefore change nothing they should not. Campaign
recipients follow the same rule with two extra states before the message exists
(``pending``) and beside it (``skipped``, terminal).
"""

from __future__ import annotations

QUEUED = "queued"
SENDING = "sending"
ACCEPTED = "accepted"
SENT = "sent"
DELIVERED = "delivered"
READ = "read"
FAILED = "failed"
RECEIVED = "received"  # inbound messages; outside the outbound ladder

ORDER: tuple[str, ...] = (QUEUED, SENDING, ACCEPTED, SENT, DELIVERED, READ)
RANK: dict[str, int] = {status: rank for rank, status in enumerate(ORDER)}
# ``failed`` outranks everything that may still fail (below delivered) and nothing above.
FAILED_REPLACES_BELOW = RANK[DELIVERED]
TERMINAL = frozenset({READ, FAILED})


def can_transition(current: str, new: str) -> bool:
    """Whether a message in ``current`` may move to ``new``."""
    if current == new:
        return False
    if current == FAILED:
        # A late success report for a row we marked failed (e.g. a transient-looking error
        # that Meta delivered anyway) is the truth: adopt sent/delivered/read.
        return new in (SENT, DELIVERED, READ)
    if new == FAILED:
        return RANK.get(current, -1) < FAILED_REPLACES_BELOW
    if current not in RANK or new not in RANK:
        return False
    return RANK[new] > RANK[current]


def statuses_that_may_become(new: str) -> tuple[str, ...]:
    """Every current status from which ``new`` is a legal move -- for bulk conditional
    UPDATE ... WHERE status IN (...) statements, so the rule holds in SQL too."""
    return tuple(s for s in (*ORDER, FAILED) if can_transition(s, new))
