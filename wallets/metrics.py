"""What Prometheus reads of the ledger at scrape time: what the last daily check found.

`paywave_ledger_problems`: the broken invariants `wallets.check_ledger` counted on its
last successful run (its heartbeat's answer); absent until it has run once. Registered
by WalletsConfig.ready with the scrape-time registry; read from the heartbeats' own read
(paywave.observability.heartbeats.scheduled_runs), never a query of its own.
"""

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paywave.observability.heartbeats import scheduled_answer, scheduled_runs

from .tasks import check_ledger


class LedgerCheckCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        runs = scheduled_runs.get()  # the heartbeats' own read: no query of its own
        problems = None if runs is None else scheduled_answer(runs, check_ledger.name)
        if isinstance(problems, bool) or not isinstance(problems, int):
            return
        found = GaugeMetricFamily(
            "paywave_ledger_problems",
            "Ledger invariants broken at the last daily check (wallets.check_ledger).",
        )
        found.add_metric([], float(problems))
        yield found


ledger_check_collector = LedgerCheckCollector()
