"""Settings shared by every environment: Django's own, then each topic's module.

Every setting has a default that runs PayWave on one machine with nothing
installed (SQLite, kombu's filesystem transport, a file cache); the URLs in
`config/env.example` switch to PostgreSQL, RabbitMQ and Redis. The topics:

- environment: `.env`, BASE_DIR, VAR_DIR;
- security: secret keys, staff sign-in, tokens, encryption at rest;
- api: DRF, versions, limits, idempotency, the OpenAPI schema;
- celery: the broker, queues and routes, beat's schedule;
- payments: gateways, sandbox, retries, fallback, circuit breaker, sweeps;
- notifications: webhooks to wallet apps, operator alerts, mail;
- observability: logs and metrics.
"""

from typing import Any

from .environment import BASE_DIR, VAR_DIR, env, env_bool_or  # noqa: F401 (read by the other modules)

INSTALLED_APPS = [
    "paywave.admin_config.PayWaveAdminConfig",  # django.contrib.admin, two-factor login
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "rest_framework",
    # Before paywave, whose admin hides the stored refresh tokens.
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "paywave",
    "payments",
    "gateways",
    # Apps subscribe to payments' changes in their ready(), which runs in this order, and
    # subscribers run in the order they subscribed: a change's own event (payment.succeeded)
    # is recorded before the wallet credit it causes (wallet.credited).
    "notifications",
    "wallets",
    "django_prometheus",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "paywave.observability.middleware.RequestIdMiddleware",
    "paywave.api.versioning.ApiVersionMiddleware",
    "paywave.api.middleware.RequestBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def server_database(database: dict[str, Any]) -> dict[str, Any]:
    """A database server's settings: connections kept a minute, checked before reuse;
    PostgreSQL through paywave.postgresql (Django's backend, its check from the socket)."""
    if database["ENGINE"] == "django.db.backends.postgresql":
        database["ENGINE"] = "paywave.postgresql"
    database["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    database["CONN_HEALTH_CHECKS"] = True
    if database["ENGINE"] == "paywave.postgresql":
        database["OPTIONS"] = {**database.get("OPTIONS", {}), **_postgresql_statements()}
    return database


def _postgresql_statements() -> dict[str, Any]:
    """Values sent apart from the statement (psycopg's server-side binding), and a
    statement a connection runs for the fifth time prepared, so PostgreSQL parses and
    plans it once per connection: a payment runs the same few dozen statements every time.
    DATABASE_PREPARED_STATEMENTS=false where a pooler in transaction mode cannot keep
    them (PgBouncer before 1.21, or without `max_prepared_statements`)."""
    prepared = env_bool_or("DATABASE_PREPARED_STATEMENTS", True)
    return {"server_side_binding": True, "prepare_threshold": 5 if prepared else None}


DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'paywave.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    server_database(DATABASES["default"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def redis_caches(url: str) -> dict[str, Any]:
    """The cache on Redis, for every settings module that has one."""
    return {
        "default": {
            # Django's backend, keeping its redis client (paywave/cache/backend.py).
            "BACKEND": "paywave.cache.backend.RedisCache",
            "LOCATION": url,
            "OPTIONS": {
                "socket_connect_timeout": 1,
                "socket_timeout": 1,
                # JSON, never pickle: a value written to Redis cannot run code here.
                "serializer": "paywave.cache.serializer.JSONSerializer",
            },
        }
    }


REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = redis_caches(REDIS_URL)
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
LANGUAGE_CODE = "en-us"
# Dates and times to the second wherever people read them (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Each topic's settings (each module imports what it reads from another).
from .api import *  # noqa: E402, F403
from .celery import *  # noqa: E402, F403
from .celery import CELERY_TASK_ROUTES, jobs  # noqa: E402
from .notifications import *  # noqa: E402, F403
from .observability import *  # noqa: E402, F403
from .payments import *  # noqa: E402, F403
from .security import *  # noqa: E402, F403

# A new delivery's first try: the webhook workers' pollers on PostgreSQL, a Celery job
# elsewhere (notifications/poller.py; docs/webhooks.md, "How PayWave delivers"). Empty
# (as config/env.example lists it) is the default.
PAYWAVE_WEBHOOK_POLLER = env_bool_or(
    "PAYWAVE_WEBHOOK_POLLER", DATABASES["default"]["ENGINE"] == "paywave.postgresql"
)

# Bench baselines (bench/README.md): off unless PAYWAVE_BENCH_BASELINES=true.
PAYWAVE_BENCH_BASELINES = env.bool("PAYWAVE_BENCH_BASELINES", default=False)
if PAYWAVE_BENCH_BASELINES:
    INSTALLED_APPS.append("bench.baselines")
    CELERY_TASK_ROUTES["bench.*"] = {
        "queue": jobs.PAYMENTS_QUEUE,
        "routing_key": jobs.PAYMENTS_QUEUE,
    }
