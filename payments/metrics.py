"""What Prometheus reads of the payments at scrape time: what is parked, and how late.

- `paywave_payments_parked{reason}` and `paywave_refunds_parked`: waiting for
  reconciliation (or a person), one series per parked reason, 0 included.
- `paywave_payments_overdue_seconds`: how long the oldest payment due for its next step
  (pending or processing, not parked) has waited past its `next_attempt_at`. It grows
  when the payments queue backs up, when no worker takes its jobs, or when jobs are lost
  on the way and only the outbox sweep can find them: the backlog's age, read from the
  database rather than the broker, so it holds whatever the broker says.
- `paywave_reconciliation_overdue_seconds{kind}`: the same for each kind of
  reconciliation's work (payments/reconciliation.py): it grows when payments fall due
  faster than the runs take them, or when their gateway cannot answer.

Registered with the scrape-time registry of paywave.observability.metrics by
PaymentsConfig.ready. Read at most once per PAYWAVE_METRICS_DB_READ_SECONDS however many
scrapes, never failing one.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paywave.observability.metrics import DatabaseRead

from .models import ParkedReason, Payment, PaymentStatus, Refund, RefundStatus
from .reconciliation import reconciliation_overdue_seconds

IN_PROGRESS = (PaymentStatus.PENDING, PaymentStatus.PROCESSING)


@dataclass(frozen=True)
class Backlog:
    parked: dict[str, int] = field(default_factory=dict)
    refunds_parked: int = 0
    overdue_seconds: float = 0.0
    reconciliation_overdue: dict[str, float] = field(default_factory=dict)


def backlog_read() -> Backlog:
    """Indexed reads: parked payments by reason, parked refunds, the oldest due payment,
    the oldest due for reconciliation of each kind."""
    parked = dict.fromkeys(ParkedReason.values, 0)
    counted = (
        Payment.objects.filter(needs_reconciliation=True)
        .values_list("parked_reason")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for reason, n in counted:
        key = reason or ParkedReason.CHARGE_UNCONFIRMED  # parked before reasons were kept
        parked[key] = parked.get(key, 0) + n
    refunds_parked = Refund.objects.filter(
        status=RefundStatus.PENDING, parked_at__isnull=False
    ).count()
    now = timezone.now()
    oldest_due = (
        Payment.objects.filter(
            status__in=IN_PROGRESS, needs_reconciliation=False, next_attempt_at__lte=now
        )
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    overdue = (now - oldest_due).total_seconds() if oldest_due else 0.0
    return Backlog(parked, refunds_parked, max(overdue, 0.0), reconciliation_overdue_seconds())


class PaymentsBacklogCollector(Collector):
    def __init__(self, ttl: float | None = None) -> None:
        self.backlog = DatabaseRead(backlog_read, "payments backlog", ttl)

    def collect(self) -> Iterator[Metric]:
        backlog = self.backlog.get()
        if backlog is None:  # no answer is no series: "0 parked" would be a claim
            return
        parked = GaugeMetricFamily(
            "paywave_payments_parked",
            "Payments parked for reconciliation, by parked_reason.",
            labels=["reason"],
        )
        for reason, count in sorted(backlog.parked.items()):
            parked.add_metric([reason], float(count))
        refunds = GaugeMetricFamily(
            "paywave_refunds_parked", "Refunds parked for reconciliation (pending, out of tries)."
        )
        refunds.add_metric([], float(backlog.refunds_parked))
        overdue = GaugeMetricFamily(
            "paywave_payments_overdue_seconds",
            "How long the oldest payment due for its next step (pending or processing, not "
            "parked) has waited past its time; 0 when none is due.",
        )
        overdue.add_metric([], backlog.overdue_seconds)
        reconciliation = GaugeMetricFamily(
            "paywave_reconciliation_overdue_seconds",
            "How long the oldest payment due for reconciliation has waited past its time, by "
            "kind of work (processing_stuck, pix_expired, pix_check, action_abandoned, "
            "approval); 0 when none is due.",
            labels=["kind"],
        )
        for kind, seconds in backlog.reconciliation_overdue.items():
            reconciliation.add_metric([kind], seconds)
        yield from (parked, refunds, overdue, reconciliation)


payments_backlog_collector = PaymentsBacklogCollector()
