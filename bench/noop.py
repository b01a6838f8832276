"""The bare Celery baseline: N `bench.noop` tasks drained by the running payments worker(s).

The payments workers stop consuming their queue (Celery's cancel_consumer), the
tasks are published, the workers consume again (add_consumer), and the clock
runs until the queue is empty: tasks/s is the worker configuration's own ceiling
(threads pool, prefetch 1, acks_late, JSON, RabbitMQ round trips), with no
PayWave code in the task.
"""

import time
from typing import Any

from celery import Celery
from kombu import Connection

QUEUE = "payments"


def _app(broker_url: str) -> Celery:
    app = Celery("bench", broker=broker_url)
    app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True)
    return app


def _ready(connection: Connection) -> int:
    _, ready, _ = connection.default_channel.queue_declare(queue=QUEUE, passive=True)
    return ready


def consumers_of(app: Celery, queue: str) -> list[str]:
    """The workers consuming `queue` now (only they are paused and resumed)."""
    active = app.control.inspect(timeout=2).active_queues() or {}
    return sorted(
        name for name, queues in active.items() if any(q["name"] == queue for q in queues)
    )


def pause_consumers(broker_url: str, queue: str = QUEUE) -> list[str]:
    """Stop the workers consuming `queue` from taking more of it; the workers paused."""
    app = _app(broker_url)
    workers = consumers_of(app, queue)
    if not workers:  # else the phase would measure with charging running, and say otherwise
        raise RuntimeError(f"no worker answered as a consumer of {queue}: nothing paused")
    app.control.cancel_consumer(
        queue, destination=workers, reply=True, timeout=5, limit=len(workers)
    )
    return workers


def resume_consumers(broker_url: str, workers: list[str], queue: str = QUEUE) -> None:
    _app(broker_url).control.add_consumer(queue, destination=workers, reply=False)


def noop_drain(broker_url: str, count: int, *, timeout: float = 300) -> dict[str, Any]:
    app = _app(broker_url)
    with Connection(broker_url) as connection:
        if _ready(connection):
            raise RuntimeError("the payments queue is not empty: drain it before this baseline")
        workers = consumers_of(app, QUEUE)
        if not workers:
            raise RuntimeError(f"no worker consumes {QUEUE!r}")
        paused = app.control.cancel_consumer(
            QUEUE, destination=workers, reply=True, timeout=5, limit=len(workers)
        )
        try:
            with app.producer_or_acquire() as producer:
                for _ in range(count):
                    app.send_task("bench.noop", queue=QUEUE, routing_key=QUEUE, producer=producer)
            settle = time.monotonic() + 10  # publishing is asynchronous: let the queue fill
            while (queued := _ready(connection)) < count and time.monotonic() < settle:
                time.sleep(0.05)
        finally:
            started = time.monotonic()
            app.control.add_consumer(QUEUE, destination=workers, reply=False)
        deadline = started + timeout
        while _ready(connection) and time.monotonic() < deadline:
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        left = _ready(connection)
    drained = queued - left
    return {
        "tasks": count,
        "queued_before_start": queued,
        "drained": drained,
        "elapsed_s": round(elapsed, 3),
        "tasks_per_s": round(drained / elapsed, 1) if elapsed else None,
        "workers": workers,
        "workers_paused": len(paused or []),
    }
