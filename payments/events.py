"""What payments publish (paywave.domain_events): the changes other apps act on.

Each is published inside the transaction that makes it, after its rows are written;
wallets and notifications subscribe to them in their AppConfig.ready().
"""

from dataclasses import dataclass
from typing import Any

from .models import CLOSED_DISPUTE_STATUSES, Dispute, Payment, PaymentStatus, Refund


@dataclass(frozen=True, kw_only=True)
class PaymentChanged:
    """A payment's status changed: by `payment_transition`, or its creation (from "").

    `payment` is the row as written (locked until the commit); `document` is the
    payment as wallet apps see it, as it commits (API.md).
    """

    payment: Payment
    from_status: str
    to_status: str
    reason: str
    actor: str
    document: dict[str, Any]

    @property
    def event_type(self) -> str | None:
        """Its name for wallet apps, `payment.<status>`; None for a creation (the 202 is
        its answer, never an event)."""
        return None if self.to_status == PaymentStatus.PENDING else f"payment.{self.to_status}"


@dataclass(frozen=True, kw_only=True)
class RefundChanged:
    """A refund was created (from "" to pending, under its payment's lock) or settled.

    `document` is the refund as wallet apps see it (API.md), as it commits.
    """

    refund: Refund
    payment: Payment
    from_status: str
    to_status: str
    document: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class DisputeChanged:
    """A dispute was first seen (from "") or moved on, under its payment's lock.

    `document` is the dispute as wallet apps see it (API.md), as it commits; a dispute
    first seen already closed goes from "" straight to `won` or `lost`.
    """

    dispute: Dispute
    payment: Payment
    from_status: str
    to_status: str
    document: dict[str, Any]

    @property
    def opened(self) -> bool:
        return self.from_status == ""

    @property
    def closed(self) -> bool:
        return self.to_status in CLOSED_DISPUTE_STATUSES and (
            self.from_status not in CLOSED_DISPUTE_STATUSES
        )
