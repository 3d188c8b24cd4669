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

from django.core.cache import cache
from django.db import connection

ANALYZED_KEY = "parley:analyzed:{database}:{table}"  # databases may share one cache


def analyze(*models, sqlite: bool = False, at_most_every: float | None = None) -> None:
    """ANALYZE each model's table: on PostgreSQL a sample of about 30,000 rows whatever the
    table's size; on SQLite only when ``sqlite`` is set (it reads every row).

    ``at_most_every`` (seconds) skips a table analyzed that recently by any process: every
    planning and feeding task of a campaign asks after its first chunk, and on a table that a
    campaign grows by a thousand rows a second each ANALYZE costs PostgreSQL a fraction of a
    second of CPU that the sends need."""
    if connection.vendor != "postgresql" and not (sqlite and connection.vendor == "sqlite"):
        return
    with connection.cursor() as cursor:
        for model in models:
            table = model._meta.db_table
            key = ANALYZED_KEY.format(database=connection.settings_dict["NAME"], table=table)
            if at_most_every and not cache.add(key, 1, timeout=at_most_every):
                continue
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def vacuum(*models, sqlite: bool = False) -> None:
    """After a bulk load, what autovacuum would do later: on PostgreSQL ``VACUUM (ANALYZE)`` --
    the statistics, and the visibility map without which an index-only scan visits the table
    for every row. Inside a transaction (VACUUM cannot run there), and elsewhere, ``analyze``."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        analyze(*models, sqlite=sqlite)
        return
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(model._meta.db_table)}")


def skip_column_statistics(table: str, columns: tuple[str, ...], *, target: int = 0):
    """A migration step (RunPython) that sets the statistics target of ``columns`` on
    PostgreSQL: 0 for wide columns no query filters on (message bodies, JSON documents), which
    ANALYZE would otherwise sample, sort and measure every time; -1 restores the default."""

    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        quote = schema_editor.quote_name
        schema_editor.execute(f"ALTER TABLE {quote(table)} "
                              + ", ".join(f"ALTER COLUMN {quote(c)} SET STATISTICS {int(target)}" for c in columns))

    return run
