import secrets
import uuid

from django.db import models
from django.db.models import Q

from paywave.encryption.fields import EncryptedJSONField, EncryptedTextField, key_id_index
from paywave.models import ApiClient

# What a wallet app may subscribe to (API.md, "Webhooks to wallet apps"); "*" is all of them.
EVENT_TYPES: tuple[str, ...] = (
    "payment.processing",
    "payment.requires_action",
    "payment.awaiting_payment",
    "payment.succeeded",
    "payment.failed",
    "payment.canceled",
    "payment.expired",
    "payment.partially_refunded",
    "payment.refunded",
    "payment.dispute_opened",
    "payment.dispute_closed",
    "refund.succeeded",
    "refund.failed",
    "wallet.credited",
    "transfer.completed",
)
ALL_EVENTS = "*"


def subscribed_to(events: list[str] | tuple[str, ...], event_type: str) -> bool:
    """Does an endpoint's list of event types take `event_type`?"""
    return ALL_EVENTS in events or event_type in events


def new_event_id() -> str:
    """`evt_` and 24 random characters: says nothing of how many events there are."""
    return "evt_" + secrets.token_urlsafe(18)


class Event(models.Model):
    """Something a wallet app may be told about, written in the transaction that made it true.

    Append-only and ordered by id: deliveries read it in order per subject.
    """

    id = models.BigAutoField(primary_key=True)
    # The id wallet apps see and dedupe on (deliveries, the events list).
    public_id = models.CharField(max_length=40, unique=True, default=new_event_id)
    type = models.CharField(max_length=40)  # e.g. "payment.succeeded"
    # Indexed first in event_client_recent_idx below.
    client = models.ForeignKey(
        ApiClient, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    subject_id = models.UUIDField()  # the payment, refund, wallet or transfer
    # The subject as the API shows it, at that moment: personal data, so encrypted.
    data = EncryptedJSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Set once its deliveries exist; the fan-out sweep picks up events still null.
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        indexes = [
            models.Index(fields=["subject_id", "id"], name="event_subject_idx"),
            models.Index(
                fields=["created_at"],
                condition=Q(fanned_out_at__isnull=True),
                name="event_not_fanned_out_idx",
            ),
            key_id_index("data", name="event_data_key_idx"),
            models.Index(fields=["client", "-created_at", "-id"], name="event_client_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.subject_id}"


class WebhookEndpoint(models.Model):
    """A wallet app's URL that receives signed deliveries of the events it subscribed to.

    Deleting through the API is soft (`deleted_at`): the deliveries and their
    attempts stay for the record.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed first in webhook_endpoint_client_idx below.
    client = models.ForeignKey(
        ApiClient, on_delete=models.PROTECT, related_name="webhook_endpoints", db_index=False
    )
    url = models.URLField(max_length=2048)
    events = models.JSONField(default=list)  # event types, or ["*"]
    secret = EncryptedTextField()  # the server signs with it, so it is encrypted, not hashed
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=255, blank=True, default="")
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["client", "created_at"], name="webhook_endpoint_client_idx"),
            key_id_index("secret", name="webhook_secret_key_idx"),
        ]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # to be sent, or retried
    DELIVERED = "delivered"  # a 2xx came back
    FAILED = "failed"  # given up: the retry window passed, or the endpoint was deleted


class Delivery(models.Model):
    """One event to one endpoint: sent until a 2xx, or until its retry window closes.

    `job_token` is the token of the one queued job allowed to send it (None: no job is
    queued and beat's sweep publishes one when `next_attempt_at` comes), so a
    duplicate or late job does nothing.
    """

    id = models.BigAutoField(primary_key=True)
    # Each indexed first: event in the unique (event, endpoint), endpoint in
    # delivery_subject_order_idx, below.
    event = models.ForeignKey(
        Event, on_delete=models.PROTECT, related_name="deliveries", db_index=False
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries", db_index=False
    )
    subject_id = models.UUIDField()  # the event's, copied for the in-order check
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    job_token = models.UUIDField(null=True, blank=True)
    # Retries stop at window_started_at + PAYWAVE_WEBHOOK_RETRY_HOURS (the event's time,
    # or when staff redelivered it or re-enabled its endpoint).
    window_started_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-id",)
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_event_endpoint"),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["endpoint", "subject_id", "event"], name="delivery_subject_order_idx"
            ),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="delivery_pending_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One POST of a delivery: what came back, how fast, or what went wrong."""

    id = models.BigAutoField(primary_key=True)
    # Indexed first in the unique (delivery, number) below.
    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    number = models.PositiveIntegerField()
    succeeded = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField()
    response_excerpt = models.CharField(max_length=500, blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("delivery", "number")
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="delivery_attempt_number")
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id}#{self.number} {self.status_code or self.error}"
