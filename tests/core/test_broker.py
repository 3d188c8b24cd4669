import os

import pytest
from kombu import Connection

from apps.core.broker import Transport
from config.celery import app


def _connection(tmp_path):
    folder = str(tmp_path)
    return Connection("filesystem://", transport=Transport, transport_options={
        "data_folder_in": folder, "data_folder_out": folder, "processed_folder": folder, "store_processed": False})


def test_a_message_goes_through_whole(tmp_path):
    with _connection(tmp_path) as conn:
        queue = conn.SimpleQueue("bell")
        queue.put({"slot": 0})
        message = queue.get(timeout=1)
        assert message.payload == {"slot": 0}
        message.ack()
        queue.close()
    assert [n for n in os.listdir(tmp_path) if n.endswith(".msg")] == []


def test_a_message_still_being_written_is_not_taken(tmp_path):
    with _connection(tmp_path) as conn:
        queue = conn.SimpleQueue("bell")
        # What a writer leaves while it writes: readers must skip it, not read it half-written.
        (tmp_path / ".1_abc.bell.msg.part").write_bytes(b"")
        queue.put({"slot": 1})
        message = queue.get(timeout=1)
        assert message.payload == {"slot": 1}
        message.ack()
        assert (tmp_path / ".1_abc.bell.msg.part").exists()
        queue.close()


def test_the_embedded_broker_uses_it(settings):
    if not settings.CELERY_BROKER_URL.startswith("filesystem"):
        pytest.skip("the suite runs on another broker")
    with app.connection_for_write() as conn:
        assert isinstance(conn.transport, Transport)
