import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from gateways.base import OPEN_DISPUTE_STATUSES, DisputeKind, DisputeStatus, RefundStatus
from paywave.encryption.fields import EncryptedTextField, key_id_index
from paywave.models import ApiClient
from paywave.values.money_text import money_display


class PaymentMethod(models.TextChoices):
    PIX = "pix"
    CARD = "card"
    PAYPAL = "paypal"


class PaymentStatus(models.TextChoices):
    PENDING = "pending"
    PROCESSING = "processing"
    REQUIRES_ACTION = "requires_action"
    AWAITING_PAYMENT = "awaiting_payment"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class ParkedReason(models.TextChoices):
    """Why a parked payment waits (API.md `parked_reason`): PayWave checks until resolved."""

    CHARGE_UNCONFIRMED = "charge_unconfirmed"  # the gateway cannot say yet whether it charged
    AMOUNT_MISMATCH = "amount_mismatch"  # the gateway's charge is not this payment's amount
    INVALID_GATEWAY_ANSWER = "invalid_gateway_answer"  # e.g. a BR Code that cannot be shown
    CHARGE_REVERSED = "charge_reversed"  # paid, then refunded or disputed at the gateway


class FailureCode(models.TextChoices):
    CARD_DECLINED = "card_declined"
    INVALID_PAYER = "invalid_payer"
    GATEWAYS_EXHAUSTED = "gateways_exhausted"
    EXPIRED = "expired"
    CANCELED = "canceled"
    AUTHENTICATION_ABANDONED = "authentication_abandoned"  # 3-D Secure never completed
    PAYMENT_DECLINED = "payment_declined"  # PayPal refused to capture the approved order


