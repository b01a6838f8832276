"""Production: every secret and service URL must come from the environment."""

from .base import *  # noqa: F403
from .base import env

SECRET_KEY = env.str("DJANGO_SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
REDIS_URL = env.str("REDIS_URL")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL")
PAYWAVE_ENCRYPTION_KEYS = env.list("PAYWAVE_ENCRYPTION_KEYS")
PAYWAVE_BLIND_INDEX_KEY = env.str("PAYWAVE_BLIND_INDEX_KEY")
SIMPLE_JWT["SIGNING_KEY"] = env.str("JWT_SIGNING_KEY", default="") or SECRET_KEY  # noqa: F405

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# Webhook URLs must be public https in production unless explicitly allowed otherwise.
PAYWAVE_WEBHOOK_ALLOW_PRIVATE = env.bool("PAYWAVE_WEBHOOK_ALLOW_PRIVATE", default=False)
# Staff sign in to the admin with a password and a TOTP code (manage.py totp_enrol).
PAYWAVE_ADMIN_REQUIRE_2FA = env.bool("PAYWAVE_ADMIN_REQUIRE_2FA", default=True)
