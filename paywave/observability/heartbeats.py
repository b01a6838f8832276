"""Beat tasks' heartbeats: when each last succeeded, for an alert when one is late.

A worker that finishes a task named in CELERY_BEAT_SCHEDULE writes the time (and a
small answer, e.g. how many ledger problems it found) into ScheduledTaskRun, one upsert
(paywave.observability.celery_signals). Prometheus reads them at scrape time with each
entry's period:

- `paywave_scheduled_task_period_seconds{task}`: every beat entry's period;
- `paywave_scheduled_task_last_success_timestamp_seconds{task}`: absent until it succeeds;
- `paywave_scheduled_task_last_failure_timestamp_seconds{task}`: absent until it fails.

A task late by more than its period is a stopped beat, no worker on its queue, or a
task that fails every time: the rule (config/prometheus/rules) tells none from the
others, the operating guide does.
"""

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paywave.observability.metrics import DatabaseRead

logger = logging.getLogger(__name__)

# Answers kept with the heartbeat: counts and small dicts of counts, not documents.
_RESULT_LIMIT = 2000


def scheduled_periods() -> dict[str, float]:
    """Task name → seconds between runs, for every beat entry on a fixed period."""
    periods = {}
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        schedule = entry["schedule"]
        if isinstance(schedule, timedelta):
            periods[entry["task"]] = schedule.total_seconds()
        elif isinstance(schedule, int | float):
            periods[entry["task"]] = float(schedule)
    return periods


def _kept(result: Any) -> Any:
    try:
        text = json.dumps(result)
    except (TypeError, ValueError):
        return None
    return result if len(text) <= _RESULT_LIMIT else None


def heartbeat_record(task: str, *, succeeded: bool, result: Any = None) -> None:
    """One upsert; a task not on the beat schedule is ignored. Never raises."""
    from paywave.models import ScheduledTaskRun

    if task not in scheduled_periods():
        return
    now = timezone.now()
    try:
        if succeeded:
            row = ScheduledTaskRun(task=task, last_succeeded_at=now, last_result=_kept(result))
            fields = ["last_succeeded_at", "last_result"]
        else:
            row, fields = ScheduledTaskRun(task=task, last_failed_at=now), ["last_failed_at"]
        ScheduledTaskRun.objects.bulk_create(
            [row], update_conflicts=True, unique_fields=["task"], update_fields=fields
        )
    except Exception:
        logger.warning("heartbeat of %s not recorded", task, exc_info=True)


def _timestamp_family(name: str, documentation: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=["task"])


@dataclass(frozen=True)
class ScheduledRun:
    """A beat task's heartbeat as read: Unix times, and what it answered when it succeeded."""

    task: str
    succeeded_at: float | None
    failed_at: float | None
    answer: Any


def _unix(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment else None


def _runs_read() -> list[ScheduledRun]:
    from paywave.models import ScheduledTaskRun

    rows = ScheduledTaskRun.objects.order_by("task").values_list(
        "task", "last_succeeded_at", "last_failed_at", "last_result"
    )
    return [
        ScheduledRun(task, _unix(ok), _unix(failed), answer) for task, ok, failed, answer in rows
    ]


# One read of every heartbeat per PAYWAVE_METRICS_DB_READ_SECONDS, for whoever reports on
# them at scrape time (here, and an app's own answer: wallets' ledger check).
scheduled_runs = DatabaseRead(_runs_read, "heartbeats")


def scheduled_answer(runs: list[ScheduledRun], task: str) -> Any:
    """What `task` answered when it last succeeded; None if it never has."""
    return next((run.answer for run in runs if run.task == task and run.succeeded_at), None)


class HeartbeatCollector(Collector):
    """The beat entries' periods and heartbeats; nothing when the database cannot answer."""

    def __init__(self, ttl: float | None = None) -> None:
        """`ttl` given: a read of its own (tests); else the shared `scheduled_runs`."""
        self.runs = scheduled_runs if ttl is None else DatabaseRead(_runs_read, "heartbeats", ttl)

    def collect(self) -> Iterator[Metric]:
        runs = self.runs.get()
        if runs is None:  # periods alone would read as "never ran" for every task
            return
        periods = GaugeMetricFamily(
            "paywave_scheduled_task_period_seconds",
            "Seconds between two runs of each beat task (CELERY_BEAT_SCHEDULE).",
            labels=["task"],
        )
        for task, seconds in sorted(scheduled_periods().items()):
            periods.add_metric([task], seconds)
        yield periods
        succeeded = _timestamp_family(
            "paywave_scheduled_task_last_success_timestamp_seconds",
            "When each beat task last succeeded (Unix time); absent until it has.",
        )
        failed = _timestamp_family(
            "paywave_scheduled_task_last_failure_timestamp_seconds",
            "When each beat task last failed (Unix time); absent until it has.",
        )
        for run in runs:
            if run.succeeded_at is not None:
                succeeded.add_metric([run.task], run.succeeded_at)
            if run.failed_at is not None:
                failed.add_metric([run.task], run.failed_at)
        yield from (succeeded, failed)


heartbeat_collector = HeartbeatCollector()
