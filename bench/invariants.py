"""After a chaos run: PayWave's records against the simulators' and the ledger's.

Definitions (bench/README.md says the same):

- accepted: payments PayWave stored (a stored payment was accepted: it is written
  before the 202). `acknowledged` is how many 202s the wallet apps got; an
  acknowledged id missing from the database counts as lost.
- final: status other than pending/processing (awaiting_payment counts: the PIX
  charge is issued); parked: processing with needs_reconciliation;
  lost: accepted, neither final nor parked.
- a successful charge is one that took, or can still take, the payer's money:
  Stripe PaymentIntent `succeeded` (or `processing`/`requires_capture`), Mercado Pago
  payment `pending`/`approved`/`authorized`/`in_process` (or later `refunded`,
  `charged_back`), Efí cob `ATIVA`/`CONCLUIDA`. A pending PIX charge counts: the
  payer holds a QR code they can still pay. A charge withdrawn at the gateway does
  not (Mercado Pago `cancelled`, Efí `REMOVIDA_PELO_USUARIO_RECEBEDOR`: what
  withdrawing an orphan leaves), nor does a second payment PayWave gave back in full:
  a charge whose orphan PayWave recorded `refunded` and the gateway shows refunded in
  full (`extra_payments_refunded`). duplicate_charges: payments with more than one
  successful charge across all gateways (the simulators' records, whose `reference`
  is the PayWave payment id). Run it once no orphan is `open`: an open one may still
  be live at the gateway it was left at.
- orphans: charges a PIX fallback left behind, per status; `orphan_left_live`
  (mismatch): one recorded `withdrawn` or `absent` whose gateway still holds it live.
- ledger_imbalance (minor units): for every wallet, |balance - the sum of its
  succeeded payments|, plus, per currency, |sum of all ledger entries| (double entry
  sums to zero); ledger_problems: what `manage.py check_ledger` reports.
"""

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

IN_PROGRESS = ("pending", "processing")
LIVE_CHARGE = {
    "stripe": {"succeeded", "processing", "requires_capture"},
    "mercadopago": {"pending", "approved", "authorized", "in_process", "refunded", "charged_back"},
    "gerencianet": {"ATIVA", "CONCLUIDA"},
}
PAID_CHARGE = {"stripe": {"succeeded"}, "mercadopago": {"approved"}, "gerencianet": {"CONCLUIDA"}}
CREDITED = ("succeeded", "partially_refunded", "refunded")
# Orphans (payments_orphancharge) still being worked on: the checker waits for none.
ORPHANS_IN_PROGRESS = ("open", "refunding")
# Orphans nobody resolved: a charge that may be live with no one withdrawing it.
ORPHANS_UNRESOLVED = (*ORPHANS_IN_PROGRESS, "given_up")
DETAILS = 20  # payments described in full per problem


def live(charge: dict[str, Any]) -> bool:
    return charge["status"] in LIVE_CHARGE.get(charge["gateway"], set())


def check(
    database_url: str,
    simulator_url: str,
    acknowledged: set[str],
    *,
    check_ledger: Callable[[], list[str] | None],
) -> dict[str, Any]:
    with psycopg.connect(database_url, row_factory=dict_row) as db:
        payments = {
            str(row["id"]): row
            for row in db.execute(
                "SELECT id, status, needs_reconciliation, method, gateway, gateway_reference,"
                " amount, currency, wallet_id, failure_code FROM payments_payment"
            )
        }
        orphans = db.execute(
            "SELECT payment_id::text AS payment_id, gateway, status, reference"
            " FROM payments_orphancharge"
        ).fetchall()
        charges = httpx.get(simulator_url + "/_sim/charges", timeout=60).json()
        report = _payments(payments, acknowledged)
        report.update(_keys(db))
        report.update(_charges(payments, charges, orphans))
        report.update(_orphans(orphans))
        report.update(_ledger(db, check_ledger))
        problem_ids = set(report["lost_ids"]) | set(report["duplicate_ids"])
        for key in ("failed_with_live_charge", "final_without_charge", "paid_not_settled"):
            problem_ids |= set(report["mismatches"][key][:DETAILS])
        report["details"] = _details(db, sorted(problem_ids)[: DETAILS * 3], charges)
    return report


def _keys(db: psycopg.Connection) -> dict[str, Any]:
    """Payments no Idempotency-Key answered with: a retried request that made a second one.

    Every accepted payment is stored in the transaction that completes its key's row,
    whose stored answer names it (its Location header: the body is encrypted); one per
    key, so a payment no row names is a duplicate.
    """
    rows = db.execute(
        "SELECT p.id FROM payments_payment p WHERE NOT EXISTS (SELECT 1 FROM "
        "paywave_idempotencykey k WHERE k.client_id = p.client_id "
        "AND k.response_headers ->> 'Location' = '/api/v1/payments/' || p.id::text)"
    ).fetchall()
    ids = sorted(str(row["id"]) for row in rows)
    return {"duplicate_payments": len(ids), "duplicate_payment_ids": ids[:DETAILS]}


