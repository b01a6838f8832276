"""What Prometheus reads of the webhooks at scrape time: endpoints that take nothing.

`paywave_webhook_endpoint_failing_seconds{endpoint}`: per enabled endpoint, how long its
oldest delivery still pending after a failed try has waited (from the event). Absent
for an endpoint with none: one that answers, or one an operator disabled. Read from the
database, so it holds across worker restarts and however rarely the retries come.
Registered with the scrape-time registry by NotificationsConfig.ready.
"""

from collections.abc import Iterator

from django.db.models import Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paywave.observability.metrics import DatabaseRead

from .models import Delivery, DeliveryStatus


def failing_endpoints_read() -> dict[str, float]:
    """Endpoint id → seconds its oldest delivery pending after a failed try has waited."""
    now = timezone.now()
    oldest = (
        Delivery.objects.filter(
            status=DeliveryStatus.PENDING,
            attempt_count__gt=0,
            endpoint__enabled=True,
            endpoint__deleted_at__isnull=True,
        )
        .values_list("endpoint_id")
        .annotate(oldest=Min("created_at"))
        .order_by()
    )
    return {str(endpoint): max((now - since).total_seconds(), 0.0) for endpoint, since in oldest}


class FailingEndpointsCollector(Collector):
    def __init__(self, ttl: float | None = None) -> None:
        self.failing = DatabaseRead(failing_endpoints_read, "failing webhook endpoints", ttl)

    def collect(self) -> Iterator[Metric]:
        failing = self.failing.get()
        if failing is None:
            return
        family = GaugeMetricFamily(
            "paywave_webhook_endpoint_failing_seconds",
            "Per enabled endpoint: how long its oldest delivery still pending after a "
            "failed try has waited.",
            labels=["endpoint"],
        )
        for endpoint, seconds in sorted(failing.items()):
            family.add_metric([endpoint], seconds)
        yield family


failing_endpoints_collector = FailingEndpointsCollector()
