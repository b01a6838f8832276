"""Mercado Pago's disputes as its API writes them: chargebacks, mediations, notifications.

A chargeback is an object of its own (`GET /v1/chargebacks/{id}`) and moves its payment to
`charged_back`; a mediation (Mercado Pago's buyer protection) shows only on the payment
(`in_mediation`), so its rendering here is the simulator's own, after Mercado Pago's claims.
"""

import json
from datetime import datetime, timedelta
from typing import Any

from gateways.simulators._money import major_number
from gateways.simulators.context import mercadopago_time

CHARGEBACK_ID_BASE = 233_300_000_000_000_000  # Mercado Pago's are 18-digit numeric strings
APPLICATION_ID = 7_364_289_758_936_022  # the simulated integration's application
DOCUMENTATION_WINDOW = timedelta(days=10)
CHARGEBACK_TOPIC = "topic_chargebacks_wh"
MEDIATION_PREFIX = "mediation-"
CHARGEBACK = "chargeback"
MEDIATION = "mediation"


def new_chargeback(
    chargeback_id: str, *, payment_id: int, amount: int, reason: str, now: datetime
) -> dict[str, Any]:
    """An open chargeback, its documentation awaited until the deadline."""
    return {
        "id": chargeback_id,
        "payments": [payment_id],
        "currency": "BRL",
        "amount": major_number(amount),
        "reason": reason,  # not in Mercado Pago's documented object; the adapter reads it
        "coverage_applied": False,
        "coverage_elegible": True,  # sic: Mercado Pago's spelling
        "documentation_required": True,
        "documentation_status": "pending",
        "documentation": [],
        "date_documentation_deadline": mercadopago_time(now + DOCUMENTATION_WINDOW),
        "date_created": mercadopago_time(now),
        "date_last_updated": mercadopago_time(now),
        "live_mode": False,
    }


def close_chargeback(chargeback: dict[str, Any], *, won: bool, now: datetime) -> None:
    """Decided: covered (the merchant keeps the money) or not."""
    chargeback.update(
        coverage_applied=won,
        documentation_status="valid" if won else "invalid",
        date_last_updated=mercadopago_time(now),
    )


def new_mediation(payment_id: int, *, amount: int, reason: str, now: datetime) -> dict[str, Any]:
    """An open mediation, written like a Mercado Pago claim of type "mediations"."""
    return {
        "id": f"{MEDIATION_PREFIX}{payment_id}",
        "type": "mediations",
        "resource": "payment",
        "resource_id": payment_id,
        "status": "opened",
        "stage": "dispute",
        "reason_id": reason,
        "amount": major_number(amount),
        "currency_id": "BRL",
        "resolution": None,
        "date_created": mercadopago_time(now),
        "last_updated": mercadopago_time(now),
    }


def close_mediation(mediation: dict[str, Any], *, won: bool, now: datetime) -> None:
    """Decided for the seller (the respondent) or the buyer (the complainant)."""
    mediation.update(
        status="closed",
        resolution={
            "reason": "seller_won" if won else "buyer_won",
            "benefited": ["respondent" if won else "complainant"],
            "date_created": mercadopago_time(now),
        },
        last_updated=mercadopago_time(now),
    )


def chargeback_notification(
    chargeback: dict[str, Any],
    *,
    action: str,
    notification_id: int,
    user_id: int,
    version: int,
    now: datetime,
) -> bytes:
    """The body of Mercado Pago's chargebacks topic notification (`topic_chargebacks_wh`)."""
    return json.dumps(
        {
            "actions": [action],  # "created" or "changed_case_status"
            "api_version": "v1",
            "application_id": APPLICATION_ID,
            "data": {
                "id": chargeback["id"],
                "payment_id": chargeback["payments"][0],
                "checkout": "API",
                "site_id": "MLB",
                "date_updated": chargeback["date_last_updated"],
            },
            "date_created": mercadopago_time(now),
            "id": notification_id,
            "live_mode": False,
            "type": CHARGEBACK_TOPIC,
            "user_id": user_id,
            "version": version,
        }
    ).encode()
