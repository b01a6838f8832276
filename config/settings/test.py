"""Test settings: the real services when their URLs are set (always on CI), else embedded ones."""

import base64
import tempfile

from .base import *  # noqa: F403
from .base import REDIS_URL, env

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

if not env.str("DATABASE_URL", default=""):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": f"{tempfile.gettempdir()}/paywave-test.sqlite3",
            "TEST": {"NAME": f"{tempfile.gettempdir()}/paywave-test.sqlite3"},
        }
    }
if not REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
