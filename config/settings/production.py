"""Production: every secret and service URL must come from the environment."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import API_DOCS_MODES, env, redis_caches, server_database

SECRET_KEY = env.str("DJANGO_SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
DATABASES = {"default": server_database(env.db("DATABASE_URL"))}
REDIS_URL = env.str("REDIS_URL")
CACHES = redis_caches(REDIS_URL)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL")
PAYWAVE_ENCRYPTION_KEYS = env.list("PAYWAVE_ENCRYPTION_KEYS")
PAYWAVE_BLIND_INDEX_KEY = env.str("PAYWAVE_BLIND_INDEX_KEY")
# Tokens are signed with a key of their own: SECRET_KEY (sessions, CSRF) cannot mint them.
SIMPLE_JWT["SIGNING_KEY"] = env.str("PAYWAVE_JWT_SIGNING_KEY")  # noqa: F405
if len(SIMPLE_JWT["SIGNING_KEY"]) < 32 or SIMPLE_JWT["SIGNING_KEY"] == SECRET_KEY:  # noqa: F405
    raise ImproperlyConfigured(
        "PAYWAVE_JWT_SIGNING_KEY must be set, 32 characters at least, and not DJANGO_SECRET_KEY"
    )

# Sandbox mode (well-known simulator credentials, demo accounts, private webhook URLs) only
# when asked for: a production install without gateway keys is misconfigured, not a sandbox.
PAYWAVE_SANDBOX = env.bool("PAYWAVE_SANDBOX", default=False)
PAYWAVE_API_DOCS = env.str("PAYWAVE_API_DOCS", default="staff")
if PAYWAVE_API_DOCS not in API_DOCS_MODES:
    raise ImproperlyConfigured(
        f"PAYWAVE_API_DOCS: {PAYWAVE_API_DOCS!r} is not one of {API_DOCS_MODES}"
    )

# HTTPS: TLS ends at the ingress, which says so in X-Forwarded-Proto. Plain HTTP is
# redirected, except the paths probes and Prometheus reach inside the cluster.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("PAYWAVE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("PAYWAVE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("PAYWAVE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("PAYWAVE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("PAYWAVE_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# Webhook URLs must be public https in production unless explicitly allowed otherwise.
PAYWAVE_WEBHOOK_ALLOW_PRIVATE = env.bool("PAYWAVE_WEBHOOK_ALLOW_PRIVATE", default=False)
# Staff sign in to the admin with a password and a TOTP code (manage.py totp_enrol).
PAYWAVE_ADMIN_REQUIRE_2FA = env.bool("PAYWAVE_ADMIN_REQUIRE_2FA", default=True)
