import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from paywave.encryption.fields import EncryptedJSONField, key_id_index


class ApiClient(models.Model):
    """A wallet app: it authenticates as its Django user and owns its payments."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_client"
    )
    name = models.CharField(max_length=100, unique=True)
    # Deactivated: no new tokens, and its tokens stop working (paywave.api.accounts).
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "API client (wallet app)"
        verbose_name_plural = "API clients (wallet apps)"

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A wallet app's secret API key, used as `Authorization: Bearer <key>`.

    Only its SHA-256 digest is kept (the key itself is shown once, when made). A key
    has about 256 random bits, so the digest cannot be searched backwards.
    """

    id = models.BigAutoField(primary_key=True)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True, default="")
    digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=24, help_text="Its start and last four characters.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # A rolled key keeps working until then (its successor is in place meanwhile).
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.hint} ({self.name or 'unnamed'})"


class IdempotencyKey(models.Model):
    """One client's Idempotency-Key: claimed while its request runs, then its stored answer."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    id = models.BigAutoField(primary_key=True)
    # Indexed first in the unique (client, key) below.
    client = models.ForeignKey(
        ApiClient, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    locked_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # The answer may hold personal data (a payment's payer): encrypted.
    response_body = EncryptedJSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="idempotency_key_unique"),
            models.CheckConstraint(
                condition=Q(state="in_progress") | Q(response_status__isnull=False),
                name="idempotency_completed_has_response",
            ),
        ]
        indexes = [
            models.Index(fields=["expires_at"], name="idempotency_expires_idx"),
            key_id_index("response_body", name="idempotency_body_key_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id}:{self.key}"


class ScheduledTaskRun(models.Model):
    """A beat task's heartbeat: when it last succeeded and failed, and what it answered.

    Written by every worker as the task ends (paywave.observability.heartbeats), read by
    /metrics: an alert when one has not succeeded on time. In the database, so a lost
    cache cannot make every task look late at once.
    """

    task = models.CharField(max_length=200, primary_key=True)
    last_succeeded_at = models.DateTimeField(null=True, blank=True)
    last_failed_at = models.DateTimeField(null=True, blank=True)
    last_result = models.JSONField(null=True, blank=True)

    def __str__(self) -> str:
        return self.task
