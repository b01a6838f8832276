"""What PayWave asks a gateway to charge, and whether what comes back may settle a payment."""

import dataclasses
import json

from gateways.base import ChargeRequest, ChargeResult, Payer

from .models import Payment, PaymentAttempt


def idempotency_key_for(payment: Payment, gateway_code: str) -> str:
    """One key per payment and gateway: every retry there replays the same charge."""
    return f"paywave-{payment.id}-{gateway_code}"


def frozen_charge_params(
    payment: Payment, gateway_code: str, attempts: list[PaymentAttempt] | None = None
) -> str:
    """What the first call to this gateway sent, or "" if none was made yet."""
    if attempts is None:
        attempts = list(payment.attempts.filter(gateway=gateway_code).order_by("id"))
    for attempt in attempts:
        if attempt.gateway == gateway_code and attempt.charge_params:
            return attempt.charge_params
    return ""


def charge_params_text(request: ChargeRequest) -> str:
    """A charge request as an attempt keeps it (JSON, in an encrypted column)."""
    return json.dumps(dataclasses.asdict(request), sort_keys=True)


def charge_request_from_params(text: str) -> ChargeRequest:
    fields = json.loads(text)
    fields["payer"] = Payer(**fields["payer"])
    return ChargeRequest(**fields)


def settlement_problem(payment: Payment, result: ChargeResult) -> str:
    """Why the gateway's charge cannot settle this payment ("" if it can).

    Whatever reads a charge back (the call's answer, a lookup, a callback's read-back)
    checks it is this payment's amount in this payment's currency before any move.
    """
    if result.amount != payment.amount:
        return f"the charge is for {result.amount}, not {payment.amount}"
    if result.currency != payment.currency:
        stated = result.currency or "an unstated currency"
        return f"the charge is in {stated}, not {payment.currency}"
    return ""
