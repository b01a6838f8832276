"""The one interface every payment gateway is used through.

Typed values cross the boundary: a ChargeRequest goes in, a ChargeResult comes
out, and errors say what the caller must do (`Declined`: final; `Retryable`:
try again; `Ambiguous`: the charge may exist, look it up before anything else;
`Misconfigured`: an operator must fix credentials or settings). Nothing outside
`gateways/` imports a gateway SDK.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypedDict


class ChargeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    REQUIRES_ACTION = "requires_action"
    AWAITING_PAYMENT = "awaiting_payment"
    PENDING = "pending"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    # Money arrived and went back, or is contested: never a success to settle on.
    REFUNDED = "refunded"  # refunded in full at the gateway
    CHARGED_BACK = "charged_back"  # the payer's bank took it back
    IN_DISPUTE = "in_dispute"  # the payer contested it; the outcome is open


# The gateway holds the payer's money, or may still get it: a charge to withdraw or settle.
LIVE_CHARGE_STATUSES = frozenset(
    {
        ChargeStatus.SUCCEEDED,
        ChargeStatus.REQUIRES_ACTION,
        ChargeStatus.AWAITING_PAYMENT,
        ChargeStatus.PENDING,
    }
)
REVERSED_CHARGE_STATUSES = frozenset(
    {ChargeStatus.REFUNDED, ChargeStatus.CHARGED_BACK, ChargeStatus.IN_DISPUTE}
)
# The payer paid, whether the money stayed or went back: what a waiting payment settles
# from (payments.processing.payment_settle_paid tells which).
PAID_CHARGE_STATUSES = REVERSED_CHARGE_STATUSES | {ChargeStatus.SUCCEEDED}


class RefundStatus(StrEnum):
    """A refund's state at its gateway, and of PayWave's Refund row alike."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class Payer:
    name: str
    country: str
    email: str = ""
    tax_id: str = ""  # CPF (11 digits) or CNPJ (14 characters), normalized


@dataclass(frozen=True)
class ChargeRequest:
    payment_id: str
    amount: int  # minor units
    currency: str
    method: str  # "pix" | "card" | "paypal"
    payer: Payer
    idempotency_key: str
    card_token: str = ""
    pix_expires_in: int = 3600
    description: str = ""
    return_url: str = ""  # where a gateway's page (3-D Secure, PayPal) sends the payer back
    cancel_url: str = ""  # where PayPal's page sends a payer who cancels; empty: none given


@dataclass(frozen=True)
class PixCharge:
    txid: str
    br_code: str  # the EMV payload ("copia e cola"), CRC checked
    expires_at: datetime | None


@dataclass(frozen=True)
class ChargeResult:
    status: ChargeStatus
    reference: str  # the gateway's id for the charge
    raw_status: str  # the gateway's own word, for the record
    amount: int | None = None  # minor units, as the gateway reports the charge
    currency: str = ""  # ISO 4217, upper case, as the gateway reports the charge
    pix: PixCharge | None = None
    card_brand: str = ""
    card_last4: str = ""
    next_action: dict[str, Any] | None = None
    failure_code: str = ""
    failure_message: str = ""
    # The gateway's id for the money taken when it is not the charge's: a PayPal capture.
    capture_reference: str = ""


@dataclass(frozen=True)
class RefundResult:
    status: RefundStatus
    reference: str
    amount: int
    raw_status: str


class DisputeKind(StrEnum):
    """What took the money back, or is asking for it."""

    CHARGEBACK = "chargeback"  # a card network's chargeback or inquiry (Stripe, Mercado Pago)
    MEDIATION = "mediation"  # the gateway's own buyer-protection case (Mercado Pago, PayPal)
    PIX_MED = "pix_med"  # PIX's special return mechanism (MED): a return request


class DisputeStatus(StrEnum):
    """A dispute as every gateway's words map onto it (docs/gateways.md, "Disputes")."""

    NEEDS_RESPONSE = "needs_response"  # open: evidence or an answer is due
    UNDER_REVIEW = "under_review"  # open: answered; the gateway or the network decides
    WON = "won"  # closed: the money stays with the merchant (or comes back)
    LOST = "lost"  # closed: the money went back to the payer


OPEN_DISPUTE_STATUSES = frozenset({DisputeStatus.NEEDS_RESPONSE, DisputeStatus.UNDER_REVIEW})


@dataclass(frozen=True)
class DisputeResult:
    """A dispute as its gateway reports it now."""

    reference: str  # the gateway's id for the dispute
    # The charge it contests, as PayWave stores it in `Payment.gateway_reference`:
    # Stripe's PaymentIntent id, Mercado Pago's payment id, Efí's txid, PayPal's order id.
    charge_reference: str
    kind: DisputeKind
    status: DisputeStatus
    raw_status: str  # the gateway's own words, for the record
    amount: int  # minor units: what the payer disputes
    currency: str  # ISO 4217, upper case
    reason: str = ""  # the gateway's reason code, e.g. "fraudulent"
    evidence_due_at: datetime | None = None
    # The gateway takes an answer through its API (`submit_dispute_evidence`).
    evidence_submittable: bool = False


