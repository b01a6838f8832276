"""One-machine settings used by `make run` and manage.py: embedded defaults unless URLs are set."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import PAYWAVE_BLIND_INDEX_KEY, PAYWAVE_ENCRYPTION_KEYS, SECRET_KEY, env

if not (
    SECRET_KEY
    and PAYWAVE_ENCRYPTION_KEYS
    and PAYWAVE_BLIND_INDEX_KEY
    and env.str("PAYWAVE_JWT_SIGNING_KEY", default="")
):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY, PAYWAVE_ENCRYPTION_KEYS, PAYWAVE_BLIND_INDEX_KEY and "
        "PAYWAVE_JWT_SIGNING_KEY are not all set: run `make .env` (make run does it) to "
        "generate a local .env, or export them."
    )
