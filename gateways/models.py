from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from gateways.table_generation import gateway_table_changed
from paywave.encryption.fields import EncryptedTextField, key_id_index
from paywave.values.countries import COUNTRY_CODES


class AdapterKind(models.TextChoices):
    STRIPE = "stripe", "Stripe (cards)"
    MERCADOPAGO = "mercadopago", "Mercado Pago (PIX)"
    GERENCIANET = "gerencianet", "Gerencianet / Efí (PIX)"
    PAYPAL = "paypal", "PayPal (Orders v2)"


# Keyed by the value stored in Gateway.adapter (a str; AdapterKind members are str too).
ADAPTER_METHODS: dict[str, set[str]] = {
    AdapterKind.STRIPE: {"card"},
    AdapterKind.MERCADOPAGO: {"pix"},
    AdapterKind.GERENCIANET: {"pix"},
    AdapterKind.PAYPAL: {"paypal"},
}


class GatewayQuerySet(models.QuerySet["Gateway"]):
    """Writes in bulk forget the cached gateway table too (gateways.table), as saves do."""

    def update(self, **kwargs: Any) -> int:
        updated = super().update(**kwargs)
        gateway_table_changed()
        return updated

    def delete(self) -> tuple[int, dict[str, int]]:
        deleted = super().delete()
        gateway_table_changed()
        return deleted


class Gateway(models.Model):
    """One gateway account payments can be routed to; editable without a deploy.

    Several rows may use one adapter (two Stripe accounts for two regions): each
    reads its credentials from environment variables named with its
    `credentials_prefix` (e.g. STRIPE_EU_API_KEY for prefix STRIPE_EU_).
    """

    code = models.SlugField(max_length=40, unique=True)
    adapter = models.CharField(max_length=20, choices=AdapterKind.choices)
    display_name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    priority = models.PositiveSmallIntegerField(default=100, help_text="Lower goes first.")
    methods = models.JSONField(default=list, help_text='e.g. ["pix"] or ["card"]')
    currencies = models.JSONField(default=list, help_text='ISO 4217 codes, e.g. ["BRL"]')
    countries = models.JSONField(
        default=list, blank=True, help_text="Payer countries (ISO 3166-1); empty means all."
    )
    timeout_ms = models.PositiveIntegerField(default=10_000)
    credentials_prefix = models.CharField(
        max_length=40,
        blank=True,
        help_text="Environment prefix of this account's credentials; "
        "empty means the adapter's default (STRIPE_, MERCADOPAGO_, GERENCIANET_).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GatewayQuerySet.as_manager()

    class Meta:
        ordering = ("priority", "code")
        constraints = [
            models.CheckConstraint(
                condition=Q(adapter__in=AdapterKind.values), name="gateway_adapter_known"
            ),
            models.CheckConstraint(
                condition=Q(timeout_ms__gte=100) & Q(timeout_ms__lte=120_000),
                name="gateway_timeout_bounded",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.code})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        supported = ADAPTER_METHODS.get(self.adapter, set())
        if (
            not _is_list_of_str(self.methods)
            or not set(self.methods) <= supported
            or not self.methods
        ):
            errors["methods"] = f"A non-empty list from {sorted(supported)}."
        if not _is_list_of_str(self.currencies) or not all(
            len(c) == 3 and c.isupper() for c in self.currencies
        ):
            errors["currencies"] = 'A list of ISO 4217 codes such as ["BRL"].'
        if not _is_list_of_str(self.countries) or not set(self.countries) <= COUNTRY_CODES:
            errors["countries"] = 'A list of ISO 3166-1 alpha-2 codes such as ["BR"], or [].'
        if errors:
            raise ValidationError(errors)

    def supports(self, *, method: str, currency: str, country: str) -> bool:
        return (
            method in self.methods
            and currency in self.currencies
            and (not self.countries or country in self.countries)
        )


def _is_list_of_str(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


class CallbackStatus(models.TextChoices):
    RECEIVED = "received"  # verified and stored; a worker will process it
    PROCESSED = "processed"  # it moved a payment
    IGNORED = "ignored"  # verified, but nothing to change (duplicate state, late, other kind)
    UNMATCHED = "unmatched"  # no payment of ours matches: kept for reconciliation
    CONFLICT = "conflict"  # it contradicts a final payment (paid after cancel): staff look
    REJECTED = "rejected"  # forged, stale or malformed: never processed
    FAILED = "failed"  # the gateway could not be asked about it; reconciliation covers it


class GatewayCallback(models.Model):
    """Every callback a gateway sent us, as received: the audit trail and the dedupe key."""

    id = models.BigAutoField(primary_key=True)
    gateway = models.CharField(max_length=40)
    event_id = models.CharField(max_length=200, blank=True, default="")
    kind = models.CharField(max_length=40, blank=True, default="")
    reference = models.CharField(max_length=120, blank=True, default="", db_index=True)
    payment_id = models.UUIDField(null=True, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=CallbackStatus.choices)
    detail = models.CharField(max_length=500, blank=True, default="")
    headers = models.JSONField(default=dict, blank=True)
    # The raw body may carry payer data (names, e-mails): encrypted like every personal field.
    # Kept for verified callbacks only; a rejected one keeps its hash and size instead.
    body = EncryptedTextField(blank=True, default="")
    body_sha256 = models.CharField(max_length=64, blank=True, default="")
    body_size = models.PositiveIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-received_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["gateway", "event_id"],
                condition=~Q(event_id=""),
                name="gateway_callback_event_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "received_at"], name="callback_status_idx"),
            key_id_index("body", name="callback_body_key_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.gateway} {self.event_id or '-'} {self.status}"