class Payment(models.Model):
    """A wallet app's payment. Its status changes only through payments.transitions."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed first in payment_client_recent_idx (and the other client_* indexes) below.
    client = models.ForeignKey(
        ApiClient, on_delete=models.PROTECT, related_name="payments", db_index=False
    )
    # Bumped by every write, so caches can keep only the newest copy.
    version = models.PositiveIntegerField(default=1)

    amount = models.BigIntegerField(help_text="Minor units of `currency`.")
    currency = models.CharField(max_length=3)
    method = models.CharField(max_length=8, choices=PaymentMethod.choices)
    status = models.CharField(
        max_length=24, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    failure_code = models.CharField(max_length=40, blank=True, default="")
    failure_message = models.CharField(max_length=255, blank=True, default="")
    amount_refunded = models.BigIntegerField(default=0)

    payer_name = EncryptedTextField()
    payer_email = EncryptedTextField(blank=True, default="")
    payer_email_hash = models.CharField(max_length=64, blank=True, default="", db_index=True)
    payer_tax_id = EncryptedTextField(blank=True, default="")
    payer_tax_id_hash = models.CharField(max_length=64, blank=True, default="", db_index=True)
    payer_tax_id_last4 = models.CharField(max_length=4, blank=True, default="")
    payer_country = models.CharField(max_length=2)

    # A gateway's token for the card (never the card number), and what the gateway tells of it.
    card_token = models.CharField(max_length=255, blank=True, default="")
    card_brand = models.CharField(max_length=20, blank=True, default="")
    card_last4 = models.CharField(max_length=4, blank=True, default="")
    next_action = models.JSONField(null=True, blank=True)

    pix_expires_in = models.PositiveIntegerField(null=True, blank=True)
    pix_txid = models.CharField(max_length=35, blank=True, default="", db_index=True)
    pix_qr_code = models.TextField(blank=True, default="")
    pix_expires_at = models.DateTimeField(null=True, blank=True)

    gateway = models.CharField(max_length=40, blank=True, default="")
    gateway_reference = models.CharField(max_length=120, blank=True, default="", db_index=True)
    # The processing chain: only a job carrying the current token may take the next step;
    # `next_attempt_at` is when that step is due (the outbox sweep re-publishes overdue ones);
    # for a PIX or PayPal payment waiting for its payer, when reconciliation next looks its
    # charge up at the gateway.
    dispatch_token = models.UUIDField(default=uuid.uuid4, editable=False)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Parked: the outcome at a gateway is unknown; reconciliation owns the payment until resolved.
    needs_reconciliation = models.BooleanField(default=False)
    reconciliation_reason = models.CharField(max_length=255, blank=True, default="")
    parked_reason = models.CharField(
        max_length=32, choices=ParkedReason.choices, blank=True, default=""
    )
    wallet_id = models.UUIDField(null=True, blank=True)
    description = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    # Where the payer goes back to the wallet app after a gateway's page (3-D Secure,
    # PayPal), and where PayPal's page sends a payer who cancels (empty: the return_url).
    return_url = models.CharField(max_length=2048, blank=True, default="")
    cancel_url = models.CharField(max_length=2048, blank=True, default="")
    # The payer pays on PayWave's hosted page (payments/hosted.py), reached through
    # `next_action`; a hosted card payment's 3-D Secure comes back to that page too.
    hosted = models.BooleanField(default=False)
    # PayPal: the capture that took the money (the order is `gateway_reference`), and
    # when a payer who has not approved the order by then makes the payment `expired`.
    capture_reference = models.CharField(max_length=120, blank=True, default="", db_index=True)
    approval_expires_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["client", "-created_at", "-id"], name="payment_client_recent_idx"),
            models.Index(
                fields=["client", "status", "-created_at"], name="payment_client_status_idx"
            ),
            models.Index(
                fields=["client", "method", "-created_at"], name="payment_client_method_idx"
            ),
            models.Index(fields=["status", "updated_at"], name="payment_status_updated_idx"),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "processing"]),
                name="payment_in_progress_due_idx",
            ),
            models.Index(
                fields=["pix_expires_at"],
                condition=Q(status="awaiting_payment"),
                name="payment_awaiting_expiry_idx",
            ),
            # Waiting PIX charges due a look at their gateway (reconciliation, a lost callback).
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="awaiting_payment"),
                name="payment_awaiting_check_idx",
            ),
            # What /metrics counts at every scrape (payments/metrics.py): the parked few.
            models.Index(
                fields=["parked_reason"],
                condition=Q(needs_reconciliation=True),
                name="payment_parked_idx",
            ),
            key_id_index("payer_name", name="payment_payer_name_key_idx"),
            key_id_index("payer_email", name="payment_payer_email_key_idx"),
            key_id_index("payer_tax_id", name="payment_payer_tax_id_key_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=F("amount")),
                name="payment_refund_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(status__in=PaymentStatus.values), name="payment_status_valid"
            ),
            models.CheckConstraint(
                condition=(Q(method=PaymentMethod.CARD) & ~Q(card_token=""))
                | (Q(method__in=[PaymentMethod.PIX, PaymentMethod.PAYPAL]) & Q(card_token="")),
                name="payment_card_token_iff_card",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="payment_currency_iso"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {money_display(self.amount, self.currency)} {self.status}"

    @property
    def pix_lifetime(self) -> timedelta:
        """How long its PIX code may be paid: as the wallet app asked, else the default."""
        return timedelta(seconds=self.pix_expires_in or settings.PAYWAVE_PIX_DEFAULT_EXPIRES_IN)


class PaymentEvent(models.Model):
    """Append-only log of a payment's status changes: who, when, from, to, why."""

    id = models.BigAutoField(primary_key=True)
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=24, blank=True, default="")
    to_status = models.CharField(max_length=24)
    reason = models.CharField(max_length=255)
    actor = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"{self.payment_id}: {self.from_status or '-'} -> {self.to_status}"


class AttemptOutcome(models.TextChoices):
    IN_FLIGHT = "in_flight"  # the call is under way (or its worker died: then ambiguous)
    SUCCEEDED = "succeeded"  # the gateway took the charge (paid, or waiting for the payer)
    PENDING = "pending"  # the gateway took it but has no outcome yet
    DECLINED = "declined"
    RETRYABLE = "retryable"
    AMBIGUOUS = "ambiguous"
    MISCONFIGURED = "misconfigured"


