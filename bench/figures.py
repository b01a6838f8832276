"""From samples and completions to the figures a result file carries, and plot series."""

from typing import Any

from bench.completion import Tracker
from bench.loadgen import Sample
from bench.stats import counts_by, latency_per_second, per_second, rate, summary

ACCEPTED = frozenset({200, 201, 202})


def accept_figures(samples: list[Sample], elapsed: float) -> dict[str, Any]:
    accepted = [s for s in samples if s.status in ACCEPTED]
    failed = [s for s in samples if s.status not in ACCEPTED]
    return {
        "requests": len(samples),
        "accepted": len(accepted),
        "elapsed_s": round(elapsed, 2),
        "accepted_per_s": rate(len(accepted), elapsed),
        "errors_by_status": counts_by(s.status or s.error or "no answer" for s in failed),
        "retried_requests": sum(1 for s in samples if s.tries > 1),
        "accept_latency_ms": summary(s.latency_ms for s in accepted),
        "by_kind": counts_by(s.kind for s in accepted),
    }


def completion_figures(tracker: Tracker) -> dict[str, Any]:
    done = list(tracker.done.items())
    figures: dict[str, Any] = {
        "accepted": len(tracker.accepted),
        "completed": len(done),
        "not_completed": len(tracker.missing()),
        "by_status": counts_by(c.status for _, c in done),
        "via": counts_by(c.via for _, c in done),
    }
    if not done:
        return figures
    first = min(c.created_at for _, c in done)
    last = max(c.completed_at for _, c in done)
    figures["span_s"] = round(last - first, 2)
    figures["completed_per_s"] = rate(len(done), last - first)
    figures["completion_latency_ms"] = summary(
        (c.completed_at - c.created_at) * 1000 for _, c in done
    )
    webhook = [
        (c.observed_at - tracker.accepted[payment_id].due) * 1000
        for payment_id, c in done
        if c.via == "webhook"
    ]
    figures["webhook_latency_ms"] = summary(webhook)  # due -> the wallet app has the webhook
    return figures


def accept_series(samples: list[Sample], origin: float) -> dict[str, list[tuple[float, float]]]:
    accepted = [s for s in samples if s.status in ACCEPTED]
    answered = per_second((s.due + s.latency_ms / 1000 for s in accepted), origin)
    p50 = latency_per_second(((s.due, s.latency_ms) for s in accepted), origin, 0.50)
    p99 = latency_per_second(((s.due, s.latency_ms) for s in accepted), origin, 0.99)
    return {
        "per_s": [(t + 0.5, n) for t, n in enumerate(answered) if n],
        "p50": [(t + 0.5, v) for t, v in enumerate(p50) if v is not None],
        "p99": [(t + 0.5, v) for t, v in enumerate(p99) if v is not None],
    }


def completion_series(tracker: Tracker, origin: float) -> dict[str, list[tuple[float, float]]]:
    done = list(tracker.done.values())
    completed = per_second((c.completed_at for c in done), origin)
    p50 = latency_per_second(
        ((c.completed_at, c.completed_at - c.created_at) for c in done), origin, 0.50
    )
    return {
        "per_s": [(t + 0.5, n) for t, n in enumerate(completed) if n],
        "p50_s": [(t + 0.5, v) for t, v in enumerate(p50) if v is not None],
    }
