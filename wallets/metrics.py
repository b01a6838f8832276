"""What Prometheus reads of the ledger at scrape time: what the last daily check found.

`paywave_ledger_problems`: the broken invariants `wallets.check_ledger` counted on its
last successful run (its heartbeat's answer); absent until it has run once. Registered
by WalletsConfig.ready with the scrape-time registry; never fails a scrape.
"""

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paywave.observability.heartbeats import last_result

from .tasks import check_ledger

logger = logging.getLogger(__name__)


class LedgerCheckCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        try:
            ran, problems = last_result(check_ledger.name)
        except Exception:
            logger.warning("ledger check result not collected", exc_info=True)
            return
        if not ran or not isinstance(problems, int):
            return
        found = GaugeMetricFamily(
            "paywave_ledger_problems",
            "Ledger invariants broken at the last daily check (wallets.check_ledger).",
        )
        found.add_metric([], float(problems))
        yield found


ledger_check_collector = LedgerCheckCollector()
