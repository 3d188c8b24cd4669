"""The PostgreSQL backend's health check: no round trip for a quiet connection, a session the
server ended is seen as gone, and anything else the server said is left to Django's SELECT 1."""

from __future__ import annotations

import select
import time

import pytest
from django.db import connection, connections
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's backend")


@pytest.fixture
def other():
    """A connection of its own, outside the test's transaction."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def _until_heard(wrapper, timeout: float = 5.0) -> None:
    poller = select.poll()
    poller.register(wrapper.connection.fileno(), select.POLLIN)
    deadline = time.monotonic() + timeout
    while not poller.poll(50):
        assert time.monotonic() < deadline, "the server said nothing"


def test_the_settings_use_this_backend(db):
    assert connection.settings_dict["ENGINE"] == "apps.core.pgbackend"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_quiet_connection_is_usable_without_a_round_trip(db, other, monkeypatch):
    def round_trip(self):
        raise AssertionError("SELECT 1 was run")

    monkeypatch.setattr(PostgresDatabaseWrapper, "is_usable", round_trip)
    assert other.is_usable() is True


def test_a_session_the_server_ended_is_not_usable_and_is_replaced(db, other):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [other.connection.info.backend_pid])
    _until_heard(other)
    assert other.is_usable() is False
    other.health_check_done = False
    other.close_if_health_check_failed()  # what Django does before a request's first query
    with other.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_something_harmless_to_read_is_left_to_select_1(db, other):
    sender = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("LISTEN parley_health_check_test")
        with sender.cursor() as cursor:
            cursor.execute("NOTIFY parley_health_check_test")
        _until_heard(other)
        assert other.is_usable() is True
    finally:
        sender.close()
