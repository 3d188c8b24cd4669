"""Bells rung after commit by the process's ringing thread: never before the commit, each
distinct bell once per moment however many requests rang it, a failing bell logged without
stopping the others; at a delay of 0, in the committing thread."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from apps.conversations.services import message_send
from apps.conversations.services.dispatch import _bell_key
from apps.core.bells import ring_after_commit
from apps.core.scoping import tenant_scope
from tests.factories import ContactFactory, ConversationFactory, PhoneNumberFactory


def _wait_for(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not rung in time"
        time.sleep(0.01)


@pytest.fixture
def gathering(settings):
    settings.PARLEY_BELL_DELAY_SECONDS = 0.05


def test_bells_ring_after_the_commit_once_per_key_from_another_thread(gathering, transactional_db):
    rung: list[tuple[str, str]] = []
    done = threading.Event()

    def bell(name: str):
        def ring() -> None:
            rung.append((name, threading.current_thread().name))
            if len(rung) == 2:
                done.set()
        return ring

    with transaction.atomic():
        for _ in range(5):
            ring_after_commit("a", bell("a"))
        ring_after_commit("b", bell("b"))
        time.sleep(0.1)
        assert rung == []  # nothing before the commit
    assert done.wait(5)
    time.sleep(0.1)  # nothing more comes
    assert sorted(rung) == [("a", "parley-bells"), ("b", "parley-bells")]


def test_a_failing_bell_is_logged_and_the_others_still_ring(gathering, transactional_db, caplog):
    rung = threading.Event()

    def broken() -> None:
        raise ConnectionError("the cache is down")

    ring_after_commit("broken", broken)
    ring_after_commit("fine", rung.set)
    assert rung.wait(5)
    _wait_for(lambda: "could not ring the bell 'broken'" in caplog.text)
    later = threading.Event()
    ring_after_commit("later", later.set)
    assert later.wait(5)  # the thread goes on


def test_at_a_delay_of_0_the_bell_rings_in_the_committing_thread(settings, db, django_capture_on_commit_callbacks):
    settings.PARLEY_BELL_DELAY_SECONDS = 0
    rung = []
    with django_capture_on_commit_callbacks(execute=True):
        ring_after_commit("now", lambda: rung.append(threading.current_thread().name))
        assert rung == []
    assert rung == [threading.current_thread().name]


def test_sends_of_one_moment_queue_one_dispatch_task(gathering, tenant, django_capture_on_commit_callbacks,
                                                     monkeypatch):
    from apps.conversations import tasks

    number = PhoneNumberFactory(tenant=tenant, phone_number_id="5550009", waba_id="waba-9")
    queued = []
    monkeypatch.setattr(tasks.message_dispatch_task, "apply_async", lambda **kwargs: queued.append(kwargs))
    cache.delete(_bell_key(number.pk))
    with tenant_scope(tenant), django_capture_on_commit_callbacks(execute=True):
        for i in range(5):
            contact = ContactFactory(tenant=tenant, wa_id=f"1415555020{i}")
            ConversationFactory(tenant=tenant, phone_number=number, contact=contact,
                                window_expires_at=timezone.now() + timedelta(hours=1))
            message_send(tenant=tenant, to=contact.wa_id, type="text", content={"body": f"Hi {i}"},
                         phone_number=number)
    _wait_for(lambda: queued)
    time.sleep(0.15)
    assert queued == [{"kwargs": {"tenant_id": tenant.pk, "phone_number_id": number.pk}, "countdown": None}]
    cache.delete(_bell_key(number.pk))