class PaymentAttempt(models.Model):
    """One call to a gateway to charge a payment (written by the processing engine)."""

    id = models.BigAutoField(primary_key=True)
    # Indexed first in the unique (payment, gateway, number) below.
    payment = models.ForeignKey(
        Payment, on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    gateway = models.CharField(max_length=40)
    number = models.PositiveSmallIntegerField()
    idempotency_key = models.CharField(max_length=255)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)
    error_class = models.CharField(max_length=80, blank=True, default="")
    error_message = models.CharField(max_length=500, blank=True, default="")
    gateway_reference = models.CharField(max_length=120, blank=True, default="", db_index=True)
    request_summary = models.JSONField(default=dict, blank=True)
    # Exactly what the first call to this gateway sent (JSON, encrypted: it names the
    # payer). Every retry and lookup under the same key sends it again, whatever the
    # payment's editable fields say by then.
    charge_params = EncryptedTextField(blank=True, default="")
    response_summary = models.JSONField(default=dict, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    # Past this the call has certainly ended: an attempt still in flight lost its worker.
    deadline_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["payment", "gateway", "number"], name="payment_attempt_unique"
            ),
        ]
        indexes = [key_id_index("charge_params", name="attempt_charge_params_key_idx")]

    def __str__(self) -> str:
        return f"{self.payment_id} {self.gateway}#{self.number} {self.outcome}"


REFUND_STATUS_CHOICES = [(status.value, status.name.title()) for status in RefundStatus]


