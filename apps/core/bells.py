"""Bells -- "there is work: make sure a task will do it" -- rung once a transaction commits, and
on the request paths rung by a thread of the process a moment later, once for every request
of that moment.

The dispatcher's and the webhook applier's bells are a cache operation (and, when no task is
already on its way, a broker publish) after the commit of each API send and each webhook
POST: a round trip to Redis, and a thread switch, on the request path. With
``PARLEY_BELL_DELAY_SECONDS`` above 0 a request only hands its bell to this process's
ringing thread, which waits that long to gather the others and rings each distinct bell once.
Ringing later is safe because a bell is only ever rung after the rows it announces are
committed: whatever task it finds, or starts, finds them. A bell that is never rung (the
process dies first, or the cache is down) delays the work and loses nothing: the sweepers
re-ring anything left waiting, which is how a lost bell has always been covered.

At 0 (the test settings, and when Celery runs tasks eagerly) a bell rings in the committing
thread, as Django's ``on_commit`` runs it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Hashable

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


class _Ringer:
    """One thread per process that rings the bells handed to it, each distinct key once per
    round."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a forked worker starts its own thread

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: dict[Hashable, Callable[[], None]] = {}
        self._thread: threading.Thread | None = None

    def add(self, key: Hashable, ring: Callable[[], None]) -> None:
        with self._lock:
            self._pending[key] = ring
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="parley-bells", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(max(0.0, settings.PARLEY_BELL_DELAY_SECONDS))  # gather this moment's bells
            with self._lock:
                self._wake.clear()
                bells, self._pending = self._pending, {}
            for key, ring in bells.items():
                try:
                    ring()
                except Exception:
                    # The rows are committed; the sweeper re-rings what is left waiting.
                    logger.exception("could not ring the bell %r; the sweeper will find its work", key)


_ringer = _Ringer()


def ring_after_commit(key: Hashable, ring: Callable[[], None]) -> None:
    """Call ``ring()`` once the current transaction commits (at once outside one): from the
    process's ringing thread, gathered with the other bells of the same ``key``, when
    ``PARLEY_BELL_DELAY_SECONDS`` is above 0; in the committing thread otherwise."""
    if settings.PARLEY_BELL_DELAY_SECONDS > 0:
        transaction.on_commit(lambda: _ringer.add(key, ring))
    else:
        transaction.on_commit(ring)
