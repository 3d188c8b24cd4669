"""Settings shared by every environment. Everything configurable comes from the environment
(README, "Environment"); the embedded defaults need nothing but a writable ``var/``."""

from pathlib import Path

import dj_database_url
from kombu import Exchange, Queue

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("PARLEY_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
# Comma-separated Fernet keys; the first encrypts, all decrypt (rotation).
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY", "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "template_partials",
    "apps.core",
    "apps.tenants",
    "apps.phone_numbers",
    "apps.providers",
    "apps.contacts",
    "apps.message_templates",
    "apps.conversations",
    "apps.campaigns",
    "apps.webhooks",
    "apps.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]
# The paths only programs call (the REST API, the Meta-compatible endpoint, the providers'
# webhooks) authenticate each request by a key or a signature and keep no session: served by
# config.wsgi, they skip the browser's layers above (apps/core/wsgi.py).
MACHINE_PATH_PREFIXES = ["/api/v1/", "/graph/", "/webhooks/"]
MACHINE_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.tenants.context_processors.workspace",
            ],
            "builtins": ["apps.core.templatetags.parley"],
        },
    }
]


def database_config(url: str) -> dict:
    config = dj_database_url.parse(url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # web, worker and beat share one file: WAL lets readers run beside the writer and
        # IMMEDIATE transactions take the write lock up front instead of failing mid-way.
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    else:
        # Django's backend, with a health check that needs no round trip (apps/core/pgbackend).
        if config["ENGINE"] == "django.db.backends.postgresql":
            config["ENGINE"] = "apps.core.pgbackend"
        config["CONN_HEALTH_CHECKS"] = True
        # Only the fixed statements of apps/core/rows.py ask to be prepared (Django's queries bind
        # their values on the client, and such statements are never prepared); a threshold no
        # statement reaches keeps psycopg from preparing anything else by itself. None, Django's
        # default, would refuse even the statements that ask.
        config.setdefault("OPTIONS", {})["prepare_threshold"] = 2**31 - 1
    return config


DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'parley.sqlite3'}")
DATABASES = {"default": database_config(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Django's ModelBackend, with the user of each request remembered in Redis (apps/tenants/identity.py).
AUTHENTICATION_BACKENDS = ["apps.tenants.identity.CachedModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "tenants:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Redis (rate limiter and cache when set) ---------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "apps.core.cache.RedisCache", "LOCATION": REDIS_URL}}
    # Every page reads the session: from Redis, written through to the database (a query
    # fewer per request; sessions survive a Redis restart).
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    # Shared by web, worker and beat on this machine (dispatch and webhook bells, the API
    # throttle), unlike a per-process memory cache. Production sets REDIS_URL.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / "cache")}}

# --- Celery -------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}


def filesystem_broker_options(folder: Path, polling_interval: float = 0.1) -> dict:
    """Celery's filesystem transport: every process on this machine shares these folders."""
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
        "polling_interval": polling_interval,
    }


if CELERY_BROKER_URL.startswith("filesystem"):
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(BROKER_DIR)
    # kombu's transport, with messages written whole before a reader can take them.
    CELERY_BROKER_TRANSPORT = "apps.core.broker:Transport"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_TASK_TIME_LIMIT = 5 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 4 * 60
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Queues: a slow import (default) never delays a webhook or a send. Each can get its own pool.
CELERY_TASK_DEFAULT_QUEUE = "default"
PARLEY_QUEUES = ("sending", "webhooks", "events", "default")
# Each queue has its own direct exchange and routing key: bound to one shared default key,
# every queue would get a copy of every task.
CELERY_TASK_QUEUES = [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in PARLEY_QUEUES]
CELERY_TASK_ROUTES = {
    "apps.conversations.tasks.*": {"queue": "sending"},
    "apps.providers.tasks.*": {"queue": "webhooks"},
    "apps.webhooks.tasks.*": {"queue": "events"},
    "apps.campaigns.tasks.*": {"queue": "default"},
    "apps.contacts.tasks.*": {"queue": "default"},
    "apps.message_templates.tasks.*": {"queue": "default"},
    "apps.api.tasks.*": {"queue": "default"},
}
CELERY_BEAT_SCHEDULE: dict = {
    "messages-sweep": {"task": "apps.conversations.tasks.messages_sweep_task", "schedule": 5.0},
    # Folds the inbox tab counts' deltas (ConversationTally) into one row per group.
    "conversation-tallies-compact": {"task": "apps.conversations.tasks.conversation_tallies_compact_task",
                                     "schedule": 60.0},
    "idempotency-keys-purge": {"task": "apps.api.tasks.idempotency_keys_purge_task", "schedule": 3600.0},
    "webhook-events-sweep": {"task": "apps.providers.tasks.webhook_events_sweep_task", "schedule": 5.0},
    "webhook-deliveries-sweep": {"task": "apps.webhooks.tasks.webhook_deliveries_sweep_task", "schedule": 30.0},
    # Starts due campaigns and keeps a planner and a feeder ringing for every active one.
    "campaigns-tick": {"task": "apps.campaigns.tasks.campaigns_tick_task", "schedule": 1.0},
    # Re-rings contact imports whose task was lost or whose worker died (they resume).
    "contact-imports-sweep": {"task": "apps.contacts.tasks.contact_imports_sweep_task", "schedule": 30.0},
}
# Tenant-facing webhooks to private, loopback and link-local addresses; unset follows DEBUG.
WEBHOOKS_ALLOW_PRIVATE_URLS = None if env_str("WEBHOOKS_ALLOW_PRIVATE_URLS") is None else env_bool("WEBHOOKS_ALLOW_PRIVATE_URLS")