class Refund(models.Model):
    """Money going back to the payer; pending ones count against what is left to refund."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed first in refund_payment_status_idx below.
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="refunds", db_index=False
    )
    amount = models.BigIntegerField(help_text="Minor units of the payment's currency.")
    status = models.CharField(
        max_length=16, choices=REFUND_STATUS_CHOICES, default=RefundStatus.PENDING
    )
    gateway = models.CharField(max_length=40)
    gateway_reference = models.CharField(max_length=120, blank=True, default="")
    tries = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    failure_message = models.CharField(max_length=255, blank=True, default="")
    # Set once a try may have made the refund at the gateway; never cleared.
    needs_reconciliation = models.BooleanField(default=False)
    # Only the job carrying the current token may take the next try (a duplicate or
    # superseded job does nothing); none once the worker is done with the refund.
    job_token = models.UUIDField(null=True, blank=True)
    # When the next try is due: the outbox sweep republishes a job this is overdue for.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Given up by the worker (outcome unknown): only reconciliation settles it now.
    parked_at = models.DateTimeField(null=True, blank=True)
    actor = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=[status.value for status in RefundStatus]),
                name="refund_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["payment", "status"], name="refund_payment_status_idx"),
            models.Index(
                fields=["next_attempt_at"],
                name="refund_pending_due_idx",
                condition=Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        amount = money_display(self.amount, self.payment.currency)
        return f"refund {self.id} {amount} {self.status}"

    @property
    def idempotency_key(self) -> str:
        return f"paywave-refund-{self.id}"


class OrphanStatus(models.TextChoices):
    OPEN = "open"  # may hold a charge: looked up until withdrawn or found absent
    WITHDRAWN = "withdrawn"  # cancelled at the gateway (or expired there unpaid)
    ABSENT = "absent"  # the gateway has no such charge
    REFUNDING = "refunding"  # paid after the payment was settled elsewhere: being refunded
    REFUNDED = "refunded"  # that extra payment went back to the payer
    SETTLED = "settled"  # it became the payment's own charge (paid first, or taken after all)
    GIVEN_UP = "given_up"  # the gateway never answered in time: an operator checks it


class OrphanCharge(models.Model):
    """A charge a payment may have left at a gateway it moved on from.

    A PIX fallback leaves one when the tries at a gateway ended with no usable answer
    (the charge may exist there; nobody was shown its code). It is withdrawn as soon as
    that gateway answers again; if it was paid anyway, the payment is settled once and
    any second payment is refunded (payments/orphans.py).
    """

    id = models.BigAutoField(primary_key=True)
    # Indexed first in orphan_charge_unique below.
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="orphans", db_index=False
    )
    gateway = models.CharField(max_length=40)
    idempotency_key = models.CharField(max_length=255)
    charge_params = EncryptedTextField(blank=True, default="")
    reference = models.CharField(max_length=120, blank=True, default="", db_index=True)
    status = models.CharField(
        max_length=16, choices=OrphanStatus.choices, default=OrphanStatus.OPEN
    )
    reason = models.CharField(max_length=255)
    # Past this the charge would have expired at the gateway had nobody paid it.
    expires_at = models.DateTimeField()
    next_check_at = models.DateTimeField(default=timezone.now)
    # Claimed by one sweep until then (compare-and-set): two sweeps never resolve it at once.
    claimed_until = models.DateTimeField(null=True, blank=True)
    checks = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    amount_paid = models.BigIntegerField(null=True, blank=True)
    refund_reference = models.CharField(max_length=120, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(fields=["payment", "gateway"], name="orphan_charge_unique"),
            models.CheckConstraint(
                condition=Q(status__in=OrphanStatus.values), name="orphan_status_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_check_at"],
                condition=Q(status__in=["open", "refunding"]),
                name="orphan_due_idx",
            ),
            key_id_index("charge_params", name="orphan_charge_params_key_idx"),
        ]

    def __str__(self) -> str:
        return f"orphan of {self.payment_id} at {self.gateway}: {self.status}"

    @property
    def refund_idempotency_key(self) -> str:
        return f"paywave-orphan-{self.payment_id}-{self.gateway}-refund"


DISPUTE_STATUS_CHOICES = [(status.value, status.name.title()) for status in DisputeStatus]
DISPUTE_KIND_CHOICES = [(kind.value, kind.name.title()) for kind in DisputeKind]
CLOSED_DISPUTE_STATUSES = (DisputeStatus.WON, DisputeStatus.LOST)


class Dispute(models.Model):
    """A payer contesting a succeeded payment at its gateway: a chargeback, a gateway's own
    mediation, or a PIX MED return request. Its state is only ever what the gateway reports
    (payments/disputes.py); its money moves in the ledger as it opens and closes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="disputes")
    gateway = models.CharField(max_length=40)
    reference = models.CharField(max_length=120, help_text="The gateway's id for the dispute.")
    kind = models.CharField(max_length=16, choices=DISPUTE_KIND_CHOICES)
    status = models.CharField(max_length=16, choices=DISPUTE_STATUS_CHOICES)
    raw_status = models.CharField(max_length=120, blank=True, default="")
    amount = models.BigIntegerField(help_text="Minor units of `currency`: what the payer disputes.")
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=120, blank=True, default="")
    evidence_due_at = models.DateTimeField(null=True, blank=True)
    evidence_submittable = models.BooleanField(default=False)
    # What staff answered through the gateway's API (it may name the payer: encrypted).
    evidence_text = EncryptedTextField(blank=True, default="")
    evidence_submitted_at = models.DateTimeField(null=True, blank=True)
    evidence_submitted_by = models.CharField(max_length=120, blank=True, default="")
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    # When PayWave last read it at the gateway (callback or polling).
    checked_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-opened_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["gateway", "reference"], name="dispute_reference_unique"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="dispute_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=[status.value for status in DisputeStatus]),
                name="dispute_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=[kind.value for kind in DisputeKind]),
                name="dispute_kind_valid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["checked_at"],
                condition=Q(status__in=["needs_response", "under_review"]),
                name="dispute_open_checked_idx",
            ),
            models.Index(
                fields=["evidence_due_at"],
                condition=Q(status="needs_response"),
                name="dispute_due_idx",
            ),
            key_id_index("evidence_text", name="dispute_evidence_text_key_idx"),
        ]

    def __str__(self) -> str:
        return f"dispute {self.reference} {money_display(self.amount, self.currency)} {self.status}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_DISPUTE_STATUSES
