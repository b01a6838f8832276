"""A chaos run with a gateway outage: how PIX fell back, cards waited, orphans went away.

Read after the drain from PayWave's own records (payments, their events and attempts,
orphan charges) and its logs (circuit changes, parked payments), against the fault
windows the run applied. Times are the server's (PaymentEvent / PaymentAttempt
`created_at`), in seconds since the run's start where they are moments.

- PIX `accept_to_awaiting_ms`: from the payment's `created_at` (stored before the
  202) to its first `awaiting_payment` event, split by when the payment was accepted:
  before the outage, during it before the primary's circuit first opened, during it
  after, and after the outage. `by_first_gateway` splits the outage's payments by
  where their first attempt went (the primary, or straight to the secondary).
- cards: payments parked during the run (`alert: payment_parked` log lines), settled
  by reconciliation (events whose reason starts `reconciled:`: reconciliation settles
  through the engine's own transition, whose actor is `processing`), still parked at
  the end.
- orphans: per status and gateway, and when each was closed, counted from the end of
  the primary's outage.
"""

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.stats import counts_by, latency_per_second, summary

DETAILS = 20


def report(
    database_url: str,
    log_dir: Path,
    windows: list[dict[str, Any]],
    origin: float,
    *,
    primary: str,
    card_gateway: str,
) -> dict[str, Any]:
    """`windows`: the faults applied ({gateway, settings, start, end}, epoch seconds)."""
    outage = _span([w for w in windows if w["gateway"] == primary])
    card_outage = _span([w for w in windows if w["gateway"] == card_gateway])
    records = log_records(log_dir)
    changes = circuit_changes(records)
    opened = [c["at"] for c in changes if c["gateway"] == primary and c["change"] == "opened"]
    if outage is not None:
        opened = [t for t in opened if t >= outage[0]]
    first_open = min(opened) if opened else None
    with psycopg.connect(database_url, row_factory=dict_row) as db:
        payments = _payments(db)
        settled_by_reconciliation = {
            row["payment_id"]: float(row["at"])
            for row in db.execute(
                "SELECT payment_id::text AS payment_id, extract(epoch FROM MIN(created_at)) AS at"
                " FROM payments_paymentevent"
                " WHERE (actor = 'reconciliation' OR reason LIKE 'reconciled:%%')"
                " AND to_status <> ALL(%s) GROUP BY payment_id",
                (["pending", "processing"],),
            )
        }
        orphans = db.execute(
            "SELECT payment_id::text AS payment_id, gateway, status, checks, last_error,"
            " extract(epoch FROM created_at)::float AS created,"
            " extract(epoch FROM updated_at)::float AS closed FROM payments_orphancharge"
        ).fetchall()
    parked = parked_alerts(records)

    def moment(value: float | None) -> float | None:
        return None if value is None else round(value - origin, 2)

    return {
        "primary": primary,
        "card_gateway": card_gateway,
        "outage_s": [moment(t) for t in outage] if outage else None,
        "card_outage_s": [moment(t) for t in card_outage] if card_outage else None,
        "circuit_first_opened_s": moment(first_open),
        "circuit_changes": [
            {"t": moment(c["at"]), "gateway": c["gateway"], "change": c["change"]} for c in changes
        ],
        "pix": _pix(payments, outage, first_open, primary),
        "cards": _cards(payments, card_outage, parked, settled_by_reconciliation),
        "orphans": _orphans(orphans, outage),
        "_series": _series(payments, origin),
    }


def _span(windows: list[dict[str, Any]]) -> tuple[float, float] | None:
    if not windows:
        return None
    ends = [w["end"] for w in windows if w["end"] is not None]
    return min(w["start"] for w in windows), max(ends) if ends else max(w["start"] for w in windows)


