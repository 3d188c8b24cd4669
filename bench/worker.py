"""A Celery worker for the benchmarks that says when it is ready.

``python -m bench.worker READY_FILE [--nice N] -- <celery worker options>`` runs Parley's Celery
app (the same as ``celery -A config worker``) and creates READY_FILE when the worker has started
its pool and consumer (Celery's ``worker_ready`` signal), so a benchmark starts its clock only
once the worker can take work -- with any broker, including the filesystem one that cannot
answer pings. ``--nice N`` lowers the worker's CPU priority (its pool inherits it), as
``nice -n N celery worker`` would, and that of its session's autogroup: where the kernel groups
each session's processes (``/proc/sys/kernel/sched_autogroup_enabled``), CPU time is shared
between the groups first, so a process's own nice only ranks it within its session -- the
benchmarks start each process in a session of its own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _autogroup_nice(nice: int) -> None:
    group = Path("/proc/self/autogroup")
    if group.exists():  # Linux with CONFIG_SCHED_AUTOGROUP
        try:
            group.write_text(f"{nice}\n")
        except OSError as exc:
            print(f"bench.worker: could not set the autogroup's nice to {nice}: {exc}", file=sys.stderr)


def main(argv: list[str]) -> None:
    ready, argv = Path(argv[0]) if argv else None, argv[1:]
    if len(argv) >= 2 and argv[0] == "--nice":
        nice = int(argv[1])
        os.nice(nice)
        _autogroup_nice(nice)
        argv = argv[2:]
    if ready is None or not argv or argv[0] != "--":
        raise SystemExit("usage: python -m bench.worker READY_FILE [--nice N] -- <celery worker options>")

    from celery.signals import worker_ready

    from config.celery import app

    @worker_ready.connect(weak=False)
    def touch(**kwargs: object) -> None:
        ready.touch()

    app.worker_main(argv=["worker", *argv[1:]])


if __name__ == "__main__":
    main(sys.argv[1:])
