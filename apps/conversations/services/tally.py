"""Folding the conversation tally's deltas (models.ConversationTally) into one row per group."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.db import connection, transaction

from apps.core.bulk import insert_rows

from ..models import ConversationTally
from ..tally_triggers import COLUMNS, TABLE


@dataclass
class TallyCompaction:
    read: int = 0  # delta rows folded
    written: int = 0  # rows they became (groups whose sum is not zero)


# The groups with something to fold: more than one row, or a row that counts nothing. A group
# already folded into one row is left alone, so a quiet minute writes nothing (assignee_id may
# be NULL, which = never matches: COALESCE makes "no assignee" a value of its own).
_FOLDABLE = (f"(tenant_id, phone_number_id, COALESCE(assignee_id, 0), status) IN ("
             f"SELECT tenant_id, phone_number_id, COALESCE(assignee_id, 0), status FROM {TABLE} "
             f"GROUP BY tenant_id, phone_number_id, COALESCE(assignee_id, 0), status "
             f"HAVING COUNT(*) > 1 OR SUM(n) = 0)")


def conversation_tallies_compact() -> TallyCompaction:
    """Replace the delta rows of every group (workspace, number, assignee, status) that has more
    than one by a single row holding their sum; groups that sum to zero (a deleted workspace's
    or number's) disappear. Groups already folded are not rewritten.

    Exact under concurrent writers: the rows summed are exactly the rows this DELETE removed
    (``RETURNING``). A delta that a transaction still open inserted is invisible to it, neither
    deleted nor summed, and stays to be folded next time. Counts read meanwhile see the deltas
    before or the sums after, never both."""
    report = TallyCompaction()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE {_FOLDABLE} RETURNING {COLUMNS}")
        sums: Counter[tuple] = Counter()
        for *group, n in cursor.fetchall():
            sums[tuple(group)] += n
            report.read += 1
        rows = [{"tenant_id": tenant_id, "phone_number_id": phone_number_id, "assignee_id": assignee_id,
                 "status": status, "n": n}
                for (tenant_id, phone_number_id, assignee_id, status), n in sums.items() if n]
        insert_rows(ConversationTally, rows, {})
        report.written = len(rows)
    return report