def _payments(db: psycopg.Connection) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT p.id::text AS id, p.method, p.status, p.gateway, p.failure_code,"
        " p.needs_reconciliation, extract(epoch FROM p.created_at) AS created,"
        " (SELECT extract(epoch FROM MIN(e.created_at)) FROM payments_paymentevent e"
        "  WHERE e.payment_id = p.id AND e.to_status = 'awaiting_payment') AS awaiting,"
        " (SELECT extract(epoch FROM MIN(e.created_at)) FROM payments_paymentevent e"
        "  WHERE e.payment_id = p.id AND e.to_status <> ALL(%s)) AS final,"
        " (SELECT a.gateway FROM payments_paymentattempt a WHERE a.payment_id = p.id"
        "  ORDER BY a.id LIMIT 1) AS first_gateway,"
        " (SELECT COUNT(*) FROM payments_paymentattempt a WHERE a.payment_id = p.id) AS attempts"
        " FROM payments_payment p",
        (["pending", "processing"],),
    ).fetchall()
    for row in rows:  # epoch seconds as floats (PostgreSQL's numeric is a Decimal)
        for key in ("created", "awaiting", "final"):
            row[key] = None if row[key] is None else float(row[key])
    return rows


def _pix(
    payments: list[dict[str, Any]],
    outage: tuple[float, float] | None,
    first_open: float | None,
    primary: str,
) -> dict[str, Any]:
    pix = [p for p in payments if p["method"] == "pix"]
    if outage is None:
        return {"accepted": len(pix)}
    start, end = outage
    opened = first_open if first_open is not None else end
    groups: dict[str, list[dict[str, Any]]] = {
        "calm_before": [p for p in pix if p["created"] < start],
        "before_circuit_opened": [p for p in pix if start <= p["created"] < opened],
        "after_circuit_opened": [p for p in pix if opened <= p["created"] < end],
        "after_outage": [p for p in pix if p["created"] >= end],
    }
    during = groups["before_circuit_opened"] + groups["after_circuit_opened"]
    reached = [p for p in during if p["awaiting"] is not None]
    missed = [p for p in during if p["awaiting"] is None]
    by_first: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for payment in during:
        by_first[payment["first_gateway"] or "none"].append(payment)
    return {
        "accepted": len(pix),
        "accepted_during_outage": len(during),
        "reached_awaiting_payment": len(reached),
        "reached_awaiting_payment_before_outage_ended": sum(
            1 for p in reached if float(p["awaiting"]) < end
        ),
        "not_reached": counts_by(f"{p['status']}:{p['failure_code'] or '-'}" for p in missed),
        "not_reached_ids": sorted(p["id"] for p in missed)[:DETAILS],
        "accept_to_awaiting_ms": {name: _latency(group) for name, group in groups.items()},
        "by_first_gateway_during_outage": {
            gateway: _latency(group) for gateway, group in sorted(by_first.items())
        },
        "first_attempt_at_primary_after_circuit_opened": sum(
            1 for p in groups["after_circuit_opened"] if p["first_gateway"] == primary
        ),
        "awaiting_at": counts_by(p["gateway"] for p in pix if p["awaiting"] is not None),
        "statuses": counts_by(p["status"] for p in pix),
    }


def _latency(payments: list[dict[str, Any]]) -> dict[str, Any] | None:
    """accept -> first awaiting_payment, ms, of those that got there; how many did not."""
    values = [
        (float(p["awaiting"]) - float(p["created"])) * 1000 for p in payments if p["awaiting"]
    ]
    figures = summary(values) or {"count": 0}
    return {**figures, "accepted": len(payments), "never_awaiting": len(payments) - len(values)}


