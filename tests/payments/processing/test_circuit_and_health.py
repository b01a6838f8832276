"""Circuit breakers in Redis, the beat health probe, and the staff gateway view."""

import json
import pickle
import time
from typing import Any

import pytest
import redis
from django.conf import LazySettings
from prometheus_client import REGISTRY

from gateways.circuit import (
    CircuitPass,
    CircuitState,
    circuit_pass,
    circuit_record_failure,
    circuit_record_success,
    circuit_status,
)
from gateways.health import gateway_health_get, gateways_probe_all
from payments.models import Payment
from payments.models import PaymentStatus as S
from payments.processing import payment_process_step
from paywave.cache.json_state import json_state
from tests.factories import ApiClientFactory, UserFactory, WebhookEndpointFactory
from tests.gateway_fixtures import drive
from tests.helpers import authenticated, card_body, post_payment

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def test_circuit_opens_after_threshold_then_half_opens_for_one_trial(
    settings: LazySettings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.PAYWAVE_CIRCUIT_THRESHOLD = 3
    settings.PAYWAVE_CIRCUIT_COOLDOWN_SECONDS = 0.3

    assert [circuit_record_failure("gw") for _ in range(3)] == [False, False, True]
    assert circuit_status("gw").state is CircuitState.OPEN
    assert circuit_pass("gw") is None
    alerts = [r for r in caplog.records if getattr(r, "alert", "") == "circuit_opened"]
    assert len(alerts) == 1
    assert alerts[0].gateway == "gw"

    time.sleep(0.35)
    assert circuit_status("gw").state is CircuitState.HALF_OPEN
    assert circuit_pass("gw") is not None  # the one trial
    assert circuit_pass("gw") is None  # nobody else meanwhile

    circuit_record_failure("gw")  # the trial failed: open again
    assert circuit_status("gw").state is CircuitState.OPEN
    time.sleep(0.35)
    assert circuit_pass("gw") is not None
    circuit_record_success("gw")  # the trial worked
    assert circuit_status("gw") == circuit_status("never-failed")
    assert circuit_status("gw").state is CircuitState.CLOSED
    events = [getattr(r, "event", None) for r in caplog.records]
    assert [e for e in events if e and e.startswith("circuit")] == [
        "circuit_opened",
        "circuit_half_open",  # by the cooldown: the first trial
        "circuit_reopened",
        "circuit_half_open",
        "circuit_closed",
    ]


def test_a_success_resets_the_consecutive_count(settings: LazySettings) -> None:
    settings.PAYWAVE_CIRCUIT_THRESHOLD = 3
    circuit_record_failure("gw")
    circuit_record_failure("gw")
    circuit_record_success("gw")
    circuit_record_failure("gw")
    circuit_record_failure("gw")
    assert circuit_status("gw").state is CircuitState.CLOSED


def test_a_pass_says_whether_the_circuit_was_clean(settings: LazySettings) -> None:
    settings.PAYWAVE_CIRCUIT_THRESHOLD = 2
    settings.PAYWAVE_CIRCUIT_COOLDOWN_SECONDS = 0
    assert circuit_pass("gw") == CircuitPass(clean=True)
    circuit_record_failure("gw")
    assert circuit_pass("gw") == CircuitPass(clean=False)  # closed, one failure counted
    circuit_record_failure("gw")  # open; cooled down at once: half-open
    assert circuit_pass("gw") == CircuitPass(clean=False)  # the one trial
    assert circuit_pass("gw") is None  # nobody else meanwhile


def test_a_success_of_a_call_let_through_clean_resets_nothing(settings: LazySettings) -> None:
    """Failures counted while the call was out ended after it began: newer news than its
    success. The next success of a call let through after them resets them."""
    settings.PAYWAVE_CIRCUIT_THRESHOLD = 3
    let_through = circuit_pass("gw")
    circuit_record_failure("gw")  # another worker's call, meanwhile
    circuit_record_failure("gw")

    circuit_record_success("gw", let_through=let_through)
    assert circuit_status("gw").failures == 2

    circuit_record_success("gw", let_through=circuit_pass("gw"))
    assert circuit_status("gw").failures == 0


def test_a_charge_on_a_clean_circuit_reads_it_once(
    api: Any, wallet_app: Any, gateways: Any, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One Redis round trip for the circuit a charge: its pass. Its success has nothing to
    reset."""
    WebhookEndpointFactory(client=wallet_app, url="http://127.0.0.1:9/hooks")
    payment = Payment.objects.get(pk=post_payment(api, card_body(), key="one").json()["id"])
    state_class = type(json_state())
    get_many = state_class.get_many
    circuit_reads: list[list[str]] = []

    def counted(self: Any, keys: list[str]) -> Any:
        if any(key.startswith("circuit:") for key in keys):
            circuit_reads.append(keys)
        return get_many(self, keys)

    monkeypatch.setattr(state_class, "get_many", counted)

    assert payment_process_step(payment.pk, str(payment.dispatch_token)) is None

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    assert len(circuit_reads) == 1


def test_a_tripped_primary_sends_the_next_payment_to_the_fallback_first(
    pix_payment: Any, sim: Any, processing_settings: LazySettings
) -> None:
    processing_settings.PAYWAVE_CIRCUIT_THRESHOLD = 3
    processing_settings.PAYWAVE_CIRCUIT_COOLDOWN_SECONDS = 600
    sim.faults("mercadopago", down=True, down_mode="503")
    before = circuit_changes("mercadopago")

    first = drive(pix_payment()).payment
    assert first.status == S.AWAITING_PAYMENT
    assert first.gateway == "gerencianet"
    assert circuit_status("mercadopago").state is CircuitState.OPEN

    second = drive(pix_payment()).payment

    assert second.status == S.AWAITING_PAYMENT
    assert [(a.gateway, a.number) for a in second.attempts.all()] == [("gerencianet", 1)]

    assert gateways_probe_all()["mercadopago"]["status"] == "down"  # still down: stays open
    assert circuit_status("mercadopago").state is CircuitState.OPEN

    sim.reset_faults()  # the primary recovers; the probe sees it and half-opens the circuit
    health = gateways_probe_all()

    assert health["mercadopago"]["status"] == "up"
    assert circuit_status("mercadopago").state is CircuitState.HALF_OPEN
    third = drive(pix_payment()).payment  # the trial call
    assert [(a.gateway, a.number) for a in third.attempts.all()] == [("mercadopago", 1)]
    assert circuit_status("mercadopago").state is CircuitState.CLOSED  # its success closed it
    counted = circuit_changes("mercadopago")
    assert {state: counted[state] - before[state] for state in counted} == {
        "open": 1, "half_open": 1, "closed": 1,
    }  # fmt: skip


def circuit_changes(gateway: str) -> dict[str, float]:
    """How many times the gateway's circuit reached each state, as counted for Prometheus."""
    return {
        state: REGISTRY.get_sample_value(
            "paywave_gateway_circuit_changes_total", {"gateway": gateway, "to_state": state}
        )
        or 0.0
        for state in ("open", "half_open", "closed")
    }


def test_probe_writes_status_latency_and_time_per_gateway(gateways: Any, sim: Any) -> None:
    sim.faults("gerencianet", down=True, down_mode="503")

    gateways_probe_all()

    up = gateway_health_get("mercadopago")
    down = gateway_health_get("gerencianet")
    assert up["status"] == "up"
    assert isinstance(up["latency_ms"], int)
    assert up["checked_at"].endswith("Z")
    assert down["status"] == "down"
    assert down["detail"]
    assert gateway_health_get("stripe")["status"] == "up"


def test_staff_see_gateways_with_health_and_circuit(
    gateways: Any, sim: Any, processing_settings: LazySettings
) -> None:
    processing_settings.PAYWAVE_CIRCUIT_THRESHOLD = 1
    circuit_record_failure("gerencianet")
    gateways_probe_all()  # closes what is healthy: gerencianet answers, so it closes
    circuit_record_failure("gerencianet")
    staff = authenticated(UserFactory(username="ops", is_staff=True))

    response = staff.get("/api/v1/gateways")

    assert response.status_code == 200
    by_code = {g["code"]: g for g in response.json()["results"]}
    assert list(by_code) == ["mercadopago", "paypal", "stripe", "gerencianet"]  # priority, code
    assert by_code["mercadopago"]["methods"] == ["pix"]
    assert by_code["mercadopago"]["health"]["status"] == "up"
    assert by_code["gerencianet"]["circuit"]["state"] == "open"
    assert by_code["gerencianet"]["circuit"]["opened_at"].endswith("Z")
    assert by_code["stripe"]["circuit"] == {"state": "closed", "failures": 0, "opened_at": None}


def test_wallet_apps_may_not_see_gateways(gateways: Any) -> None:
    response = authenticated(ApiClientFactory().user).get("/api/v1/gateways")

    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


def test_circuit_and_health_are_plain_json_in_redis_and_a_pickle_is_never_loaded(
    settings: LazySettings, gateways: Any, sim: Any, tmp_path: Any
) -> None:
    settings.PAYWAVE_CIRCUIT_THRESHOLD = 1
    circuit_record_failure("gw")
    gateways_probe_all()
    raw = redis.Redis.from_url(settings.REDIS_URL)

    assert json.loads(raw.get("circuit:v2:gw:failures")) == 1
    assert isinstance(json.loads(raw.get("circuit:v2:gw:opened_at")), float)
    assert json.loads(raw.get("gateway:v2:stripe:health"))["status"] == "up"

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> Any:
            return (marker.write_text, ("code ran",))

    raw.set("circuit:v2:other:opened_at", pickle.dumps(Payload()))
    raw.set("gateway:v2:stripe:health", pickle.dumps(Payload()))
    assert circuit_status("other").state is CircuitState.CLOSED
    assert gateway_health_get("stripe") is None
    assert not marker.exists()


def test_the_django_cache_never_unpickles_what_redis_holds(
    settings: LazySettings, tmp_path: Any
) -> None:
    """Throttles, alert dedupe, account state: Django's cache reads JSON only."""
    from django.core.cache import cache

    cache.set("paywave:test:doc", {"a": [1, 2.5, "x"]}, timeout=60)
    cache.add("paywave:test:count", 0, timeout=60)
    cache.incr("paywave:test:count")
    assert cache.get("paywave:test:doc") == {"a": [1, 2.5, "x"]}
    assert cache.get("paywave:test:count") == 1

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> Any:
            return (marker.write_text, ("code ran",))

    raw = redis.Redis.from_url(settings.REDIS_URL)
    (key,) = [k for k in raw.keys("*paywave:test:doc")]
    raw.set(key, pickle.dumps(Payload()))
    assert cache.get("paywave:test:doc") is None
    assert not marker.exists()


def attempts_of(payment: Any) -> list[tuple[str, int, str]]:
    return [(a.gateway, a.number, a.outcome) for a in payment.attempts.order_by("id")]


def test_a_circuit_that_opens_mid_payment_sends_its_next_try_to_the_fallback(
    card_payment: Any, second_stripe: Any, sim: Any, processing_settings: LazySettings
) -> None:
    processing_settings.PAYWAVE_CIRCUIT_THRESHOLD = 1
    processing_settings.PAYWAVE_CIRCUIT_COOLDOWN_SECONDS = 600
    sim.faults("stripe", error_rate=1, error_status=429)  # refused before anything ran

    def recover(number: int) -> None:
        if number == 1:
            sim.reset_faults()  # the primary's circuit stays open all the same

    payment = drive(card_payment(), before_step=recover).payment

    assert (payment.status, payment.gateway) == (S.SUCCEEDED, "stripe-backup")
    assert attempts_of(payment) == [
        ("stripe", 1, "retryable"),  # its failure opened the circuit: no second try there
        ("stripe-backup", 1, "succeeded"),
    ]


def test_a_circuit_that_opens_mid_payment_with_no_fallback_keeps_the_tries_there(
    card_payment: Any, sim: Any, processing_settings: LazySettings
) -> None:
    processing_settings.PAYWAVE_CIRCUIT_THRESHOLD = 1
    processing_settings.PAYWAVE_CIRCUIT_COOLDOWN_SECONDS = 600
    sim.faults("stripe", error_rate=1, error_status=429)  # refused before anything ran
    payment = card_payment()

    def recover(number: int) -> None:
        if number == 1:
            sim.reset_faults()  # the circuit is still open: nothing else could take the card

    payment = drive(payment, before_step=recover).payment

    assert (payment.status, payment.gateway) == (S.SUCCEEDED, "stripe")
    assert attempts_of(payment) == [("stripe", 1, "retryable"), ("stripe", 2, "succeeded")]


def test_with_every_circuit_open_the_first_gateway_still_gets_a_first_try(
    pix_payment: Any, sim: Any, processing_settings: LazySettings
) -> None:
    processing_settings.PAYWAVE_CIRCUIT_THRESHOLD = 1
    processing_settings.PAYWAVE_CIRCUIT_COOLDOWN_SECONDS = 600
    for code in ("mercadopago", "gerencianet"):
        circuit_record_failure(code)
        assert circuit_pass(code) is None

    payment = drive(pix_payment()).payment

    assert (payment.status, payment.gateway) == (S.AWAITING_PAYMENT, "mercadopago")
    assert attempts_of(payment) == [("mercadopago", 1, "succeeded")]
