"""Security: Django's secret key, staff sign-in (admin URL, two-factor, lockout), API
tokens and keys, the keys for personal data at rest."""

from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from .environment import env

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

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

# Staff admin (paywave/admin_site.py): URL, two-factor login, lockout.
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
AXES_CLIENT_IP_CALLABLE = "paywave.api.throttling.client_address"
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_ENABLED = env.bool("PAYWAVE_ADMIN_LOCKOUT", default=True)
AXES_VERBOSE = False  # no banner at every process start; lockouts are still logged

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
    "USER_AUTHENTICATION_RULE": "paywave.api.accounts.account_may_sign_in",
}
# Each request checks its token's claims against the account's state cached this long:
# a deactivated wallet app or a demoted staff user loses access within this many seconds.
PAYWAVE_ACCOUNT_CACHE_SECONDS = env.int("PAYWAVE_ACCOUNT_CACHE_SECONDS", default=60)
# A rolled API key keeps working this long beside its successor (paywave/api/keys.py).
PAYWAVE_API_KEY_ROLL_GRACE_HOURS = env.float("PAYWAVE_API_KEY_ROLL_GRACE_HOURS", default=24.0)

# Fernet keys for personal data at rest, newest first (comma-separated): the first
# encrypts, all decrypt, so a key is rotated by prepending a new one and running
# `manage.py rotate_encryption_keys`.
PAYWAVE_ENCRYPTION_KEYS = env.list("PAYWAVE_ENCRYPTION_KEYS", default=[])
# Key of the keyed hash ("blind index") that makes encrypted fields searchable.
PAYWAVE_BLIND_INDEX_KEY = env.str("PAYWAVE_BLIND_INDEX_KEY", default="")
