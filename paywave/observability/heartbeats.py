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
from datetime import timedelta
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


def last_result(task: str) -> tuple[bool, Any]:
    """(whether the task ever succeeded, what it answered last time)."""
    from paywave.models import ScheduledTaskRun

    row = ScheduledTaskRun.objects.filter(task=task, last_succeeded_at__isnull=False).first()
    return (False, None) if row is None else (True, row.last_result)


def _timestamp_family(name: str, documentation: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=["task"])


def _runs_read() -> list[tuple[str, float | None, float | None]]:
    from paywave.models import ScheduledTaskRun

    rows = ScheduledTaskRun.objects.values_list("task", "last_succeeded_at", "last_failed_at")
    return [
        (task, ok.timestamp() if ok else None, failed.timestamp() if failed else None)
        for task, ok, failed in rows.order_by("task")
    ]


class HeartbeatCollector(Collector):
    """The beat entries' periods and heartbeats; nothing when the database cannot answer."""

    def __init__(self, ttl: float | None = None) -> None:
        self.runs = DatabaseRead(_runs_read, "heartbeats", ttl)

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
        for task, ok_at, failed_at in runs:
            if ok_at is not None:
                succeeded.add_metric([task], ok_at)
            if failed_at is not None:
                failed.add_metric([task], failed_at)
        yield from (succeeded, failed)


heartbeat_collector = HeartbeatCollector()
