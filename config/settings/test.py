"""Tests: SQLite and eager Celery by default; DATABASE_URL / CELERY_BROKER_URL switch to the
real services (see .ci/run)."""

from .base import *  # noqa: F403
from .base import BROKER_DIR, CELERY_BROKER_URL, DATABASES, VAR_DIR, filesystem_broker_options
from .env import env_bool

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"
FIELD_ENCRYPTION_KEY = "dGVzdC1maWVsZC1lbmNyeXB0aW9uLWtleS0zMi1ieXQ="
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", True)
# Bells ring in the committing thread, so a test sees the task's work when the commit returns
# (tests/core/test_bells.py tests the ringing thread).
PARLEY_BELL_DELAY_SECONDS = 0.0
# Eager tasks run inside the test's own call, which must not sleep; the workers of tests/e2e
# (tasks not eager) gather webhook callbacks as in production.
if CELERY_TASK_ALWAYS_EAGER:
    PARLEY_WEBHOOK_GATHER_SECONDS = 0.0
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# End-to-end tests start real worker processes that must see the test database, so an SQLite
# test database lives in a file instead of memory.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_parley.sqlite3")}
# Test runs get their own broker folders, never the ones `make run` uses.
if CELERY_BROKER_URL.startswith("filesystem"):
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(BROKER_DIR.parent / "test-broker", polling_interval=0.05)
WEBHOOKS_ALLOW_PRIVATE_URLS = True
PARLEY_TRUSTED_MEDIA_HOSTS = ("media.locmem.invalid",)

# Everything around the provider is tested against the recording backend; backend tests
# instantiate the real classes directly, and end-to-end tests run real workers
# (PARLEY_REAL_BACKENDS=1) with the real backends against the Cloud API emulator.
if not env_bool("PARLEY_REAL_BACKENDS", False):
    WHATSAPP_BACKENDS = {
        "meta_cloud": "apps.providers.backends.locmem.LocmemBackend",
        "gupshup": "apps.providers.backends.locmem.LocmemBackend",
        "gupshup_partner": "apps.providers.backends.locmem.LocmemBackend",
    }
