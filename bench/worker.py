"""A Celery worker for the benchmarks that says when it is ready.

``python -m bench.worker READY_FILE -- <celery worker options>`` runs Parley's Celery app (the
same as ``celery -A config worker``) and creates READY_FILE when the worker has started its pool
and consumer (Celery's ``worker_ready`` signal), so a benchmark starts its clock only once the
worker can take work -- with any broker, including the filesystem one that cannot answer pings.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] != "--":
        raise SystemExit("usage: python -m bench.worker READY_FILE -- <celery worker options>")
    ready = Path(argv[0])

    from celery.signals import worker_ready

    from config.celery import app

    @worker_ready.connect(weak=False)
    def touch(**kwargs: object) -> None:
        ready.touch()

    app.worker_main(argv=["worker", *argv[2:]])


if __name__ == "__main__":
    main(sys.argv[1:])
