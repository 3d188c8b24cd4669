import datetime

import pytest
from django.db import connection
from django.utils import timezone

from apps.core import db as core_db
from apps.tenants.models import Tenant

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's loaders")


@postgresql_only
@pytest.mark.django_db
def test_timestamptz_values_load_through_the_native_loader_in_utc():
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(
        connection.connection.adapters.types["timestamptz"].oid, 0)
    assert loader is core_db._LOADER
    with connection.cursor() as cursor:
        cursor.execute("SELECT '2020-01-01 12:00:00.123456+05'::timestamptz, NULL::timestamptz, "
                       "'0099-01-01 00:00:00+00'::timestamptz")
        moment, missing, ancient = cursor.fetchone()
    assert moment == datetime.datetime(2020, 1, 1, 7, 0, 0, 123456, tzinfo=datetime.UTC)
    assert moment.tzinfo is datetime.UTC  # what Django's own loader answers
    assert missing is None
    assert ancient == datetime.datetime(99, 1, 1, tzinfo=datetime.UTC)


@postgresql_only
@pytest.mark.django_db
def test_model_datetimes_round_trip_to_the_microsecond():
    at = timezone.now().replace(microsecond=654321)
    tenant = Tenant.objects.create(name="Clock", slug="clock")
    Tenant.objects.filter(pk=tenant.pk).update(created_at=at)
    assert Tenant.objects.get(pk=tenant.pk).created_at == at


@postgresql_only
def test_a_session_in_another_time_zone_keeps_djangos_loader():
    calls = []

    class FakeConnection:
        vendor = "postgresql"
        timezone = datetime.UTC

        class connection:  # noqa: N801  (psycopg's connection, as Django holds it)
            class info:  # noqa: N801
                @staticmethod
                def parameter_status(name):
                    return "Europe/Madrid"

            class adapters:  # noqa: N801
                @staticmethod
                def register_loader(*args):
                    calls.append(args)

    core_db.use_fast_timestamptz_loader(sender=None, connection=FakeConnection)
    assert calls == []
    FakeConnection.timezone = None  # USE_TZ = False
    core_db.use_fast_timestamptz_loader(sender=None, connection=FakeConnection)
    assert calls == []
