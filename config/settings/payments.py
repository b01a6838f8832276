"""Payments: currencies and amounts, gateways and the sandbox, retries, fallback, the
circuit breaker, sweeps, reconciliation, refunds, orphaned charges, retention."""

from django.core.exceptions import ImproperlyConfigured

from .environment import env

PAYWAVE_PAYMENT_CACHE_TTL = env.int("PAYWAVE_PAYMENT_CACHE_TTL", default=300)
# Retention (docs/operating.md, "What is kept"): events with their deliveries and tries;
# gateway callbacks that were rejected (forged, stale, malformed). Purged hourly by beat.
PAYWAVE_EVENT_RETENTION_DAYS = env.int("PAYWAVE_EVENT_RETENTION_DAYS", default=90)
PAYWAVE_REJECTED_CALLBACK_RETENTION_DAYS = env.int(
    "PAYWAVE_REJECTED_CALLBACK_RETENTION_DAYS", default=7
)
PAYWAVE_PIX_DEFAULT_EXPIRES_IN = env.int("PAYWAVE_PIX_DEFAULT_EXPIRES_IN", default=3600)

_GATEWAY_KEYS = (
    "STRIPE_API_KEY",
    "MERCADOPAGO_ACCESS_TOKEN",
    "GERENCIANET_CLIENT_ID",
    "PAYPAL_CLIENT_ID",
)
# Sandbox: gateways are the local simulators, with their well-known credentials.
PAYWAVE_SANDBOX = env.bool(
    "PAYWAVE_SANDBOX", default=not any(env.str(k, default="") for k in _GATEWAY_KEYS)
)
# make run starts the simulators on this port.
PAYWAVE_SIMULATOR_PORT = env.int("PAYWAVE_SIMULATOR_PORT", default=8900)
PAYWAVE_SIMULATOR_URL = env.str(
    "PAYWAVE_SIMULATOR_URL", default=f"http://127.0.0.1:{PAYWAVE_SIMULATOR_PORT}"
)

# Retries, fallback, circuit breaker, sweeps.
PAYWAVE_TRIES_PER_GATEWAY = env.int("PAYWAVE_TRIES_PER_GATEWAY", default=3)
# The n-th retry on one gateway waits base * factor**(n-1) seconds, +/- jitter (a fraction).
PAYWAVE_RETRY_BASE_SECONDS = env.float("PAYWAVE_RETRY_BASE_SECONDS", default=1.0)
PAYWAVE_RETRY_FACTOR = env.float("PAYWAVE_RETRY_FACTOR", default=2.0)
PAYWAVE_RETRY_JITTER = env.float("PAYWAVE_RETRY_JITTER", default=0.2)
PAYWAVE_CIRCUIT_THRESHOLD = env.int("PAYWAVE_CIRCUIT_THRESHOLD", default=5)
PAYWAVE_CIRCUIT_COOLDOWN_SECONDS = env.float("PAYWAVE_CIRCUIT_COOLDOWN_SECONDS", default=30.0)
PAYWAVE_HEALTH_PROBE_SECONDS = env.float("PAYWAVE_HEALTH_PROBE_SECONDS", default=15.0)
# The gateway table routing reads at every step is cached, forgotten on every write.
PAYWAVE_GATEWAY_TABLE_CACHE_SECONDS = env.int("PAYWAVE_GATEWAY_TABLE_CACHE_SECONDS", default=300)
# A pending or processing payment whose next step is this late has lost its job.
PAYWAVE_OUTBOX_GRACE_SECONDS = env.float("PAYWAVE_OUTBOX_GRACE_SECONDS", default=60.0)
PAYWAVE_OUTBOX_SWEEP_SECONDS = env.float("PAYWAVE_OUTBOX_SWEEP_SECONDS", default=30.0)
# A payment processing for this long is looked up at its gateway.
PAYWAVE_RECONCILE_AFTER_SECONDS = env.float("PAYWAVE_RECONCILE_AFTER_SECONDS", default=300.0)
PAYWAVE_RECONCILE_SWEEP_SECONDS = env.float("PAYWAVE_RECONCILE_SWEEP_SECONDS", default=60.0)
# Each run is a job per kind of work and per part of the payments: that many look payments
# up at once for each kind (1, 2, 4, 8 or 16), each on a payments worker thread.
PAYWAVE_RECONCILE_PARTS = env.int("PAYWAVE_RECONCILE_PARTS", default=1)
if PAYWAVE_RECONCILE_PARTS not in (1, 2, 4, 8, 16):
    raise ImproperlyConfigured("PAYWAVE_RECONCILE_PARTS must be 1, 2, 4, 8 or 16")
# A PIX charge waiting for its payer is looked up this long after it was shown, in case
# the payer paid and the gateway's callback was lost; then again after as long as it has
# waited so far (5, 10, 20, 40 minutes...), at most every PAYWAVE_PIX_CHECK_MAX_SECONDS,
# until it expires.
PAYWAVE_PIX_CHECK_FIRST_SECONDS = env.float("PAYWAVE_PIX_CHECK_FIRST_SECONDS", default=300.0)
PAYWAVE_PIX_CHECK_MAX_SECONDS = env.float("PAYWAVE_PIX_CHECK_MAX_SECONDS", default=1800.0)
# A card payment waiting this long for its payer's 3-D Secure is given up (cancelled).
PAYWAVE_ACTION_TIMEOUT_SECONDS = env.float("PAYWAVE_ACTION_TIMEOUT_SECONDS", default=86400.0)
# A PayPal payment whose payer has not approved the order this long after it was created
# is `expired` (PayPal's own approval links last 3 hours). Until then reconciliation reads
# the order every PAYWAVE_APPROVAL_POLL_SECONDS, in case the return and the callback
# were both lost.
PAYWAVE_PAYPAL_APPROVAL_EXPIRES_SECONDS = env.int(
    "PAYWAVE_PAYPAL_APPROVAL_EXPIRES_SECONDS", default=3 * 3600
)
PAYWAVE_APPROVAL_POLL_SECONDS = env.float("PAYWAVE_APPROVAL_POLL_SECONDS", default=60.0)
# Where payers' browsers reach PayWave (PayPal sends them back through it): scheme and host.
PAYWAVE_PUBLIC_URL = env.str(
    "PAYWAVE_PUBLIC_URL", default=f"http://127.0.0.1:{env.int('PAYWAVE_API_PORT', default=8000)}"
).rstrip("/")
# The hosted payment page's link (payments/hosted_tokens.py) opens a card or PayPal
# payment's pages this long after the payment was created; a PIX payment's, until its
# code expires (and a few minutes more, to show how it ended).
PAYWAVE_HOSTED_PAGE_TTL_SECONDS = env.int("PAYWAVE_HOSTED_PAGE_TTL_SECONDS", default=86400)
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
# Disputes (payments/dispute_poll.py): every PAYWAVE_DISPUTE_POLL_SECONDS each gateway is
# asked for the disputes opened since the last run, and an open dispute not read for
# PAYWAVE_DISPUTE_RECHECK_SECONDS is read again, so one whose callback was lost is applied.
PAYWAVE_DISPUTE_POLL_SECONDS = env.float("PAYWAVE_DISPUTE_POLL_SECONDS", default=900.0)
PAYWAVE_DISPUTE_RECHECK_SECONDS = env.float("PAYWAVE_DISPUTE_RECHECK_SECONDS", default=3600.0)
