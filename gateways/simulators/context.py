"""What every gateway simulator shares, and the interface the server drives them through."""

import json
import secrets
import string
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from gateways.simulators.callbacks import CallbackSender
from gateways.simulators.config import SimulatorConfig
from gateways.simulators.faults import BrCodeFault, CaptureFault, FaultBook, RefundFault
from gateways.simulators.routing import Request, Response, Route
from gateways.simulators.store import Store

_ALPHANUMERIC = string.ascii_letters + string.digits


class SimulationError(Exception):
    """A /_sim action that cannot be done (unknown charge, wrong state): HTTP status + why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class SimContext:
    config: SimulatorConfig
    store: Store
    callbacks: CallbackSender
    stopping: threading.Event = field(default_factory=threading.Event)
    public_url: str = "http://127.0.0.1"
    faults: FaultBook | None = None


class GatewaySimulator(ABC):
    name: str

    def __init__(self, context: SimContext) -> None:
        self.context = context
        self.store = context.store

    @abstractmethod
    def routes(self) -> list[Route]: ...

    @abstractmethod
    def error_response(self, status: int, message: str) -> Response:
        """An error in this gateway's own shape (used for faults and unknown routes)."""

    def br_code_fault(self) -> BrCodeFault:
        """What the BR Code of a charge made now must carry (the `br_code` fault)."""
        faults = self.context.faults
        return faults.settings(self.name).br_code if faults else BrCodeFault.VALID

    def refund_fault(self) -> RefundFault:
        """How a refund made (or a pending one read back) now ends (the `refund_status` fault)."""
        faults = self.context.faults
        return faults.settings(self.name).refund_status if faults else RefundFault.SUCCEEDED

    def capture_fault(self) -> CaptureFault:
        """How a capture made now ends (the `capture_status` fault)."""
        faults = self.context.faults
        return faults.settings(self.name).capture_status if faults else CaptureFault.COMPLETED

    # Disputes, driven by the control API (POST /_sim/disputes, .../{id}/close). A gateway
    # simulator that takes disputes overrides all four; each answer is the dispute as the
    # gateway's API renders it, and the callback the change sent (None if none was due).

    def disputed_charge(self, payment_id: str) -> str | None:
        """The id of this gateway's paid charge for PayWave's payment `payment_id`, if any."""
        return None

    def open_dispute(
        self, charge_id: str, *, amount: int | None, reason: str, kind: str
    ) -> tuple[dict[str, Any], Any]:
        """Open a dispute on a paid charge (`amount` None: what is left of it); SimulationError
        (400, 409) when the charge cannot take it. Returns (dispute, Delivery | None)."""
        raise SimulationError(501, f"{self.name} does not simulate disputes")

    def has_dispute(self, dispute_id: str) -> bool:
        return False

    def close_dispute(self, dispute_id: str, *, outcome: str) -> tuple[dict[str, Any], Any]:
        """Close an open dispute, `outcome` "won" or "lost" (the merchant's side); a closed
        one answers 409. Returns (dispute, Delivery | None)."""
        raise SimulationError(501, f"{self.name} does not simulate disputes")

    def not_found(self, request: Request) -> Response:
        return self.error_response(
            404, f"Unrecognized request URL ({request.method}: {request.path})"
        )


def random_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def canonical(data: Any) -> str:
    """A stable text of a JSON-like value, to compare request parameters."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """ "2024-05-01T12:00:00.123Z", as BCB API Pix writes times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


MERCADOPAGO_TZ = timezone(timedelta(hours=-4))


def mercadopago_time(moment: datetime) -> str:
    """ "2024-05-01T08:00:00.123-04:00", as Mercado Pago writes times."""
    return moment.astimezone(MERCADOPAGO_TZ).isoformat(timespec="milliseconds")


def end_to_end_id(ispb: str) -> str:
    """A PIX end-to-end id: "E", the payer PSP's ISPB, yyyyMMddHHmm (UTC), 11 characters."""
    return "E" + ispb + utc_now().strftime("%Y%m%d%H%M") + random_id("", 11)