def _payments(payments: dict[str, dict[str, Any]], acknowledged: set[str]) -> dict[str, Any]:
    final = [pid for pid, p in payments.items() if p["status"] not in IN_PROGRESS]
    parked = [
        pid
        for pid, p in payments.items()
        if p["status"] == "processing" and p["needs_reconciliation"]
    ]
    lost = sorted(set(payments) - set(final) - set(parked)) + sorted(acknowledged - set(payments))
    by_status: dict[str, int] = defaultdict(int)
    failures: dict[str, int] = defaultdict(int)
    for p in payments.values():
        by_status[p["status"]] += 1
        if p["failure_code"]:
            failures[p["failure_code"]] += 1
    return {
        "accepted": len(payments),
        "acknowledged": len(acknowledged),
        "acknowledged_missing": len(acknowledged - set(payments)),
        "final": len(final),
        "parked": len(parked),
        "lost": len(lost),
        "lost_ids": lost[:DETAILS],
        "parked_ids": parked[:DETAILS],
        "by_status": dict(sorted(by_status.items())),
        "by_failure_code": dict(sorted(failures.items())),
    }


def _charges(
    payments: dict[str, dict[str, Any]],
    charges: list[dict[str, Any]],
    orphans: list[dict[str, Any]],
) -> dict[str, Any]:
    by_reference: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for charge in charges:
        by_reference[charge["reference"]].append(charge)
    refunded = {
        (o["payment_id"], o["gateway"]): o["reference"]
        for o in orphans
        if o["status"] == "refunded"
    }
    given_back = [c for c in charges if _given_back(c, refunded)]
    returned = {(c["gateway"], c["id"]) for c in given_back}

    def counts(charge: dict[str, Any]) -> bool:
        """A charge that took, or can still take, the payer's money, and was not given back."""
        return live(charge) and (charge["gateway"], charge["id"]) not in returned

    duplicates = sorted(
        ref for ref, found in by_reference.items() if sum(1 for c in found if counts(c)) > 1
    )
    mismatches: dict[str, list[str]] = {
        "failed_with_live_charge": [],  # PayWave says failed, a gateway holds a charge
        "final_without_charge": [],  # succeeded/awaiting_payment, no live charge anywhere
        "paid_not_settled": [],  # the payer paid at the gateway, PayWave did not settle
        "charge_for_unknown_payment": sorted(set(by_reference) - set(payments))[:DETAILS],
        "orphan_left_live": _orphans_left_live(payments, by_reference, orphans),
    }
    for payment_id, payment in payments.items():
        found = [c for c in by_reference.get(payment_id, []) if counts(c)]
        status = payment["status"]
        if status == "failed" and found:
            mismatches["failed_with_live_charge"].append(payment_id)
        if status in ("succeeded", "awaiting_payment", "requires_action") and not found:
            mismatches["final_without_charge"].append(payment_id)
        paid = any(c["status"] in PAID_CHARGE.get(c["gateway"], set()) for c in found)
        if paid and status not in CREDITED:
            mismatches["paid_not_settled"].append(payment_id)
    return {
        "duplicate_charges": len(duplicates),
        "duplicate_ids": duplicates[:DETAILS],
        "charges_recorded": len(charges),
        "charges_live": sum(1 for c in charges if live(c)),
        "extra_payments_refunded": len(given_back),
        "extra_payments_refunded_ids": sorted(c["reference"] for c in given_back)[:DETAILS],
        "mismatches": {key: sorted(ids) for key, ids in mismatches.items()},
        "mismatch_counts": {key: len(ids) for key, ids in mismatches.items()},
    }


def _given_back(charge: dict[str, Any], refunded: dict[tuple[str, str], str]) -> bool:
    """A second payment PayWave refunded in full: the orphan it left there is `refunded`,
    recorded under this very charge, and the gateway shows the whole amount returned."""
    return (
        live(charge)
        and refunded.get((charge["reference"], charge["gateway"])) == charge["id"]
        and charge.get("amount_refunded", 0) >= charge["amount"]
    )


def _orphans_left_live(
    payments: dict[str, dict[str, Any]],
    by_reference: dict[str, list[dict[str, Any]]],
    orphans: list[dict[str, Any]],
) -> list[str]:
    """Orphans PayWave closed as withdrawn or absent whose gateway still holds them live."""
    left = set()
    for orphan in orphans:
        if orphan["status"] not in ("withdrawn", "absent"):
            continue
        payment = payments.get(orphan["payment_id"], {})
        own = (payment.get("gateway"), payment.get("gateway_reference"))
        for charge in by_reference.get(orphan["payment_id"], []):
            where = (charge["gateway"], charge["id"])
            if charge["gateway"] == orphan["gateway"] and where != own and live(charge):
                left.add(orphan["payment_id"])
    return sorted(left)


