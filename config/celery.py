"""Celery application. Queues and routes live in settings (CELERY_TASK_ROUTES)."""

import gc
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("parley")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _freeze_what_was_imported(**kwargs) -> None:
    """A worker process's imports (Django, the apps, the backends) live as long as it does:
    frozen, the cyclic collector stops walking them, and a send batch is not paused for tens of
    milliseconds by a full collection."""
    gc.collect()
    gc.freeze()
