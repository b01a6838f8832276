"""Beat tasks' heartbeats: written as a task ends, read by /metrics; the ledger's gauge."""

from typing import Any

import pytest
from django.conf import settings
from django.db.models import F
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from paywave.models import ScheduledTaskRun
from paywave.observability.heartbeats import HeartbeatCollector
from paywave.tasks import purge_expired_refresh_tokens
from tests.factories import WalletFactory
from wallets import tasks as wallet_tasks
from wallets.metrics import LedgerCheckCollector
from wallets.models import Account

pytestmark = pytest.mark.django_db


def scraped(*collectors: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def last_success(metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], task: str) -> Any:
    key = ("paywave_scheduled_task_last_success_timestamp_seconds", frozenset({("task", task)}))
    return metrics.get(key)


def test_every_beat_entry_has_its_period_exported() -> None:
    metrics = scraped(HeartbeatCollector(ttl=0))

    periods = {
        dict(labels)["task"]: value
        for (name, labels), value in metrics.items()
        if name == "paywave_scheduled_task_period_seconds"
    }
    assert periods == {
        entry["task"]: entry["schedule"].total_seconds()
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert periods["payments.sweep_outbox"] == settings.PAYWAVE_OUTBOX_SWEEP_SECONDS
    assert periods["wallets.check_ledger"] == 86400


def test_a_beat_task_that_ends_well_records_its_heartbeat_and_answer() -> None:
    collector = HeartbeatCollector(ttl=0)
    before = scraped(collector)

    outcome = wallet_tasks.check_ledger.apply()  # through Celery's tracer and its signals

    assert outcome.successful()
    run = ScheduledTaskRun.objects.get(task="wallets.check_ledger")
    assert run.last_succeeded_at is not None
    assert run.last_failed_at is None
    assert run.last_result == 0
    after = scraped(collector, LedgerCheckCollector())
    assert last_success(before, "wallets.check_ledger") is None
    assert last_success(after, "wallets.check_ledger") == pytest.approx(
        run.last_succeeded_at.timestamp()
    )
    assert after[("paywave_ledger_problems", frozenset())] == 0


def test_the_ledger_gauge_counts_what_the_last_check_found() -> None:
    wallet = WalletFactory(funds=1000)
    assert ("paywave_ledger_problems", frozenset()) not in scraped(LedgerCheckCollector())

    Account.objects.filter(pk=wallet.pk).update(balance=F("balance") + 1)
    wallet_tasks.check_ledger.apply()

    problems = scraped(LedgerCheckCollector())[("paywave_ledger_problems", frozenset())]
    assert problems >= 1  # the balance and the currency's sum disagree
    assert ScheduledTaskRun.objects.get(task="wallets.check_ledger").last_result == problems


def test_a_failing_beat_task_records_the_failure_not_a_success(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> list[str]:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(wallet_tasks, "ledger_problems", broken)

    outcome = wallet_tasks.check_ledger.apply()

    assert outcome.failed()
    run = ScheduledTaskRun.objects.get(task="wallets.check_ledger")
    assert run.last_failed_at is not None
    assert run.last_succeeded_at is None
    metrics = scraped(HeartbeatCollector(ttl=0))
    assert last_success(metrics, "wallets.check_ledger") is None
    failed = ("paywave_scheduled_task_last_failure_timestamp_seconds",
              frozenset({("task", "wallets.check_ledger")}))  # fmt: skip
    assert metrics[failed] == pytest.approx(run.last_failed_at.timestamp())


def test_a_later_success_keeps_the_failure_time_and_moves_the_success() -> None:
    purge_expired_refresh_tokens.apply()
    first = ScheduledTaskRun.objects.get(task="paywave.purge_expired_refresh_tokens")
    ScheduledTaskRun.objects.filter(pk=first.pk).update(last_failed_at=first.last_succeeded_at)

    purge_expired_refresh_tokens.apply()

    second = ScheduledTaskRun.objects.get(pk=first.pk)
    assert second.last_succeeded_at > first.last_succeeded_at
    assert second.last_failed_at == first.last_succeeded_at


def test_a_task_not_on_the_beat_schedule_leaves_no_heartbeat() -> None:
    from notifications.tasks import send_alert

    send_alert.apply(args=("test", "nothing", {}))

    assert not ScheduledTaskRun.objects.filter(task=send_alert.name).exists()


def test_the_scrape_reads_the_heartbeats_once_per_ttl(
    django_assert_num_queries: Any,
) -> None:
    collector = HeartbeatCollector(ttl=3600)
    with django_assert_num_queries(1):
        scraped(collector)
        scraped(collector)


def test_api_metrics_serve_the_heartbeats(client: Any) -> None:
    purge_expired_refresh_tokens.apply()

    text = client.get("/metrics").content.decode()

    assert (
        'paywave_scheduled_task_last_success_timestamp_seconds{task="paywave.purge_expired' in text
    )
    assert 'paywave_scheduled_task_period_seconds{task="wallets.check_ledger"} 86400.0' in text


def test_manage_py_check_ledger_answers_for_the_daily_check_too() -> None:
    from django.core.management import call_command

    wallet = WalletFactory(funds=1000)
    Account.objects.filter(pk=wallet.pk).update(balance=F("balance") + 1)
    wallet_tasks.check_ledger.apply()
    assert scraped(LedgerCheckCollector())[("paywave_ledger_problems", frozenset())] > 0

    Account.objects.filter(pk=wallet.pk).update(balance=F("balance") - 1)  # mended
    call_command("check_ledger")

    assert scraped(LedgerCheckCollector())[("paywave_ledger_problems", frozenset())] == 0


def test_a_failed_read_gives_no_series_and_the_scrape_goes_on() -> None:
    def unreachable() -> list[tuple[str, float | None, float | None]]:
        raise ConnectionError("the database went away")

    collector = HeartbeatCollector(ttl=0)
    collector.runs.read = unreachable

    # Periods alone would read as "never ran" for every task: nothing is served.
    assert scraped(collector) == {}


def test_heartbeats_and_the_ledger_gauge_share_one_read(
    django_assert_num_queries: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paywave.observability.heartbeats import scheduled_runs

    wallet_tasks.check_ledger.apply()
    settings.PAYWAVE_METRICS_DB_READ_SECONDS = 60
    monkeypatch.setattr(scheduled_runs, "_read_at", float("-inf"))  # nothing read yet

    with django_assert_num_queries(1):
        metrics = scraped(HeartbeatCollector(), LedgerCheckCollector())

    assert metrics[("paywave_ledger_problems", frozenset())] == 0
    assert last_success(metrics, "wallets.check_ledger") is not None