def _orphans(orphans: list[dict[str, Any]]) -> dict[str, Any]:
    by_status: dict[str, int] = defaultdict(int)
    by_gateway: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for orphan in orphans:
        by_status[orphan["status"]] += 1
        by_gateway[orphan["gateway"]][orphan["status"]] += 1
    unresolved = sorted(o["payment_id"] for o in orphans if o["status"] in ORPHANS_UNRESOLVED)
    return {
        "orphans": {
            "total": len(orphans),
            "by_status": dict(sorted(by_status.items())),
            "by_gateway": {g: dict(sorted(s.items())) for g, s in sorted(by_gateway.items())},
        },
        "orphans_unresolved": len(unresolved),
        "orphans_unresolved_ids": unresolved[:DETAILS],
    }


def _ledger(db: psycopg.Connection, check_ledger: Callable[[], list[str] | None]) -> dict[str, Any]:
    wallets = db.execute(
        "SELECT a.id, a.currency, a.balance, COALESCE(("
        "  SELECT SUM(p.amount - p.amount_refunded) FROM payments_payment p"
        "  WHERE p.wallet_id = a.id AND p.status = ANY(%s)), 0) AS expected"
        " FROM wallets_account a WHERE a.kind = 'wallet'",
        (list(CREDITED),),
    ).fetchall()
    wallet_diff = sum(abs(w["balance"] - w["expected"]) for w in wallets)
    sums = db.execute(
        "SELECT a.currency, SUM(e.amount) AS total FROM wallets_entry e"
        " JOIN wallets_account a ON a.id = e.account_id GROUP BY a.currency"
    ).fetchall()
    entry_diff = sum(abs(row["total"]) for row in sums)
    problems = check_ledger()
    return {
        "ledger_imbalance": int(wallet_diff + entry_diff),
        "ledger_problems": len(problems) if problems is not None else None,
        "ledger": {
            "wallets": len(wallets),
            "credited_total": int(sum(w["expected"] for w in wallets)),
            "balances_total": int(sum(w["balance"] for w in wallets)),
            "wallet_imbalance": int(wallet_diff),
            "entries_sum_by_currency": {row["currency"]: int(row["total"]) for row in sums},
            "check_ledger": problems[:DETAILS] if problems is not None else "not available",
        },
    }


def _details(
    db: psycopg.Connection, payment_ids: list[str], charges: list[dict[str, Any]]
) -> dict[str, Any]:
    """Attempts, events and gateway charges of the payments a problem names."""
    details: dict[str, Any] = {}
    for payment_id in payment_ids:
        payment = db.execute(
            "SELECT status, needs_reconciliation, reconciliation_reason, method, gateway,"
            " gateway_reference, failure_code, created_at, updated_at"
            " FROM payments_payment WHERE id = %s",
            (payment_id,),
        ).fetchone()
        attempts = db.execute(
            "SELECT gateway, number, outcome, error_class, error_message, gateway_reference,"
            " latency_ms, created_at FROM payments_paymentattempt WHERE payment_id = %s"
            " ORDER BY id",
            (payment_id,),
        ).fetchall()
        events = db.execute(
            "SELECT from_status, to_status, reason, actor, created_at"
            " FROM payments_paymentevent WHERE payment_id = %s ORDER BY id",
            (payment_id,),
        ).fetchall()
        details[payment_id] = _jsonable(
            {
                "payment": payment,
                "attempts": attempts,
                "events": events,
                "gateway_charges": [c for c in charges if c["reference"] == payment_id],
            }
        )
    return details


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def completion_times(database_url: str) -> list[tuple[float, float]]:
    """(created, first final) epoch seconds per payment that reached a final state."""
    with psycopg.connect(database_url) as db:
        rows = db.execute(
            "SELECT extract(epoch FROM p.created_at), extract(epoch FROM MIN(e.created_at))"
            " FROM payments_payment p JOIN payments_paymentevent e ON e.payment_id = p.id"
            " WHERE e.to_status <> ALL(%s) GROUP BY p.id, p.created_at",
            (list(IN_PROGRESS),),
        ).fetchall()
    return [(float(created), float(done)) for created, done in rows]


def outstanding(database_url: str, paid: list[str]) -> dict[str, int]:
    """What the drain waits for: payments in progress and not parked, PIX charges the
    payer paid whose payment did not succeed yet, orphans still being withdrawn (or
    refunded), and parked payments (which a scenario may choose to wait for)."""
    with psycopg.connect(database_url) as db:
        row = db.execute(
            "SELECT"
            " (SELECT COUNT(*) FROM payments_payment"
            "  WHERE status = ANY(%(progress)s) AND NOT needs_reconciliation),"
            " (SELECT COUNT(*) FROM payments_payment"
            "  WHERE id::text = ANY(%(paid)s) AND status <> ALL(%(credited)s)),"
            " (SELECT COUNT(*) FROM payments_orphancharge WHERE status = ANY(%(orphans)s)),"
            " (SELECT COUNT(*) FROM payments_payment"
            "  WHERE status = 'processing' AND needs_reconciliation)",
            {
                "progress": list(IN_PROGRESS),
                "paid": paid,
                "credited": list(CREDITED),
                "orphans": list(ORPHANS_IN_PROGRESS),
            },
        ).fetchone()
    names = ("in_progress", "paid_unsettled", "orphans_in_progress", "parked")
    return dict(zip(names, (int(value) for value in row), strict=True)) if row else {}
