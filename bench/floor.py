"""The floor: what charging one payment, or accepting one, cannot avoid, measured in process.

`python -m bench load` runs it (bench/README.md, "load") in a subprocess configured as
the platform's workers are (their environment: database, broker, Redis, settings,
secrets, the simulators as gateways): a charge's parts as its `floor` phase, an accept's
right after its `baseline` phase (`--parts intake`). Each part runs `n` times after
`warmup` runs, one operation at a time on kept-alive connections; each operation's CPU
time (of the measuring thread, `time.thread_time`) and wall time are kept.

A charge's parts:
- `charge_stripe` (a card), `charge_mercadopago`, `charge_gerencianet` (PIX): the
  adapter's charge through the gateway's SDK, with the request the engine builds
  (`charge_request_for`), for payment ids no row has (a new idempotency key each);
- `orm_transaction`: select_for_update of a payment, one UPDATE, two INSERTs (a
  PaymentEvent and a notifications Event with the payment's document, encrypted);
- `cache_write`: payments.cache's put of a payment document (encrypted, set-if-newer);
- `webhook_post`: notifications.sending.webhook_post (HMAC signed) of an event body to
  a receiver in a process of its own that keeps the connection alive;
- `celery_publish`: a task message through the project's Celery app to a private
  queue; `celery_consume_ack`: one message of it consumed (prefetch 1) and acked
  through kombu;
- `payment_document`: the payment's API document built (not summed).

An accept's: `accept_writes` (what an accept cannot leave out, through the code that
writes it, in one transaction: the key's fingerprint, the payment with its payer columns
as `payer_columns` makes them and its first event, its document, the key with that
answer), `celery_publish`, and `bare_row_insert` (the
bare insert's one row, where bench/baselines is installed).

`lean_floor_ms` sums the CPU means of a lean charging path (`lean_floor`); `intake_floor_ms`
what an accept costs beyond the bare insert at the least (`intake_floor`): its writes and
its publish, less the bare row. Scratch rows belong to a wallet app of the floor's own
(`bench-floor-...`, inactive), deleted at the end with every row, cache entry and queue
it made.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from bench.receiver import verify
from bench.stats import percentile, ratio
from bench.supervisor import BIN, ROOT, Platform

N = 300
WARMUP = 30
RECEIVER_SECRET = "whsec_bench_floor"  # noqa: S105 (signs bench bodies to a local receiver)
CHARGES = (("stripe", "card"), ("mercadopago", "pix"), ("gerencianet", "pix"))  # gateway, method
WEBHOOK_WORKER = "worker"  # the platform's process of the notifications queue
CPF = "12345678909"
# A BR Code of the usual length (the document carries it; nothing parses it here).
BR_CODE = (
    "00020101021226880014br.gov.bcb.pix2566qrcodes.example/v2/cobv/"
    "9d36b84fc70b478fb95c12729b90ca2552040000530398654041234"
    "5802BR5913PAYWAVE LTDA6009SAO PAULO62070503***6304ABCD"
)

Samples = tuple[list[float], list[float]]  # CPU ms, wall ms per operation
# What one run measures: a charge's parts (the floor phase), or an accept's (right after
# the baseline phase, which the intake floor is set beside).
PARTS = ("charging", "intake")


# --- arithmetic ----------------------------------------------------------------------


def part_figures(samples: Samples) -> dict[str, Any]:
    """n, and the mean and p50 of the CPU and wall milliseconds of one part's operations."""
    cpu, wall = sorted(samples[0]), sorted(samples[1])

    def of(values: list[float]) -> dict[str, float]:
        return {
            "mean": round(statistics.fmean(values), 3),
            "p50": round(percentile(values, 0.5), 3),
        }

    return {"n": len(cpu), "cpu_ms": of(cpu), "wall_ms": of(wall)}