# --- Providers ----------------------------------------------------------------------------
META_GRAPH_API_URL = env_str("META_GRAPH_API_URL", "https://graph.facebook.com").rstrip("/")
META_GRAPH_API_VERSION = env_str("META_GRAPH_API_VERSION", "v23.0")
GUPSHUP_API_URL = env_str("GUPSHUP_API_URL", "https://api.gupshup.io").rstrip("/")
GUPSHUP_PARTNER_API_URL = env_str("GUPSHUP_PARTNER_API_URL", "https://partner.gupshup.io").rstrip("/")
# Backends are chosen per phone number by its ``provider``; settings name only class paths.
WHATSAPP_BACKENDS = {
    "meta_cloud": "apps.providers.backends.meta_cloud.MetaCloudBackend",
    "gupshup": "apps.providers.backends.gupshup.GupshupBackend",
    "gupshup_partner": "apps.providers.backends.gupshup_partner.GupshupPartnerBackend",
}

# Sending: how long one dispatch task keeps sending before it rings again; when a queued row
# nobody picked up counts as lost by the broker; how long a row may sit in `sending` with no
# answer and no status webhook before it is resent (design.md, "Exactly once, honestly").
PARLEY_DISPATCH_TIME_BUDGET = float(env_str("PARLEY_DISPATCH_TIME_BUDGET", "5"))
# A running campaign's feeder stays in its worker process this long before handing over: every
# handover puts the feed task back in the queue behind whatever the worker has waiting.
PARLEY_CAMPAIGN_FEED_TIME_BUDGET = float(env_str("PARLEY_CAMPAIGN_FEED_TIME_BUDGET", "60"))
# The dispatch and webhook bells of the request paths are rung by a thread of the web process
# this long after the commit, once for all the requests of that moment (apps/core/bells.py);
# 0 rings each in the request's own thread. Always 0 when Celery runs tasks eagerly.
PARLEY_BELL_DELAY_SECONDS = float(env_str("PARLEY_BELL_DELAY_SECONDS", "0.02"))
if CELERY_TASK_ALWAYS_EAGER:
    PARLEY_BELL_DELAY_SECONDS = 0.0
PARLEY_QUEUED_STALE_SECONDS = env_int("PARLEY_QUEUED_STALE_SECONDS", 10)
PARLEY_RECONCILE_WINDOW_SECONDS = env_int("PARLEY_RECONCILE_WINDOW_SECONDS", 120)
# Hosts media may be downloaded from although they are not public (besides each number's own
# Graph API host, e.g. the emulator); everything else must resolve to public addresses.
PARLEY_TRUSTED_MEDIA_HOSTS: tuple[str, ...] = tuple(env_list("PARLEY_TRUSTED_MEDIA_HOSTS", []))
PARLEY_WEBHOOK_EVENT_STALE_SECONDS = env_int("PARLEY_WEBHOOK_EVENT_STALE_SECONDS", 30)
# A webhook processor that has caught up waits this long before its next round, so that the
# callbacks arriving meanwhile are applied together (apps/providers/services.py). 0 with eager tasks.
PARLEY_WEBHOOK_GATHER_SECONDS = float(env_str("PARLEY_WEBHOOK_GATHER_SECONDS", "0.1"))
if CELERY_TASK_ALWAYS_EAGER:
    PARLEY_WEBHOOK_GATHER_SECONDS = 0.0
# Outgoing email (invitations), sent over SMTP. An invitation is sent on the request that
# creates it, so the SMTP conversation has a timeout: a server that does not answer fails the
# invitation with a clear error instead of holding a web thread.
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Parley <parley@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# The benchmarks' floor views under /_bench/ (bench/urls.py); never on in production.
PARLEY_BENCH_VIEWS = env_bool("PARLEY_BENCH_VIEWS", False)
if PARLEY_BENCH_VIEWS:
    # A floor is measured through the same stack as the endpoint it is the floor of.
    MACHINE_PATH_PREFIXES.append("/_bench/")

# A campaign created through the API may list up to 100,000 recipients (about 6 MB of JSON).
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024

# --- DRF ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.api.authentication.HasApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["apps.api.throttling.ApiKeyThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apps.api.negotiation.JsonNegotiation",
    "DEFAULT_PARSER_CLASSES": [
        "apps.api.parsers.StrictJSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "apps.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Parley API",
    "DESCRIPTION": (
        "Send and receive every WhatsApp message type, manage contacts, templates and webhooks. "
        "Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>`. Errors are "
        '`{"error": {"code", "message", "details"}}`. POSTs accept an `Idempotency-Key` header.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status" choice set: name each one after its model.
    "ENUM_NAME_OVERRIDES": {
        "CampaignStatusEnum": "apps.campaigns.models.Campaign.Status",
        "CampaignRecipientStatusEnum": "apps.campaigns.models.CampaignRecipient.Status",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
