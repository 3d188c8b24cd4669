"""Fresh planner statistics after bulk writes.

PostgreSQL's autovacuum analyzes a table once a tenth of it has changed, and comes round about a
minute later: a tenant that bulk-loads contacts, or a campaign that adds 100,000 messages in a
couple of minutes, is invisible to the planner's statistics meanwhile. Believing a tenant has a
few hundred messages, PostgreSQL answers ``tenant_id = 7 AND id IN (250 ids)`` by walking the
tenant's whole index instead of the primary key: 100 ms instead of 1. Bulk writers call
:func:`analyze` at sensible intervals. On SQLite, ANALYZE reads whole tables, so only a one-off
bulk load (the demo seed) asks for it there.
"""

from __future__ import annotations

from django.db import connection


def analyze(*models, sqlite: bool = False) -> None:
    """ANALYZE each model's table: on PostgreSQL a sample of about 30,000 rows whatever the
    table's size; on SQLite only when ``sqlite`` is set (it reads every row)."""
    if connection.vendor != "postgresql" and not (sqlite and connection.vendor == "sqlite"):
        return
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
