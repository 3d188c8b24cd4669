"""Tests: SQLite and eager Celery by default; DATABASE_URL / CELERY_BROKER_URL switch to the
real services (see .ci/run)."""

from .base import *  # noqa: F403
from .env import env_bool

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"
FIELD_ENCRYPTION_KEY = "dGVzdC1maWVsZC1lbmNyeXB0aW9uLWtleS0zMi1ieXQ="
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", True)
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