@dataclass(frozen=True)
class HealthResult:
    healthy: bool
    latency_ms: int
    detail: str = ""


class CallbackKind(StrEnum):
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_CANCELED = "payment.canceled"
    PAYMENT_PENDING = "payment.pending"
    PAYMENT_UPDATED = "payment.updated"  # the gateway only says "look it up"
    REFUND_SUCCEEDED = "refund.succeeded"
    DISPUTE_UPDATED = "dispute.updated"  # a dispute opened, changed or closed: read it back
    OTHER = "other"


@dataclass(frozen=True)
class CallbackEvent:
    """A verified gateway callback, normalized."""

    gateway: str
    event_id: str  # the gateway's id for the event: dedupe key
    kind: CallbackKind
    reference: str = ""  # the gateway's charge id
    payment_id: str = ""  # PayWave's payment id when the gateway echoes it
    txid: str = ""
    amount: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


class ErrorDetails(TypedDict):
    """What a gateway said about an error, as GatewayError's keyword arguments."""

    code: str
    gateway_message: str
    http_status: int | None


class GatewayError(Exception):
    """A gateway call that did not do what was asked. Subclasses say what to do next."""

    outcome = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        gateway_message: str = "",
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code  # the gateway's code, e.g. "card_declined"
        self.gateway_message = gateway_message  # the gateway's words, never shown to payers
        self.http_status = http_status


class Declined(GatewayError):
    """Final: the payer or the request was refused. No retry, no other gateway."""

    outcome = "declined"


class Retryable(GatewayError):
    """Nothing was charged (connection refused, 5xx, 429): try again."""

    outcome = "retryable"


class Ambiguous(GatewayError):
    """The request was sent but no answer came: the charge may exist."""

    outcome = "ambiguous"


class Misconfigured(GatewayError):
    """Credentials or settings are wrong: alert an operator, do not retry forever."""

    outcome = "misconfigured"


class ChargeNotFound(GatewayError):
    """The gateway has no charge with this reference."""

    outcome = "not_found"


class Unsupported(GatewayError):
    """The gateway's API does not offer this (e.g. answering a dispute)."""

    outcome = "unsupported"


class InvalidCallback(Exception):
    """A callback that is forged, stale or malformed."""


class GatewayAdapter(ABC):
    """One gateway account, through its official SDK."""

    # HTTP requests one charge may take (token, charge, QR code), each with its own timeout.
    requests_per_charge = 1

    def __init__(self, *, code: str, timeout_seconds: float) -> None:
        self.code = code
        self.timeout_seconds = timeout_seconds

    @abstractmethod
    def charge(self, request: ChargeRequest) -> ChargeResult: ...

    @abstractmethod
    def retrieve(self, reference: str) -> ChargeResult: ...

    @abstractmethod
    def find_charge(self, request: ChargeRequest) -> ChargeResult | None:
        """The charge this request's idempotency key made, or None if the gateway has none.

        Raises a GatewayError when the gateway cannot tell (then nobody may charge elsewhere).
        """

    @abstractmethod
    def cancel(self, reference: str) -> ChargeResult: ...

    def capture(self, reference: str, idempotency_key: str) -> ChargeResult:
        """Take the money of a charge the payer approved (PayPal). Gateways that charge
        at once have nothing to capture."""
        raise NotImplementedError(f"{self.code}: charges are not captured separately")

    @abstractmethod
    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> RefundResult: ...

    @abstractmethod
    def health(self) -> HealthResult: ...

    # Disputes: money taken back after a charge succeeded (docs/gateways.md, "Disputes").

    def disputes(self, reference: str) -> list[DisputeResult]:
        """Every dispute on the charge `reference` (as in `ChargeResult.reference`), as now."""
        raise Unsupported(f"{self.code}: disputes are not read here")

    def dispute(self, reference: str) -> DisputeResult:
        """One dispute, by the gateway's id for it, as it is now."""
        raise Unsupported(f"{self.code}: disputes are not read here")

    def disputes_since(self, since: datetime) -> list[DisputeResult]:
        """Disputes opened (or changed, where the gateway can tell) at or after `since`."""
        raise Unsupported(f"{self.code}: disputes are not listed here")

    def submit_dispute_evidence(self, reference: str, text: str) -> DisputeResult:
        """Answer a dispute with `text` and submit it; Unsupported where the API has no way."""
        raise Unsupported(f"{self.code}: disputes cannot be answered through the API")

    @abstractmethod
    def parse_callback(
        self, *, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
    ) -> CallbackEvent:
        """Verify a callback's signature and normalize it, or raise InvalidCallback."""