def lean_terms(pix_share: float, routes: dict[str, str]) -> list[tuple[str, float, str]]:
    """(part, times per payment, its role) of a lean charging path. The call is the charge
    at the gateway routing picks first: cards' (`routes["card"]`) for 1 - pix_share of the
    payments, PIX's (`routes["pix"]`) for pix_share of them."""
    return [
        ("orm_transaction", 1.0, "claim"),
        (f"charge_{routes['card']}", round(1 - pix_share, 6), "the call (cards)"),
        (f"charge_{routes['pix']}", round(pix_share, 6), "the call (PIX)"),
        ("orm_transaction", 1.0, "result"),
        ("cache_write", 1.0, "cache"),
        ("webhook_post", 1.0, "one webhook"),
        ("celery_consume_ack", 1.0, "the job's consume and ack"),
    ]


def lean_floor(
    parts: dict[str, dict[str, Any]], *, pix_share: float, routes: dict[str, str]
) -> dict[str, Any]:
    """CPU ms (and wall ms) per payment of the lean path from the parts' means; what was summed."""
    summed = []
    cpu = wall = 0.0
    for part, weight, role in lean_terms(pix_share, routes):
        if weight == 0:
            continue
        figures = parts[part]
        cpu += weight * figures["cpu_ms"]["mean"]
        wall += weight * figures["wall_ms"]["mean"]
        summed.append(
            {"part": part, "weight": weight, "role": role, "cpu_ms": figures["cpu_ms"]["mean"]}
        )
    return {
        "lean_floor_ms": round(cpu, 3),
        "lean_floor_wall_ms": round(wall, 3),
        "summed": summed,
    }


def charging_cpu_per_payment(cpu_s: dict[str, float], completed: int) -> dict[str, float] | None:
    """CPU ms per payment of the payments workers and of the webhook worker, from their CPU
    seconds over a window in which `completed` payments were charged and notified."""
    if completed <= 0:
        return None
    payments = sum(seconds for name, seconds in cpu_s.items() if name.startswith("payments"))
    webhook = cpu_s.get(WEBHOOK_WORKER, 0.0)
    return {
        "payments_workers": round(payments * 1000 / completed, 3),
        "webhook_worker": round(webhook * 1000 / completed, 3),
        "total": round((payments + webhook) * 1000 / completed, 3),
    }


def cpu_per_payment_ratio(
    charging: dict[str, float] | None, lean_floor_ms: float | None
) -> float | None:
    return ratio(charging["total"] if charging else None, lean_floor_ms)


# --- the phase, from the load run ----------------------------------------------------


