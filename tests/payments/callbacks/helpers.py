"""Posting captured gateway callbacks to PayWave, and running the workers' part in process."""

from typing import Any
from urllib.parse import urlsplit

from django.test import Client

from gateways.models import GatewayCallback
from payments.callbacks import callback_process
from payments.models import Payment, Refund
from payments.refunds import refund_process


def post_callback(code: str, delivery: dict[str, Any], *, body: bytes | None = None) -> Any:
    """Post a captured callback to PayWave as the gateway would have."""
    query = urlsplit(delivery["url"]).query
    headers = {k: v for k, v in delivery["headers"].items() if k.lower() != "content-type"}
    return Client().generic(
        "POST",
        f"/webhooks/{code}" + (f"?{query}" if query else ""),
        delivery["body"].encode() if body is None else body,
        content_type=delivery["headers"].get("Content-Type", "application/json"),
        headers=headers,
    )


def receive_and_process(code: str, delivery: dict[str, Any]) -> GatewayCallback:
    """Post the callback, then process the newest stored one as the worker would."""
    response = post_callback(code, delivery)
    assert response.status_code == 200, response.content
    callback = GatewayCallback.objects.filter(gateway=code).first()
    callback_process(callback.pk)
    callback.refresh_from_db()
    return callback


def pay_pix(sim: Any, payment: Payment) -> dict[str, Any]:
    """The payer pays the PIX charge at the simulator; the callback it built (not sent)."""
    answer = sim.http.post(
        f"/pix/{payment.gateway_reference}/pay", params={"gateway": payment.gateway}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["callback"]


def run_refund_jobs(refund_id: Any, *, max_jobs: int = 50) -> list[float]:
    """The refund's jobs one after another, as a worker runs them (each with the token the
    one before handed on), until none is left; the countdowns they asked for."""
    countdowns: list[float] = []
    token = str(Refund.objects.values_list("job_token", flat=True).get(pk=refund_id))
    for _ in range(max_jobs):
        step = refund_process(refund_id, token)
        if step is None:
            return countdowns
        countdowns.append(step.countdown)
        token = step.token
    raise AssertionError(f"refund {refund_id} still had work after {max_jobs} jobs")
