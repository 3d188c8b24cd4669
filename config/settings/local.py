"""Development: ``make run``. Embedded defaults, debug on, insecure keys acceptable."""

import os

from .base import *  # noqa: F403
from .env import env_bool, env_str

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "") or "django-insecure-parley-development-only-key"
# A fixed development key so that `make run` restarts can read what they stored. Never used
# in production: production.py refuses to start without FIELD_ENCRYPTION_KEY.
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY", "") or "cGFybGV5LWRldmVsb3BtZW50LW9ubHkta2V5LTMyYiE="
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
os.environ.setdefault("PARLEY_ENV", "local")
