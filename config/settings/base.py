"""Settings shared by every environment.

Every setting has a default that runs PayWave on one machine with nothing
installed (SQLite, kombu's filesystem transport, a file cache); the URLs in
`config/env.example` switch to PostgreSQL, RabbitMQ and Redis.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("PAYWAVE_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

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
    "paywave.middleware.RequestIdMiddleware",
    "paywave.versioning.ApiVersionMiddleware",
    "paywave.middleware.RequestBodyLimitMiddleware",
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

# --- Database -------------------------------------------------------------

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
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": 1,
                "socket_timeout": 1,
                # JSON, never pickle: a value written to Redis cannot run code here.
                "serializer": "paywave.cache_serializer.JSONSerializer",
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery (RabbitMQ in every real deployment) ----------------------------

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing happens inside an API request: fail fast and let the outbox sweep
# re-dispatch, rather than hold the wallet app's request while the broker is down.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=120)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=100)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes every database connection before and after each task
# unless this is set: a new PostgreSQL session (a backend process) per task. With it
# the fixup closes them only every 2 x this many tasks, and paywave.celery_signals
# treats tasks as Django treats requests: connections past CONN_MAX_AGE, or broken
# ones, are closed at a task's start and end; the others are health-checked and kept.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1_000_000)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name, type="direct"), routing_key=name)
    for name in ("default", "payments", "webhooks", "notifications")
]
CELERY_TASK_ROUTES = {
    "payments.*": {"queue": "payments", "routing_key": "payments"},
    "webhooks.*": {"queue": "webhooks", "routing_key": "webhooks"},
    "notifications.*": {"queue": "notifications", "routing_key": "notifications"},
}
# CELERY_BEAT_SCHEDULE: below the processing settings it reads.

# --- Auth and API -------------------------------------------------------

_VALIDATION = "django.contrib.auth.password_validation"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"{_VALIDATION}.UserAttributeSimilarityValidator"},
    {
        "NAME": f"{_VALIDATION}.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("PAYWAVE_PASSWORD_MIN_LENGTH", default=12)},
    },
    {"NAME": f"{_VALIDATION}.CommonPasswordValidator"},
    {"NAME": f"{_VALIDATION}.NumericPasswordValidator"},
]

# --- Staff admin: URL, two-factor login, lockout (paywave/admin_site.py) ----------
# Where the admin lives (a path prefix ending in "/"): an unguessable one keeps scanners off.
PAYWAVE_ADMIN_URL = env.str("PAYWAVE_ADMIN_URL", default="admin/")
if not PAYWAVE_ADMIN_URL.endswith("/") or PAYWAVE_ADMIN_URL.startswith("/"):
    raise ImproperlyConfigured(f"PAYWAVE_ADMIN_URL: {PAYWAVE_ADMIN_URL!r} must be like 'admin/'")
# Staff sign in with a password and a TOTP code (django-otp). Production requires it; in
# the sandbox it is asked only of staff who enrolled a device (manage.py totp_enrol).
PAYWAVE_ADMIN_REQUIRE_2FA = env.bool("PAYWAVE_ADMIN_REQUIRE_2FA", default=False)
OTP_TOTP_ISSUER = "PayWave"
# django-axes: after this many failed admin logins for one username from one address,
# that pair is locked out for the cool-off time (a success resets the count).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("PAYWAVE_ADMIN_LOCKOUT_FAILURES", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("PAYWAVE_ADMIN_LOCKOUT_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The API's token endpoint has its own limit per address (PAYWAVE_TOKEN_THROTTLE_RATE): a
# lockout there would let anyone lock a wallet app out of its payments.
AXES_ONLY_ADMIN_SITE = True
# The same address the throttles see: REMOTE_ADDR, or X-Forwarded-For past trusted proxies.
AXES_CLIENT_IP_CALLABLE = "paywave.throttling.client_address"
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_ENABLED = env.bool("PAYWAVE_ADMIN_LOCKOUT", default=True)
AXES_VERBOSE = False  # no banner at every process start; lockouts are still logged

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "paywave.auth.ApiKeyAuthentication",
        "paywave.auth.ClientJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["paywave.auth.IsWalletApp"],
    "DEFAULT_PARSER_CLASSES": ["paywave.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_THROTTLE_CLASSES": ["paywave.throttling.ClientRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "paywave.errors.api_exception_handler",
    "DEFAULT_VERSIONING_CLASS": "paywave.versioning.HeaderVersioning",
    "UNAUTHENTICATED_USER": None,
    # Client addresses (token throttling) come from X-Forwarded-For only past this many
    # trusted proxies; 0 means REMOTE_ADDR, which a client cannot forge.
    "NUM_PROXIES": env.int("PAYWAVE_NUM_PROXIES", default=0),
}
# The API's versions, oldest first; the last is the newest (paywave/versioning.py).
PAYWAVE_API_VERSIONS = ["2026-12-01"]

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=1)),
    # Its own key, so a leaked SECRET_KEY does not mint API tokens (required in production;
    # make run generates one into .env).
    "SIGNING_KEY": env.str("PAYWAVE_JWT_SIGNING_KEY", default="") or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
    # A refresh answers a new pair and blacklists the refresh token it was given.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "USER_AUTHENTICATION_RULE": "paywave.accounts.account_may_sign_in",
}
# Each request checks its token's claims against the account's state cached this long:
# a deactivated wallet app or a demoted staff user loses access within this many seconds.
PAYWAVE_ACCOUNT_CACHE_SECONDS = env.int("PAYWAVE_ACCOUNT_CACHE_SECONDS", default=60)
# A rolled API key keeps working this long beside its successor (paywave/api_keys.py).
PAYWAVE_API_KEY_ROLL_GRACE_HOURS = env.float("PAYWAVE_API_KEY_ROLL_GRACE_HOURS", default=24.0)

# The OpenAPI schema (/api/schema/) and Swagger UI (/api/docs/): "public", "staff" (a
# staff session in the admin, or a staff JWT) or "off" (not routed). Production: staff.
API_DOCS_MODES = ("off", "staff", "public")
PAYWAVE_API_DOCS = env.str("PAYWAVE_API_DOCS", default="public")
if PAYWAVE_API_DOCS not in API_DOCS_MODES:
    raise ImproperlyConfigured(
        f"PAYWAVE_API_DOCS: {PAYWAVE_API_DOCS!r} is not one of {API_DOCS_MODES}"
    )

SPECTACULAR_SETTINGS = {
    "TITLE": "PayWave API",
    "DESCRIPTION": "PIX and card payments for wallet apps. Money is an integer in minor "
    "units with an ISO 4217 currency (a JSON integer: `1050`, never `1050.0`). Request "
    "bodies are JSON objects with only the declared fields; strings may not contain NUL "
    "(U+0000). Every error has the shape "
    '`{"error": {"type", "code", "message", "fields"}}`. The contract in prose: docs/API.md.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["paywave.auth.ApiDocsAccess"],
    "SERVE_AUTHENTICATION": [
        "rest_framework.authentication.SessionAuthentication",
        "paywave.auth.ClientJWTAuthentication",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # JSON Schema 2020-12: a null object is `oneOf: [{$ref}, {type: null}]`, which every
    # validator reads alike (3.0's `nullable` beside a $ref is not).
    "OAS_VERSION": "3.1.0",
    # Where wallet apps reach the API, for generated clients and Swagger UI's "Try it out":
    # by default the host that served the schema.
    "SERVERS": [{"url": env.str("PAYWAVE_API_SERVER_URL", default="/")}],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "paywave.schema.declare_common_answers",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PaymentStatusEnum": "payments.models.PaymentStatus",
        "PaymentMethodEnum": "payments.models.PaymentMethod",
    },
}

# --- PayWave --------------------------------------------------------------

# Request bodies above this size are answered 413 before anything parses them.
PAYWAVE_MAX_BODY_BYTES = env.int("PAYWAVE_MAX_BODY_BYTES", default=64 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = PAYWAVE_MAX_BODY_BYTES
# Largest accepted payment, in minor units of any currency.
PAYWAVE_MAX_AMOUNT = env.int("PAYWAVE_MAX_AMOUNT", default=100_000_000)
PAYWAVE_CURRENCIES = env.list(
    "PAYWAVE_CURRENCIES", default=["BRL", "USD", "EUR", "GBP", "ARS", "CLP", "MXN", "COP"]
)
PAYWAVE_THROTTLE_RATE = env.str("PAYWAVE_THROTTLE_RATE", default="1200/min")
PAYWAVE_TOKEN_THROTTLE_RATE = env.str("PAYWAVE_TOKEN_THROTTLE_RATE", default="30/min")
# Gateway callbacks (POST /webhooks/<gateway>) per source address: a gateway sends from a
# few addresses, one callback or two per payment; raise it if one address sends more.
PAYWAVE_CALLBACK_THROTTLE_RATE = env.str("PAYWAVE_CALLBACK_THROTTLE_RATE", default="1200/min")
PAYWAVE_IDEMPOTENCY_TTL = timedelta(hours=env.int("PAYWAVE_IDEMPOTENCY_TTL_HOURS", default=24))
# An in-flight key older than this belongs to a request that died: it may be taken over.
PAYWAVE_IDEMPOTENCY_LOCK_TIMEOUT = timedelta(
    seconds=env.int("PAYWAVE_IDEMPOTENCY_LOCK_SECONDS", default=60)
)
PAYWAVE_PAYMENT_CACHE_TTL = env.int("PAYWAVE_PAYMENT_CACHE_TTL", default=300)
# Retention (docs/operating.md, "What is kept"): events with their deliveries and tries;
# gateway callbacks that were rejected (forged, stale, malformed). Purged hourly by beat.
PAYWAVE_EVENT_RETENTION_DAYS = env.int("PAYWAVE_EVENT_RETENTION_DAYS", default=90)
PAYWAVE_REJECTED_CALLBACK_RETENTION_DAYS = env.int(
    "PAYWAVE_REJECTED_CALLBACK_RETENTION_DAYS", default=7
)
PAYWAVE_PIX_DEFAULT_EXPIRES_IN = env.int("PAYWAVE_PIX_DEFAULT_EXPIRES_IN", default=3600)

# Fernet keys for personal data at rest, newest first (comma-separated): the first
# encrypts, all decrypt, so a key is rotated by prepending a new one and running
# `manage.py rotate_encryption_keys`.
PAYWAVE_ENCRYPTION_KEYS = env.list("PAYWAVE_ENCRYPTION_KEYS", default=[])
# Key of the keyed hash ("blind index") that makes encrypted fields searchable.
PAYWAVE_BLIND_INDEX_KEY = env.str("PAYWAVE_BLIND_INDEX_KEY", default="")

_GATEWAY_KEYS = ("STRIPE_API_KEY", "MERCADOPAGO_ACCESS_TOKEN", "GERENCIANET_CLIENT_ID")
# Sandbox: gateways are the local simulators, with their well-known credentials.
PAYWAVE_SANDBOX = env.bool(
    "PAYWAVE_SANDBOX", default=not any(env.str(k, default="") for k in _GATEWAY_KEYS)
)
# make run starts the simulators on this port.
PAYWAVE_SIMULATOR_PORT = env.int("PAYWAVE_SIMULATOR_PORT", default=8900)
PAYWAVE_SIMULATOR_URL = env.str(
    "PAYWAVE_SIMULATOR_URL", default=f"http://127.0.0.1:{PAYWAVE_SIMULATOR_PORT}"
)

# --- Processing: retries, fallback, circuit breaker, sweeps ------------------

PAYWAVE_TRIES_PER_GATEWAY = env.int("PAYWAVE_TRIES_PER_GATEWAY", default=3)
# The n-th retry on one gateway waits base * factor**(n-1) seconds, +/- jitter (a fraction).
PAYWAVE_RETRY_BASE_SECONDS = env.float("PAYWAVE_RETRY_BASE_SECONDS", default=1.0)
PAYWAVE_RETRY_FACTOR = env.float("PAYWAVE_RETRY_FACTOR", default=2.0)
PAYWAVE_RETRY_JITTER = env.float("PAYWAVE_RETRY_JITTER", default=0.2)
PAYWAVE_CIRCUIT_THRESHOLD = env.int("PAYWAVE_CIRCUIT_THRESHOLD", default=5)
PAYWAVE_CIRCUIT_COOLDOWN_SECONDS = env.float("PAYWAVE_CIRCUIT_COOLDOWN_SECONDS", default=30.0)
PAYWAVE_HEALTH_PROBE_SECONDS = env.float("PAYWAVE_HEALTH_PROBE_SECONDS", default=15.0)
# A pending or processing payment whose next step is this late has lost its job.
PAYWAVE_OUTBOX_GRACE_SECONDS = env.float("PAYWAVE_OUTBOX_GRACE_SECONDS", default=60.0)
PAYWAVE_OUTBOX_SWEEP_SECONDS = env.float("PAYWAVE_OUTBOX_SWEEP_SECONDS", default=30.0)
# A payment processing for this long is looked up at its gateway.
PAYWAVE_RECONCILE_AFTER_SECONDS = env.float("PAYWAVE_RECONCILE_AFTER_SECONDS", default=300.0)
PAYWAVE_RECONCILE_SWEEP_SECONDS = env.float("PAYWAVE_RECONCILE_SWEEP_SECONDS", default=60.0)
# A card payment waiting this long for its payer's 3-D Secure is given up (cancelled).
PAYWAVE_ACTION_TIMEOUT_SECONDS = env.float("PAYWAVE_ACTION_TIMEOUT_SECONDS", default=86400.0)
# Refund tries wait base * PAYWAVE_RETRY_FACTOR**(n-1) seconds, at most the max, +/- jitter:
# 10 tries span about 5 minutes. Then a refund the gateway may hold is parked for
# reconciliation; one it certainly does not hold fails.
PAYWAVE_REFUND_TRIES = env.int("PAYWAVE_REFUND_TRIES", default=10)
PAYWAVE_REFUND_RETRY_BASE_SECONDS = env.float("PAYWAVE_REFUND_RETRY_BASE_SECONDS", default=2.0)
PAYWAVE_REFUND_RETRY_MAX_SECONDS = env.float("PAYWAVE_REFUND_RETRY_MAX_SECONDS", default=60.0)
# Charges left behind by a PIX fallback (payments/orphans.py): looked at every sweep when
# due, again after base * 2**(n-1) seconds (at most the max) while the gateway cannot
# answer; "absent" only once a late request can no longer land; an operator is alerted
# if one is still unresolved after the give-up window.
PAYWAVE_ORPHAN_SWEEP_SECONDS = env.float("PAYWAVE_ORPHAN_SWEEP_SECONDS", default=15.0)
PAYWAVE_ORPHAN_RETRY_BASE_SECONDS = env.float("PAYWAVE_ORPHAN_RETRY_BASE_SECONDS", default=15.0)
PAYWAVE_ORPHAN_RETRY_MAX_SECONDS = env.float("PAYWAVE_ORPHAN_RETRY_MAX_SECONDS", default=300.0)
PAYWAVE_ORPHAN_ABSENT_AFTER_SECONDS = env.float(
    "PAYWAVE_ORPHAN_ABSENT_AFTER_SECONDS", default=300.0
)
PAYWAVE_ORPHAN_GIVE_UP_SECONDS = env.float("PAYWAVE_ORPHAN_GIVE_UP_SECONDS", default=7 * 86400.0)

CELERY_BEAT_SCHEDULE = {
    "purge-expired-idempotency-keys": {
        "task": "paywave.purge_expired_idempotency_keys",
        "schedule": timedelta(hours=1),
    },
    "purge-expired-refresh-tokens": {
        "task": "paywave.purge_expired_refresh_tokens",
        "schedule": timedelta(hours=1),
    },
    "probe-gateway-health": {
        "task": "gateways.probe_health",
        "schedule": timedelta(seconds=PAYWAVE_HEALTH_PROBE_SECONDS),
        "options": {"expires": PAYWAVE_HEALTH_PROBE_SECONDS},
    },
    "sweep-payment-outbox": {
        "task": "payments.sweep_outbox",
        "schedule": timedelta(seconds=PAYWAVE_OUTBOX_SWEEP_SECONDS),
        "options": {"expires": PAYWAVE_OUTBOX_SWEEP_SECONDS},
    },
    "reconcile-payments": {
        "task": "payments.reconcile",
        "schedule": timedelta(seconds=PAYWAVE_RECONCILE_SWEEP_SECONDS),
        "options": {"expires": PAYWAVE_RECONCILE_SWEEP_SECONDS},
    },
    "reconcile-refunds": {
        "task": "payments.reconcile_refunds",
        "schedule": timedelta(seconds=PAYWAVE_RECONCILE_SWEEP_SECONDS),
        "options": {"expires": PAYWAVE_RECONCILE_SWEEP_SECONDS},
    },
    "withdraw-orphan-charges": {
        "task": "payments.withdraw_orphans",
        "schedule": timedelta(seconds=PAYWAVE_ORPHAN_SWEEP_SECONDS),
        "options": {"expires": PAYWAVE_ORPHAN_SWEEP_SECONDS},
    },
    "check-ledger": {"task": "wallets.check_ledger", "schedule": timedelta(days=1)},
    "purge-rejected-gateway-callbacks": {
        "task": "gateways.purge_rejected_callbacks",
        "schedule": timedelta(hours=1),
    },
}

# --- Notifications: webhooks to wallet apps, operator alerts (notifications/) ---
# Sandbox and tests may send to http:// and private addresses (127.0.0.1); otherwise
# webhook URLs must be https and public, checked again at every send.
PAYWAVE_WEBHOOK_ALLOW_PRIVATE = env.bool("PAYWAVE_WEBHOOK_ALLOW_PRIVATE", default=PAYWAVE_SANDBOX)
PAYWAVE_WEBHOOK_CONNECT_TIMEOUT = env.float("PAYWAVE_WEBHOOK_CONNECT_TIMEOUT", default=3.0)
PAYWAVE_WEBHOOK_READ_TIMEOUT = env.float("PAYWAVE_WEBHOOK_READ_TIMEOUT", default=10.0)
# Seconds before the 1st, 2nd, ... retry; the last value repeats until the window closes.
PAYWAVE_WEBHOOK_RETRY_SCHEDULE = env.list(
    "PAYWAVE_WEBHOOK_RETRY_SCHEDULE", cast=int, default=[10, 30, 120, 600, 1800, 3600, 7200]
)
PAYWAVE_WEBHOOK_RETRY_HOURS = env.float("PAYWAVE_WEBHOOK_RETRY_HOURS", default=24.0)
PAYWAVE_WEBHOOK_SWEEP_SECONDS = env.float("PAYWAVE_WEBHOOK_SWEEP_SECONDS", default=15.0)
# How far back GET /api/v1/events reaches (retention keeps events longer).
PAYWAVE_EVENTS_LIST_DAYS = env.int("PAYWAVE_EVENTS_LIST_DAYS", default=30)
# An event not fanned out this long after it happened lost its job: the sweep fans it out.
PAYWAVE_WEBHOOK_FAN_OUT_GRACE_SECONDS = env.float(
    "PAYWAVE_WEBHOOK_FAN_OUT_GRACE_SECONDS", default=30.0
)
PAYWAVE_ALERT_EMAILS = env.list("PAYWAVE_ALERT_EMAILS", default=[])
PAYWAVE_ALERT_EMAIL_FROM = env.str("PAYWAVE_ALERT_EMAIL_FROM", default="paywave@localhost")
PAYWAVE_ALERT_WEBHOOK_URL = env.str("PAYWAVE_ALERT_WEBHOOK_URL", default="")
PAYWAVE_ALERT_DEDUPE_SECONDS = env.int("PAYWAVE_ALERT_DEDUPE_SECONDS", default=300)
# EMAIL_BACKEND, EMAIL_HOST, ... from one URL (smtp://, smtp+tls://, consolemail://).
globals().update(env.email_url("EMAIL_URL", default="smtp://localhost:25"))
EMAIL_TIMEOUT = 10
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "WebhookEndpointStatusEnum": ["enabled", "disabled"],
        "WebhookEventTypeEnum": "notifications.serializers.EVENT_CHOICES",
    }
)
CELERY_BEAT_SCHEDULE.update(
    {
        "sweep-webhook-events": {
            "task": "notifications.sweep_events",
            "schedule": timedelta(seconds=PAYWAVE_WEBHOOK_SWEEP_SECONDS),
            "options": {"expires": PAYWAVE_WEBHOOK_SWEEP_SECONDS},
        },
        "sweep-webhook-deliveries": {
            "task": "notifications.sweep_deliveries",
            "schedule": timedelta(seconds=PAYWAVE_WEBHOOK_SWEEP_SECONDS),
            "options": {"expires": PAYWAVE_WEBHOOK_SWEEP_SECONDS},
        },
        "purge-expired-events": {
            "task": "notifications.purge_expired_events",
            "schedule": timedelta(hours=1),
        },
    }
)
# --- end of notifications ----------------------------------------------------

# --- Static files, i18n ---------------------------------------------------

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

# --- Observability: logs and metrics (paywave/log_*.py, paywave/metrics.py) ------
# Every record goes through the context filter (request_id, client, task_id,
# payment_id, gateway, attempt) and the masking filter (secrets, card numbers, tax
# ids) before any handler writes it.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
# json: one Logstash-v1-shaped object per line (for log shippers); plain: for a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
# Set LOGSTASH_HOST to ship the same records with python-logstash (udp or tcp).
LOGSTASH_HOST = env.str("LOGSTASH_HOST", default="")
LOGSTASH_PORT = env.int("LOGSTASH_PORT", default=5959)
LOGSTASH_TRANSPORT = env.str("LOGSTASH_TRANSPORT", default="udp")
_LOG_FILTERS = ["context", "mask"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "paywave.log_context.ContextFilter"},
        "mask": {"()": "paywave.log_masking.MaskingFilter"},
        # Django's lines about a request in the request line's names (paywave/log_fields.py).
        "http_fields": {"()": "paywave.log_fields.HttpFieldsFilter"},
    },
    "formatters": {
        "json": {"()": "paywave.log_format.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain" if LOG_FORMAT == "plain" else "json",
            "filters": _LOG_FILTERS,
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's own handlers (console with DEBUG, mail to admins) would write records
        # past the masking filter: everything goes to ours instead.
        "django": {"handlers": [], "propagate": True},
        "django.request": {"handlers": [], "propagate": True, "filters": ["http_fields"]},
        "django.server": {"handlers": [], "propagate": True, "filters": ["http_fields"]},
        # Celery's "Task ... received" line knows neither the request nor the payment:
        # paywave.celery_signals writes it instead, with both.
        "celery.worker.strategy": {"level": "WARNING"},
    },
}
if LOGSTASH_HOST:
    LOGGING["handlers"]["logstash"] = {
        "()": "paywave.log_format.logstash_handler",
        "host": LOGSTASH_HOST,
        "port": LOGSTASH_PORT,
        "transport": LOGSTASH_TRANSPORT,
        "filters": _LOG_FILTERS,
    }
    LOGGING["root"]["handlers"].append("logstash")

# /metrics answers only these peers (and forwarded-for addresses): loopback and the
# private ranges a Prometheus in the same cluster or compose network scrapes from.
PAYWAVE_METRICS_ALLOW = env.list(
    "PAYWAVE_METRICS_ALLOW",
    default=["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
)
for _cidr in PAYWAVE_METRICS_ALLOW:  # a typo here must stop the start, not fail every scrape
    try:
        ipaddress.ip_network(_cidr.strip(), strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"PAYWAVE_METRICS_ALLOW: {_cidr!r} is not a CIDR") from exc
PAYWAVE_METRICS_BROKER_TIMEOUT = env.float("PAYWAVE_METRICS_BROKER_TIMEOUT", default=2.0)
# Celery workers serve their own metrics here when set (0 or empty: off).
PAYWAVE_WORKER_METRICS_PORT = int(env.str("PAYWAVE_WORKER_METRICS_PORT", default="") or 0)
# prometheus_client's multiprocess mode (set before the process starts): every process of
# one kind counts in this directory, and a scrape adds them up. It must exist.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
PAYWAVE_WORKER_METRICS_ADDR = env.str("PAYWAVE_WORKER_METRICS_ADDR", default="0.0.0.0")  # noqa: S104
PROMETHEUS_EXPORT_MIGRATIONS = False
# --- end of observability ------------------------------------------------------

# --- Bench baselines (bench/README.md): off unless PAYWAVE_BENCH_BASELINES=true ---------
PAYWAVE_BENCH_BASELINES = env.bool("PAYWAVE_BENCH_BASELINES", default=False)
if PAYWAVE_BENCH_BASELINES:
    INSTALLED_APPS.append("bench.baselines")
    CELERY_TASK_ROUTES["bench.*"] = {"queue": "payments", "routing_key": "payments"}
# --- end of bench baselines ------------------------------------------------------------