def _cards(
    payments: list[dict[str, Any]],
    card_outage: tuple[float, float] | None,
    parked: dict[str, float],
    settled_by_reconciliation: dict[str, float],
) -> dict[str, Any]:
    cards = {p["id"]: p for p in payments if p["method"] == "card"}
    parked_cards = {pid: at for pid, at in parked.items() if pid in cards}
    settled = {
        pid: settled_by_reconciliation[pid]
        for pid in parked_cards
        if pid in settled_by_reconciliation
    }
    figures: dict[str, Any] = {
        "accepted": len(cards),
        "parked_during_run": len(parked_cards),
        "parked_settled_by_reconciliation": len(settled),
        "parked_at_end": sum(
            1 for p in cards.values() if p["status"] == "processing" and p["needs_reconciliation"]
        ),
        "parked_to_settled_s": summary(settled[pid] - parked_cards[pid] for pid in settled),
        "statuses": counts_by(p["status"] for p in cards.values()),
    }
    if card_outage is not None:
        start, end = card_outage
        during = [p for p in cards.values() if start <= p["created"] < end]
        figures["accepted_during_card_outage"] = len(during)
        figures["accept_to_final_ms_during_card_outage"] = summary(
            (float(p["final"]) - float(p["created"])) * 1000 for p in during if p["final"]
        )
        figures["settled_after_card_outage_s"] = summary(at - end for pid, at in settled.items())
    return figures


def _orphans(orphans: list[dict[str, Any]], outage: tuple[float, float] | None) -> dict[str, Any]:
    closed = [o for o in orphans if o["status"] not in ("open", "refunding")]
    figures: dict[str, Any] = {
        "total": len(orphans),
        "by_status": counts_by(o["status"] for o in orphans),
        "by_gateway": {
            gateway: counts_by(o["status"] for o in orphans if o["gateway"] == gateway)
            for gateway in sorted({o["gateway"] for o in orphans})
        },
        "checks_per_orphan": summary((o["checks"] for o in orphans), digits=0),
        "unresolved": [
            {k: o[k] for k in ("payment_id", "gateway", "status", "checks", "last_error")}
            for o in orphans
            if o["status"] in ("open", "refunding", "given_up")
        ][:DETAILS],
    }
    if outage is not None:
        figures["closed_after_outage_s"] = {
            status: summary(float(o["closed"]) - outage[1] for o in closed if o["status"] == status)
            for status in sorted({o["status"] for o in closed})
        }
    return figures


def _series(payments: list[dict[str, Any]], origin: float) -> dict[str, list[tuple[float, float]]]:
    """PIX accept -> awaiting_payment per second of acceptance, p50 and p99, in seconds."""
    samples = [
        (float(p["created"]), float(p["awaiting"]) - float(p["created"]))
        for p in payments
        if p["method"] == "pix" and p["awaiting"] is not None
    ]
    lines = {}
    for label, fraction in (("PIX accept→awaiting p50", 0.5), ("PIX accept→awaiting p99", 0.99)):
        per_second = latency_per_second(samples, origin, fraction)
        lines[label] = [(t + 0.5, v) for t, v in enumerate(per_second) if v is not None]
    return lines


# --- logs ---------------------------------------------------------------------------


def log_records(log_dir: Path) -> list[dict[str, Any]]:
    """Every JSON log line of every process of the run."""
    records = []
    for path in sorted(log_dir.glob("*.log")):
        with path.open(errors="replace") as lines:
            for line in lines:
                if not line.startswith("{"):
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and "@timestamp" in record:
                    record["at"] = _epoch(record["@timestamp"])
                    records.append(record)
    return records


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def circuit_changes(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Opened (the `circuit_opened` alert), half_open, closed, reopened: in time order."""
    changes = []
    for record in records:
        if record.get("alert") == "circuit_opened":
            change = "opened"
        elif str(record.get("event", "")).startswith("circuit_"):
            change = str(record["event"]).removeprefix("circuit_")
        else:
            continue
        changes.append({"at": record["at"], "gateway": record.get("gateway"), "change": change})
    return sorted(changes, key=lambda c: c["at"])


def parked_alerts(records: list[dict[str, Any]]) -> dict[str, float]:
    """Payment id -> when it was first parked (`alert: payment_parked`)."""
    parked: dict[str, float] = {}
    for record in records:
        if record.get("alert") == "payment_parked" and record.get("payment_id"):
            payment_id = str(record["payment_id"])
            parked[payment_id] = min(parked.get(payment_id, record["at"]), record["at"])
    return parked
