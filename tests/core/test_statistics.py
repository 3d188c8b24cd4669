import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.campaigns.models import CampaignRecipient
from apps.conversations.models import Message
from apps.core.statistics import analyze, vacuum
from apps.tenants.models import Tenant

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's ANALYZE")


def _analyzes(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if q["sql"].startswith("ANALYZE")]


@postgresql_only
@pytest.mark.django_db
def test_a_table_analyzed_recently_by_anyone_is_skipped_when_asked_at_most_every():
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        analyze(Tenant, Message, at_most_every=60)
        analyze(Tenant, at_most_every=60)  # another task, a moment later
        analyze(Message, CampaignRecipient, at_most_every=60)
    assert _analyzes(captured) == ['ANALYZE "tenants_tenant"', 'ANALYZE "conversations_message"',
                                   'ANALYZE "campaigns_campaignrecipient"']


@postgresql_only
@pytest.mark.django_db
def test_without_an_interval_every_call_analyzes():
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        analyze(Tenant, at_most_every=60)
        analyze(Tenant)
    assert len(_analyzes(captured)) == 2


@pytest.mark.django_db
def test_sqlite_is_analyzed_only_when_asked():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's ANALYZE")
    with CaptureQueriesContext(connection) as captured:
        analyze(Tenant)
        analyze(Tenant, sqlite=True)
    assert len(_analyzes(captured)) == 1


@postgresql_only
@pytest.mark.django_db
@pytest.mark.parametrize(("table", "columns"), [
    ("conversations_message", {"content", "text_preview", "pricing", "error_title", "error_detail"}),
    ("campaigns_campaignrecipient", {"variables"}),
])
def test_analyze_skips_the_wide_columns_no_query_filters_on(table, columns):
    with connection.cursor() as cursor:
        cursor.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                       "AND NOT attisdropped AND attstattarget = 0", [table])
        assert {row[0] for row in cursor.fetchall()} == columns


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_vacuum_after_a_bulk_load_runs_outside_a_transaction_and_analyzes_inside_one():
    from django.db import transaction

    with CaptureQueriesContext(connection) as captured:
        vacuum(Tenant)
        with transaction.atomic():
            vacuum(Tenant)
    statements = [q["sql"] for q in captured.captured_queries if q["sql"].startswith(("VACUUM", "ANALYZE"))]
    assert statements == ['VACUUM (ANALYZE) "tenants_tenant"', 'ANALYZE "tenants_tenant"']
