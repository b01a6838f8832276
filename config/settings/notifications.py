"""Notifications: webhooks to wallet apps (timeouts, retries, sweeps), operator alerts, mail."""

from .api import SPECTACULAR_SETTINGS
from .environment import env
from .payments import PAYWAVE_SANDBOX

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
