"""`python -m bench prepared`: what sending statements the platform's way saves.

python -m bench prepared                         # results to bench/results/prepared.json
python -m bench prepared --n 500 --rounds 2

On PostgreSQL the platform sends a statement's values apart from its text (psycopg's
server-side binding) and prepares a statement the fifth time a connection runs it
(docs/operating.md, "Database connections"); Django's default sends each statement with
its values written into the text, parsed and planned by PostgreSQL on every run. This
measures both ways in one process, on one connection, alternating (`rounds` of each, in
turn, neither always first), each operation `n` times after a warm-up, one at a time:

- `accept`: what `POST /api/v1/payments` writes, without the HTTP: the Idempotency-Key's
  claim, the payment and its event, the key's answer, the job's publish after the commit;
- `charge_transaction`: the floor's `orm_transaction` (select_for_update of a payment,
  one UPDATE, a PaymentEvent and a notifications Event);
- `payment_read`: a charging step's first read of its payment (compiled once).

Per operation and way: the measuring thread's CPU (`client_cpu_ms`), the PostgreSQL
backend's CPU (`pg_cpu_ms`, from /proc: null unless PostgreSQL runs on this machine),
wall time; `ratios` divide the platform's way by Django's default, measured in the same
run.
"""

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.cpu import process_cpu_seconds

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_RESOURCES = {"database": "paywave_prepared", "vhost": "paywave_prepared", "redis_db": 4}
WAYS = ("django_default", "platform")
FIGURES = ("client_cpu_ms", "pg_cpu_ms", "wall_ms")
N = 1000
ROUNDS = 4
WARMUP = 20


def use_way(way: str) -> None:
    """Send the connection's next statements `way`: Django's default or the platform's."""
    from django.db import connection
    from django.db.backends.postgresql.base import Cursor, ServerBindingCursor

    connection.ensure_connection()
    raw: Any = connection.connection
    platform = way == "platform"
    raw.cursor_factory = ServerBindingCursor if platform else Cursor
    raw.prepare_threshold = 5 if platform else None


def backend_cpu_s() -> float | None:
    """The CPU seconds of this connection's PostgreSQL backend, or None if not readable."""
    from django.db import connection

    connection.ensure_connection()
    raw: Any = connection.connection
    return process_cpu_seconds(raw.info.backend_pid)  # psycopg knows it: no query


def block(run: Callable[[Any], object], arguments: list[Any]) -> dict[str, float | None]:
    """Run each argument once; the means per run of the block's figures."""
    pg_start = backend_cpu_s()
    cpu_start, wall_start = time.thread_time(), time.perf_counter()
    for argument in arguments:
        run(argument)
    wall, cpu = time.perf_counter() - wall_start, time.thread_time() - cpu_start
    pg_end = backend_cpu_s()
    runs = len(arguments)
    pg = None if pg_start is None or pg_end is None else (pg_end - pg_start) * 1000 / runs
    return {"client_cpu_ms": cpu * 1000 / runs, "pg_cpu_ms": pg, "wall_ms": wall * 1000 / runs}


def operations(scratch: Any) -> dict[str, tuple[Callable[[Any], object], Callable[[int], Any]]]:
    """Each operation: what runs, and the argument of its i-th run."""
    from bench.floor import orm_transaction
    from gateways.base import Payer
    from payments import services
    from payments.processing import _PAYMENT_BY_ID
    from paywave.api.idempotency import StoredResponse, idempotent_call
    from paywave.queries import compiled_read

    client_id = str(scratch.client.pk)
    payer = Payer(name="Ana Souza", country="BR", email="ana@example.com", tax_id="52998224725")

    def accept(key: str) -> None:
        def create() -> StoredResponse:
            _, document = services.payment_create(
                client_id=client_id, amount=1000, currency="BRL", method="pix", payer=payer
            )
            return StoredResponse(status=202, body=document)

        idempotent_call(client_id=client_id, key=key, fingerprint=key, operation=create)

    def charge_transaction(payment: Any) -> None:
        orm_transaction(scratch, payment, actor="bench.prepared")

    def payment_read(payment: Any) -> None:
        compiled_read(_PAYMENT_BY_ID).run(pk=payment.pk)

    def nth_payment(i: int) -> Any:
        return scratch.payments[i % len(scratch.payments)]

    return {
        "accept": (accept, lambda i: uuid.uuid4().hex),
        "charge_transaction": (charge_transaction, nth_payment),
        "payment_read": (payment_read, nth_payment),
    }


def measure(n: int, rounds: int, warmup: int = WARMUP) -> dict[str, Any]:
    """Both ways, alternating, `rounds` blocks of `n` runs of each operation."""
    from bench.floor import Scratch

    scratch = Scratch(n + warmup)
    blocks: dict[str, dict[str, list[dict[str, float | None]]]] = {way: {} for way in WAYS}
    try:
        for name, (run, argument) in operations(scratch).items():
            for turn in range(rounds):
                for way in WAYS if turn % 2 == 0 else WAYS[::-1]:  # neither always first
                    use_way(way)
                    for i in range(warmup):
                        run(argument(i))
                    arguments = [argument(warmup + i) for i in range(n)]
                    blocks[way].setdefault(name, []).append(block(run, arguments))
    finally:
        use_way("platform")
        _forget_accepted(scratch)
        scratch.delete()
    means = {way: {name: _mean(rows) for name, rows in blocks[way].items()} for way in WAYS}
    platform, default = means["platform"], means["django_default"]
    return {
        "n": n,
        "rounds": rounds,
        "warmup": warmup,
        "ways": means,
        "ratios": {
            name: {f: _ratio(platform[name][f], default[name][f]) for f in FIGURES}
            for name in platform
        },
        "blocks": blocks,
    }


def _forget_accepted(scratch: Any) -> None:
    """The accepted payments' cache entries and jobs (the rows go with the scratch app)."""
    from celery import current_app

    from payments.cache import payment_cache_delete
    from payments.models import Payment
    from paywave.jobs import PAYMENTS_QUEUE

    for payment_id in Payment.objects.filter(client=scratch.client).values_list("pk", flat=True):
        payment_cache_delete(payment_id)
    with current_app.connection_for_write() as broker:
        broker.default_channel.queue_purge(PAYMENTS_QUEUE)


def _mean(rows: list[dict[str, float | None]]) -> dict[str, float | None]:
    figures: dict[str, float | None] = {}
    for figure in FIGURES:
        values = [value for row in rows if (value := row[figure]) is not None]
        figures[figure] = round(sum(values) / len(values), 4) if len(values) == len(rows) else None
    return figures


def _ratio(value: float | None, baseline: float | None) -> float | None:
    return None if value is None or not baseline else round(value / baseline, 3)


def parse(argv: list[str] | None) -> argparse.Namespace:
    from bench.supervisor import in_process_parser

    parser = in_process_parser(
        "python -m bench prepared", __doc__, RESULTS / "prepared.json", DEFAULT_RESOURCES
    )
    parser.add_argument("--n", type=int, default=N, help="runs of each operation per block")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="blocks of each way")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from bench.supervisor import in_process_platform

    args = parse(argv)
    stamp = datetime.now(UTC)
    in_process_platform(args, "prepared")
    started = time.monotonic()
    result = measure(args.n, args.rounds)
    result = {
        "measured_at": stamp.isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - started, 1),
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"ways": result["ways"], "ratios": result["ratios"]}, indent=2))
    print(f"bench: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