def floor_run(
    platform: Platform, config: dict[str, Any], run_dir: Path, parts: str = "charging"
) -> dict[str, Any]:
    """Run the measurement of `parts` (PARTS) in a subprocess with the workers'
    environment; its figures."""
    out = run_dir / f"floor_{parts}.json"
    log = run_dir / "logs" / "floor.log"
    command = [
        str(BIN / "python"),
        "-m",
        "bench.floor",
        "--parts",
        parts,
        "--out",
        str(out),
        "--n",
        str(config.get("floor_n", N)),
        "--warmup",
        str(config.get("floor_warmup", WARMUP)),
        "--pix-share",
        str(config["pix_share"]),
    ]
    if platform.settings.worker_nice:
        command = ["nice", "-n", str(platform.settings.worker_nice), *command]
    with log.open("ab") as output:
        done = subprocess.run(  # noqa: S603 (our own module)
            command,
            cwd=ROOT,
            env=platform.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=1200,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the floor measurement failed (exit {done.returncode}); see {log}")
    return json.loads(out.read_text())


# --- the measurement, in the subprocess ----------------------------------------------


def timed(
    run: Callable[[Any], object], n: int, warmup: int, prepare: Callable[[int], Any] = lambda i: i
) -> Samples:
    """`run(prepare(i))` warmup + n times, one at a time; the last n operations' CPU and wall
    ms (what `prepare` does is not timed)."""
    cpu: list[float] = []
    wall: list[float] = []
    for i in range(warmup + n):
        argument = prepare(i)
        cpu_start, wall_start = time.thread_time(), time.perf_counter()
        run(argument)
        wall_end, cpu_end = time.perf_counter(), time.thread_time()
        if i >= warmup:
            cpu.append((cpu_end - cpu_start) * 1000)
            wall.append((wall_end - wall_start) * 1000)
    return cpu, wall


class _Hook(BaseHTTPRequestHandler):
    """A wallet app's endpoint that checks the signature and keeps the connection alive."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        signed = verify(RECEIVER_SECRET, self.headers.get("PayWave-Signature", ""), body)
        self.send_response(200 if signed else 400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_receiver() -> int:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    return 0


@contextmanager
def receiver_process() -> Iterator[str]:
    """The webhook receiver in a process of its own (its CPU is not the measured thread's)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.floor", "--receiver"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/hooks/floor"
    finally:
        process.terminate()
        process.wait(timeout=10)


class Scratch:
    """A wallet app of the floor's own and its PIX payments, awaiting payment (expiring
    in a day: no sweep touches them within a run); `delete` removes all it wrote."""

    def __init__(self, count: int) -> None:
        from django.contrib.auth import get_user_model
        from django.utils import timezone

        from payments.models import Payment, PaymentMethod, PaymentStatus
        from payments.serializers import payment_document
        from paywave.models import ApiClient

        name = f"bench-floor-{uuid.uuid4().hex[:10]}"
        self.user = get_user_model().objects.create(username=name, is_active=False)
        self.client = ApiClient.objects.create(user=self.user, name=name, is_active=False)
        expires = timezone.now() + timedelta(days=1)
        self.payments = Payment.objects.bulk_create(
            Payment(
                client=self.client,
                amount=1000 + i,
                currency="BRL",
                method=PaymentMethod.PIX,
                status=PaymentStatus.AWAITING_PAYMENT,
                payer_name="Ana Souza",
                payer_email="ana@example.com",
                payer_tax_id=CPF,
                payer_country="BR",
                pix_expires_in=86400,
                pix_expires_at=expires,
                pix_txid=uuid.uuid4().hex,
                pix_qr_code=BR_CODE,
                gateway="mercadopago",
                gateway_reference=str(1_000_000 + i),
                description=f"bench floor {i}",
            )
            for i in range(count)
        )
        self.document = payment_document(self.payments[0], attempts=[])

    def delete(self) -> None:
        from django.apps import apps

        from notifications.models import Event
        from payments.cache import payment_cache_delete
        from payments.models import Payment

        Event.objects.filter(client=self.client).delete()
        if apps.is_installed("bench.baselines"):
            from bench.baselines.models import BareRow

            BareRow.objects.filter(client_id=self.client.pk).delete()
        for payment in self.payments:
            payment_cache_delete(payment.id)
        Payment.objects.filter(client=self.client).delete()  # events and attempts with them
        self.client.delete()
        self.user.delete()


def _unsaved_payment(client: Any, method: str, i: int) -> Any:
    from payments.models import Payment, PaymentMethod

    if method == PaymentMethod.PIX:
        fields = {"currency": "BRL", "payer_country": "BR", "payer_tax_id": CPF}
    else:
        fields = {"currency": "USD", "payer_country": "US", "card_token": "pm_card_visa"}
    return Payment(
        id=uuid.uuid4(),
        client=client,
        amount=1000 + i,
        method=method,
        payer_name="Ana Souza",
        payer_email="ana@example.com",
        description=f"bench floor {i}",
        **fields,
    )


def charge_part(code: str, method: str, client: Any, n: int, warmup: int) -> Samples:
    from gateways.base import ChargeStatus
    from gateways.models import Gateway
    from gateways.registry import adapter_for
    from payments.processing import charge_request_for

    gateway = Gateway.objects.get(code=code)
    expected = ChargeStatus.SUCCEEDED if method == "card" else ChargeStatus.AWAITING_PAYMENT

    def prepare(i: int) -> Any:
        return charge_request_for(_unsaved_payment(client, method, i), code, attempts=[])

    def run(request: Any) -> None:
        result = adapter_for(gateway).charge(request)
        if result.status != expected:
            raise RuntimeError(f"{code} answered {result.status}, not {expected}")

    return timed(run, n, warmup, prepare)


def orm_transaction(scratch: Scratch, payment: Any, actor: str = "bench.floor") -> None:
    """The floor's `orm_transaction`: select_for_update of a payment, one UPDATE, a
    PaymentEvent and a notifications Event with the payment's document."""
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from notifications.models import Event
    from payments.models import Payment, PaymentEvent

    now = timezone.now()
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        Payment.objects.filter(pk=payment.pk).update(version=F("version") + 1, updated_at=now)
        PaymentEvent.objects.create(
            payment_id=payment.pk,
            from_status=locked.status,
            to_status=locked.status,
            reason=actor,
            actor=actor,
        )
        # Fanned out already: no sweep makes deliveries of it.
        Event.objects.create(
            type="payment.awaiting_payment",
            client_id=payment.client_id,
            subject_id=payment.pk,
            data=scratch.document,
            fanned_out_at=now,
        )


def orm_part(scratch: Scratch, n: int, warmup: int) -> Samples:
    return timed(
        lambda payment: orm_transaction(scratch, payment), n, warmup, lambda i: scratch.payments[i]
    )


def cache_part(scratch: Scratch, n: int, warmup: int) -> Samples:
    from payments.cache import payment_cache_put

    def prepare(i: int) -> Any:
        payment = scratch.payments[i]
        payment.version += 1  # a newer version than any stored: the write happens
        return payment

    return timed(lambda p: payment_cache_put(p, scratch.document), n, warmup, prepare)


def document_part(scratch: Scratch, n: int, warmup: int) -> Samples:
    from payments.serializers import payment_document

    return timed(
        lambda p: payment_document(p, attempts=[]), n, warmup, lambda i: scratch.payments[i]
    )


def webhook_part(scratch: Scratch, url: str, n: int, warmup: int) -> Samples:
    from django.utils import timezone

    from notifications.models import Event
    from notifications.sending import event_body, webhook_post

    def prepare(i: int) -> bytes:  # the body a delivery sends, of an event never stored
        event = Event(
            type="payment.awaiting_payment", data=scratch.document, created_at=timezone.now()
        )
        return event_body(event)

    def run(body: bytes) -> None:
        sent = webhook_post(url=url, secret=RECEIVER_SECRET, body=body)
        if not sent.ok:
            raise RuntimeError(f"webhook POST failed: {sent.status_code} {sent.error}")

    return timed(run, n, warmup, prepare)


# --- intake: what an accept writes that the bare insert does not --------------------

# The bench's PIX body (bench/payloads.py's shape): what the key's fingerprint is taken of.
ACCEPT_BODY = {
    "amount": 1000,
    "currency": "BRL",
    "method": "pix",
    "payer": {"name": "Ana Souza", "email": "ana@example.com", "tax_id": CPF, "country": "BR"},
    "description": "bench floor",
}


def accept_writes(client: Any, i: int) -> None:
    """The floor's `accept_writes`: what an accept cannot leave out, through the code that
    writes it, in one transaction: the key's fingerprint, the payment (its payer columns
    from payments.services' `payer_columns`, encrypted as stored) and its first event
    (`insert_row`), its document, and the key with that answer (`idempotent_call`).
    Nothing published (`celery_publish`), nothing cached, no log line or metric."""
    from django.utils import timezone
    from rest_framework import status

    from gateways.base import Payer
    from payments.models import Payment, PaymentEvent, PaymentStatus
    from payments.serializers import payment_document
    from payments.services import payer_columns
    from paywave.api.idempotency import StoredResponse, idempotent_call, request_fingerprint
    from paywave.queries import insert_row

    payer = Payer(**ACCEPT_BODY["payer"])
    due = timezone.now() + timedelta(days=1)

    def create() -> StoredResponse:
        payment = Payment(
            client_id=client.pk,
            amount=ACCEPT_BODY["amount"] + i,
            currency=ACCEPT_BODY["currency"],
            method=ACCEPT_BODY["method"],
            **payer_columns(payer),
            pix_expires_in=86400,
            description=ACCEPT_BODY["description"],
            next_attempt_at=due,  # no outbox sweep publishes it before the scratch goes
        )
        insert_row(payment)
        insert_row(
            PaymentEvent(
                payment=payment,
                from_status="",
                to_status=PaymentStatus.PENDING,
                reason="accepted",
                actor=f"client:{client.pk}",
            )
        )
        return StoredResponse(
            status=status.HTTP_202_ACCEPTED,
            body=payment_document(payment, attempts=()),
            headers={"Location": f"/api/v1/payments/{payment.id}"},
        )

    idempotent_call(
        client_id=client.pk,
        key=uuid.uuid4().hex,
        fingerprint=request_fingerprint(method="POST", path="/api/v1/payments", data=ACCEPT_BODY),
        operation=create,
    )


def bare_row_insert(client: Any, i: int) -> None:
    """The floor's `bare_row_insert`: the bare insert's one row (bench/baselines), as its
    view writes it."""
    from bench.baselines.models import BareRow

    BareRow.objects.create(
        client_id=client.pk,
        amount=ACCEPT_BODY["amount"] + i,
        currency=ACCEPT_BODY["currency"],
        method=ACCEPT_BODY["method"],
        body=ACCEPT_BODY,
    )


def intake_parts(client: Any, n: int, warmup: int) -> dict[str, Samples]:
    """`accept_writes`, and `bare_row_insert` where the baselines are installed."""
    from django.apps import apps

    samples = {"accept_writes": timed(lambda i: accept_writes(client, i), n, warmup)}
    if apps.is_installed("bench.baselines"):
        samples["bare_row_insert"] = timed(lambda i: bare_row_insert(client, i), n, warmup)
    return samples


def intake_floor(parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """CPU ms an accept costs beyond the bare insert at the least: its writes and its
    publish, less the bare insert's one row (null without the baselines); what was summed."""
    terms = [("accept_writes", 1), ("celery_publish", 1), ("bare_row_insert", -1)]
    if any(part not in parts for part, _ in terms):
        return {"intake_floor_ms": None, "intake_summed": []}
    summed = [
        {"part": part, "weight": weight, "cpu_ms": parts[part]["cpu_ms"]["mean"]}
        for part, weight in terms
    ]
    return {
        "intake_floor_ms": round(sum(t["weight"] * t["cpu_ms"] for t in summed), 3),
        "intake_summed": summed,
    }


# The services whose work per accept is the floor's: its writes are the accept's statements
# (held by tests/bench/test_floor_intake.py), its one message the accept's publish.
FLOOR_SERVICES = ("postgresql", "rabbitmq")


def services_extra_ms(
    cpu_cores: dict[str, dict[str, float]], bare_per_s: float | None, intake_per_s: float | None
) -> float | None:
    """CPU ms PostgreSQL and RabbitMQ spent per accept (intake phase) beyond what they spent
    per bare insert (baseline phase); None unless both phases ran."""
    baseline, intake = cpu_cores.get("baseline"), cpu_cores.get("intake")
    if not bare_per_s or not intake_per_s or baseline is None or intake is None:
        return None
    extra = sum(
        intake.get(name, 0.0) * 1000 / intake_per_s - baseline.get(name, 0.0) * 1000 / bare_per_s
        for name in FLOOR_SERVICES
    )
    return round(max(extra, 0.0), 3)


def intake_ratio_bound(
    bare_per_s: float | None,
    bare_machine_cores: float | None,
    intake_floor_ms: float | None,
    services_ms: float | None,
) -> float | None:
    """The most `intake_only_accept_ratio` can be: the machine's CPU ms per bare insert
    over that plus what an accept costs at the least beyond it (`intake_floor_ms` in
    process, and `services_ms` in PostgreSQL and RabbitMQ), as if the API, the load
    generator and the rest spent nothing more per accept than per bare insert."""
    if not bare_per_s or not bare_machine_cores or intake_floor_ms is None or services_ms is None:
        return None
    bare_ms = bare_machine_cores * 1000 / bare_per_s
    return ratio(bare_ms, bare_ms + intake_floor_ms + services_ms)


def celery_parts(n: int, warmup: int) -> tuple[Samples, Samples]:
    """Publish n + warmup task messages to a private queue, then consume and ack them."""
    from django.conf import settings
    from kombu import Connection, Consumer

    from config.celery_app import app

    name = f"bench.floor.{uuid.uuid4().hex[:12]}"
    queue = app.amqp.queues[name]  # made as Celery makes a queue it is told of
    received: list[int] = []

    def on_message(body: Any, message: Any) -> None:
        message.ack()
        received.append(1)

    with Connection(settings.CELERY_BROKER_URL) as connection:
        channel = connection.channel()
        queue(channel).declare()
        try:
            publish = timed(
                lambda args: app.send_task("bench.floor", args=args, queue=name, routing_key=name),
                n,
                warmup,
                lambda i: [str(uuid.uuid4()), str(uuid.uuid4())],
            )
            # Prefetch 1 and acks late, as the workers consume.
            consumer = Consumer(
                channel, [queue], callbacks=[on_message], accept=["json"], prefetch_count=1
            )
            with consumer:

                def consume(_: int) -> None:
                    before = len(received)
                    while len(received) == before:
                        connection.drain_events(timeout=10)

                consume_ack = timed(consume, n, warmup)
        finally:
            queue(channel).delete()
            queue.exchange(channel).delete()
    return publish, consume_ack


def routes() -> dict[str, str]:
    """The gateway routing picks first for the bench's cards (USD, US) and PIX (BRL, BR)."""
    from gateways.selectors import gateway_candidates

    card = gateway_candidates(method="card", currency="USD", country="US")
    pix = gateway_candidates(method="pix", currency="BRL", country="BR")
    return {"card": card[0].code, "pix": pix[0].code}


def measure_intake(n: int, warmup: int) -> dict[str, Any]:
    started = time.monotonic()
    scratch = Scratch(1)
    try:
        samples = intake_parts(scratch.client, n, warmup)
        samples["celery_publish"], _ = celery_parts(n, warmup)
    finally:
        scratch.delete()
    parts = {name: part_figures(s) for name, s in samples.items()}
    return {
        "n": n,
        "warmup": warmup,
        "cpu_clock": "time.thread_time (the measuring thread)",
        "parts": parts,
        **intake_floor(parts),
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def measure(n: int, warmup: int, pix_share: float) -> dict[str, Any]:
    samples: dict[str, Samples] = {}
    started = time.monotonic()
    scratch = Scratch(n + warmup)
    try:
        with receiver_process() as url:
            for code, method in CHARGES:
                samples[f"charge_{code}"] = charge_part(code, method, scratch.client, n, warmup)
            samples["orm_transaction"] = orm_part(scratch, n, warmup)
            samples["cache_write"] = cache_part(scratch, n, warmup)
            samples["payment_document"] = document_part(scratch, n, warmup)
            samples["webhook_post"] = webhook_part(scratch, url, n, warmup)
            samples["celery_publish"], samples["celery_consume_ack"] = celery_parts(n, warmup)
    finally:
        scratch.delete()
    parts = {name: part_figures(s) for name, s in samples.items()}
    routed = routes()
    return {
        "n": n,
        "warmup": warmup,
        "cpu_clock": "time.thread_time (the measuring thread)",
        "pix_share": pix_share,
        "routes": routed,
        "parts": parts,
        **lean_floor(parts, pix_share=pix_share, routes=routed),
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--parts", choices=PARTS, default="charging", help="what to measure")
    parser.add_argument("--out", type=Path, help="where the figures (JSON) go")
    parser.add_argument("--n", type=int, default=N, help="measured operations per part")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="unmeasured ones first")
    parser.add_argument("--pix-share", type=float, default=0.5)
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.receiver:
        return serve_receiver()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    if args.parts == "intake":
        figures = measure_intake(args.n, args.warmup)
    else:
        figures = measure(args.n, args.warmup, args.pix_share)
    text = json.dumps(figures, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
