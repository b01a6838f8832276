"""Test settings: the real services when their URLs are set (always on CI), else embedded ones."""

import base64
import hashlib
import tempfile

from .base import *  # noqa: F403
from .base import BASE_DIR, REDIS_URL, env
from .environment import env_bool_or

SECRET_KEY = "test-only-not-a-secret-but-long-enough-for-hs256"
SIMPLE_JWT["SIGNING_KEY"] = SECRET_KEY  # noqa: F405
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Fixed, so worker processes a test starts read what the test process wrote.
PAYWAVE_ENCRYPTION_KEYS = [base64.urlsafe_b64encode(b"test-only-key-not-a-secret-32byt").decode()]
PAYWAVE_BLIND_INDEX_KEY = "test-blind-index-key"
PAYWAVE_THROTTLE_RATE = "100000/min"
PAYWAVE_TOKEN_THROTTLE_RATE = "100000/min"
PAYWAVE_CALLBACK_THROTTLE_RATE = "100000/min"
PAYWAVE_METRICS_DB_READ_SECONDS = 0.0  # a scrape sees what the test just wrote
# Deliveries as jobs, which the tests run in process (tests/notifications/conftest.py's
# `jobs`); the pollers' own tests turn them on.
PAYWAVE_WEBHOOK_POLLER = env_bool_or("PAYWAVE_WEBHOOK_POLLER", False)

if not env.str("DATABASE_URL", default=""):
    # One file per checkout: two clones' test runs at once must not share a database.
    _CHECKOUT = hashlib.sha256(str(BASE_DIR).encode()).hexdigest()[:12]
    _SQLITE_PATH = f"{tempfile.gettempdir()}/paywave-test-{_CHECKOUT}.sqlite3"
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _SQLITE_PATH,
            "TEST": {"NAME": _SQLITE_PATH},
        }
    }
if not REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
