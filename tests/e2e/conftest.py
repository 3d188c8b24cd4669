from __future__ import annotations

from pathlib import Path

import pytest
from django.core.cache import cache

from config.celery import app as celery_app

from .harness import ROOT, Receiver, subprocess_env


@pytest.fixture
def e2e_logs(request) -> Path:
    folder = ROOT / "test-artifacts" / "e2e" / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.log"):
        old.unlink()
    return folder


@pytest.fixture
def real_broker(transactional_db):
    """Tasks go to the configured broker (filesystem or Redis) for real workers, not eagerly."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as conn:
        for queue in ("sending", "webhooks", "events", "default"):
            conn.default_channel.queue_purge(queue)
    # The bells of the tasks just purged: a bell says "a task is on its way" for a few seconds,
    # and a callback stored meanwhile rings nobody until beat's sweeper (which these tests do
    # not run) rings again. The previous test's last bell must not silence this one's first.
    cache.clear()
    yield
    celery_app.conf.task_always_eager = previous


RECONCILE_WINDOW_SECONDS = 6
QUEUED_STALE_SECONDS = 2


@pytest.fixture
def e2e_env(live_server, real_broker, settings) -> dict[str, str]:
    # The sweeper may run here (tests call it) or in a worker: both use the same windows.
    settings.PARLEY_RECONCILE_WINDOW_SECONDS = RECONCILE_WINDOW_SECONDS
    settings.PARLEY_QUEUED_STALE_SECONDS = QUEUED_STALE_SECONDS
    return subprocess_env(PARLEY_RECONCILE_WINDOW_SECONDS=str(RECONCILE_WINDOW_SECONDS),
                          PARLEY_QUEUED_STALE_SECONDS=str(QUEUED_STALE_SECONDS))


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()
