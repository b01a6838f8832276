"""What becomes of the charges an outage leaves behind at the gateway a payment left.

A PIX payment that fell back past a gateway whose answer was lost may hold a charge
there: an orphan, looked up and withdrawn once that gateway answers again, refunded if
the payer paid it anyway, or settling the payment if paid first; what cannot be resolved
goes to a person. Every payment is driven step by step through the real SDKs against
the simulators (tests/payments/processing/test_outages.py: the outages themselves).
"""

from datetime import timedelta
from typing import Any

import pytest
from django.conf import LazySettings
from django.utils import timezone

from gateways.adapters.mercadopago import idempotency_key_header
from gateways.health import gateways_probe_all
from gateways.registry import adapter_for
from payments.charges import frozen_charge_params, idempotency_key_for
from payments.models import OrphanCharge, Payment, PaymentEvent
from payments.models import PaymentStatus as S
from payments.orphans import orphan_record, orphan_resolve, orphans_withdraw
from tests.factories import WalletFactory
from tests.gateway_fixtures import drive
from tests.payments.callbacks.helpers import pay_pix, receive_and_process
from wallets.models import Wallet

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.fixture
def orphan_settings(settings: LazySettings) -> LazySettings:
    settings.PAYWAVE_ORPHAN_ABSENT_AFTER_SECONDS = 0  # the simulators never land requests late
    settings.PAYWAVE_ORPHAN_RETRY_BASE_SECONDS = 0
    # One try per gateway: an orphan is what the last try left, and each hung try costs
    # the gateway's whole timeout (tests/payments/processing/test_outages.py: all three).
    settings.PAYWAVE_TRIES_PER_GATEWAY = 1
    return settings


def test_a_hung_primary_s_orphan_is_withdrawn_once_it_answers(
    pix_payment: Any, sim: Any, orphan_settings: LazySettings
) -> None:
    sim.faults("mercadopago", down=True, down_mode="hang")
    before = timezone.now()
    payment = drive(pix_payment(pix_expires_in=600)).payment
    [made] = sim.charges(payment.id, gateway="mercadopago")  # the hang made the charge
    assert made["status"] == "pending"
    recorded = OrphanCharge.objects.get(payment=payment)  # expires as the payment's code does
    assert before + timedelta(seconds=600) <= recorded.expires_at
    assert recorded.expires_at <= timezone.now() + timedelta(seconds=600)

    assert orphans_withdraw() == {"later": 1}  # still hanging: looked at again later
    sim.reset_faults()
    assert orphans_withdraw() == {"withdrawn": 1}
    assert orphans_withdraw() == {}  # done: never cancelled twice

    [withdrawn] = sim.charges(payment.id, gateway="mercadopago")
    assert withdrawn["status"] == "cancelled"
    orphan = OrphanCharge.objects.get(payment=payment)
    assert (orphan.status, orphan.reference) == ("withdrawn", withdrawn["id"])
    payment.refresh_from_db()
    assert payment.status == S.AWAITING_PAYMENT  # its own charge, at Efí, is untouched


def test_a_recovered_gateway_s_orphans_are_looked_at_in_the_next_sweep(
    pix_payment: Any, sim: Any, orphan_settings: LazySettings
) -> None:
    """An orphan whose look failed waits out its backoff, unless the health probe finds its
    gateway up again: then the next sweep takes it at once."""
    sim.faults("mercadopago", down=True, down_mode="hang")
    payment = drive(pix_payment()).payment
    orphan_settings.PAYWAVE_ORPHAN_RETRY_BASE_SECONDS = 3600
    assert orphans_withdraw() == {"later": 1}  # still hanging: the next look in about an hour
    fresh = drive(pix_payment()).payment  # its orphan's first look is an hour away
    sim.reset_faults()
    assert orphans_withdraw() == {}

    assert gateways_probe_all()["mercadopago"]["status"] == "up"
    assert orphans_withdraw() == {"withdrawn": 1}
    assert OrphanCharge.objects.get(payment=payment).status == "withdrawn"
    assert OrphanCharge.objects.get(payment=fresh).checks == 0  # it waits: nothing failed yet


def test_an_orphan_found_but_not_cancelled_in_time_goes_to_a_person(
    pix_payment: Any, sim: Any, orphan_settings: LazySettings, caplog: pytest.LogCaptureFixture
) -> None:
    sim.faults("mercadopago", down=True, down_mode="hang")
    payment = drive(pix_payment()).payment
    orphan_settings.PAYWAVE_ORPHAN_GIVE_UP_SECONDS = 0
    # Seeded: the first request (the lookup) passes, the second (the cancel) gets a 503.
    sim.faults("mercadopago", error_rate=0.5, error_status=503, seed=2)

    assert orphans_withdraw() == {"given_up": 1}

    [made] = sim.charges(payment.id, gateway="mercadopago")
    assert made["status"] == "pending"  # still there: a person withdraws it
    orphan = OrphanCharge.objects.get(payment=payment)
    assert (orphan.status, orphan.reference) == ("given_up", made["id"])  # found by the lookup
    assert (
        orphan.last_error
        == "still unresolved: cancel: Retryable: mercadopago: HTTP 503, not processed"
    )
    [alert] = [r for r in caplog.records if getattr(r, "alert", "") == "orphan_unresolved"]
    assert f"(reference {made['id']})" in alert.getMessage()


def test_an_orphan_closed_at_the_gateway_by_someone_else_is_only_recorded(
    pix_payment: Any,
    gateways: Any,
    sim: Any,
    orphan_settings: LazySettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Paid and refunded there, or cancelled there: nothing left to withdraw or refund; a
    person hears of the money that came and went, not of the cancelled charge."""
    sim.faults("mercadopago", down=True, down_mode="hang")
    refunded = drive(pix_payment(amount=1000)).payment
    cancelled = drive(pix_payment(amount=2000)).payment
    sim.reset_faults()
    mercadopago = adapter_for(gateways["mercadopago"])
    [paid] = sim.charges(refunded.id, gateway="mercadopago")
    sim.http.post(f"/pix/{paid['id']}/pay", params={"gateway": "mercadopago"})
    mercadopago.refund(reference=paid["id"], amount=1000, idempotency_key="by-a-person")
    [unpaid] = sim.charges(cancelled.id, gateway="mercadopago")
    mercadopago.cancel(unpaid["id"])

    assert orphans_withdraw() == {"withdrawn": 2}

    stored = OrphanCharge.objects.get(payment=refunded)
    assert (stored.amount_paid, stored.last_error) == (None, "mercadopago says refunded/refunded")
    stored = OrphanCharge.objects.get(payment=cancelled)
    assert stored.last_error == "mercadopago says cancelled/by_collector"
    [alert] = [r for r in caplog.records if getattr(r, "alert", "") == "charge_reversed"]
    assert (alert.payment_id, alert.gateway) == (str(refunded.id), "mercadopago")
    assert alert.getMessage() == (
        f"a charge payment {refunded.id} left at mercadopago reads refunded/refunded"
    )


def test_a_reset_primary_that_made_nothing_leaves_an_absent_orphan(
    pix_payment: Any, sim: Any, orphan_settings: LazySettings
) -> None:
    sim.faults("mercadopago", down=True, down_mode="reset")  # read, never handled
    payment = drive(pix_payment()).payment
    sim.reset_faults()
    orphan_settings.PAYWAVE_ORPHAN_ABSENT_AFTER_SECONDS = 3600

    assert orphans_withdraw() == {"later": 1}  # within the hour a late request may still land
    orphan = OrphanCharge.objects.get(payment=payment)
    assert (orphan.status, orphan.last_error) == ("open", "not at the gateway yet")

    orphan_settings.PAYWAVE_ORPHAN_ABSENT_AFTER_SECONDS = 0
    assert orphans_withdraw() == {"absent": 1}
    orphan.refresh_from_db()
    assert (orphan.status, orphan.last_error) == ("absent", "the gateway holds no such charge")
    assert sim.charges(payment.id, gateway="mercadopago") == []


def test_an_orphan_paid_anyway_is_refunded_and_the_wallet_credited_once(
    pix_payment: Any,
    wallet_app: Any,
    capture: Any,
    orphan_settings: LazySettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wallet = WalletFactory(client=wallet_app)
    capture.faults("mercadopago", timeout_rate=1)
    payment = drive(pix_payment(client=wallet_app, amount=2500, wallet_id=wallet.pk)).payment
    capture.reset_faults()
    assert payment.gateway == "gerencianet"
    receive_and_process("gerencianet", pay_pix(capture, payment))  # the code it was shown
    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED

    [orphan_charge] = capture.charges(payment.id, gateway="mercadopago")
    paid_anyway = capture.http.post(
        f"/pix/{orphan_charge['id']}/pay", params={"gateway": "mercadopago"}
    )
    receive_and_process("mercadopago", paid_anyway.json()["callback"])  # unmatched: looks
    assert orphans_withdraw() == {"refunded": 1}
    assert orphans_withdraw() == {}

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    assert payment.gateway == "gerencianet"
    refunds = capture.http.get(
        "/refunds", params={"gateway": "mercadopago", "charge_id": orphan_charge["id"]}
    ).json()
    orphan = OrphanCharge.objects.get(payment=payment)
    assert [(r["amount"], r["idempotency_key"]) for r in refunds] == [
        (2500, idempotency_key_header(orphan.refund_idempotency_key)),  # as Mercado Pago takes it
    ]  # fmt: skip
    assert (orphan.status, orphan.amount_paid) == ("refunded", 2500)
    assert (orphan.refund_reference, orphan.last_error) == (refunds[0]["id"], "refunded")
    assert Wallet.objects.get(pk=wallet.pk).balance == 2500  # credited once
    [second] = PaymentEvent.objects.filter(payment=payment, reason__contains="second payment")
    assert second.reason == "a second payment of 25.00 BRL at mercadopago is refunded automatically"
    assert (second.from_status, second.to_status) == (S.SUCCEEDED, S.SUCCEEDED)  # an event only
    assert second.actor == "orphan-withdrawal"
    alerts = [r for r in caplog.records if getattr(r, "alert", "") == "extra_payment_refunded"]
    assert [(r.payment_id, r.gateway) for r in alerts] == [(str(payment.id), "mercadopago")]
    assert "was also paid 25.00 BRL at mercadopago" in alerts[0].getMessage()


def test_an_orphan_s_refund_is_tried_again_then_a_refusal_goes_to_a_person(
    pix_payment: Any,
    gateways: Any,
    capture: Any,
    orphan_settings: LazySettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    capture.faults("mercadopago", timeout_rate=1)
    payment = drive(pix_payment(amount=2500)).payment
    capture.reset_faults()
    receive_and_process("gerencianet", pay_pix(capture, payment))
    [orphan_charge] = capture.charges(payment.id, gateway="mercadopago")
    capture.http.post(f"/pix/{orphan_charge['id']}/pay", params={"gateway": "mercadopago"})
    # As a sweep stopped between the lookup and the refund left it.
    OrphanCharge.objects.filter(payment=payment).update(
        status="refunding", reference=orphan_charge["id"], amount_paid=2500
    )

    capture.faults("mercadopago", down=True, down_mode="503")
    assert orphans_withdraw() == {"later": 1}
    orphan = OrphanCharge.objects.get(payment=payment)
    assert (orphan.status, orphan.checks, orphan.claimed_until) == ("refunding", 1, None)
    assert orphan.last_error == "refund: Retryable: mercadopago: HTTP 503, not processed"

    capture.reset_faults()
    by_hand = adapter_for(gateways["mercadopago"]).refund(
        reference=orphan_charge["id"], amount=2500, idempotency_key="refunded-by-a-person"
    )  # meanwhile, at the gateway's dashboard
    assert orphans_withdraw() == {"given_up": 1}

    orphan.refresh_from_db()
    assert (orphan.status, orphan.refund_reference) == ("given_up", "")
    assert orphan.last_error == "the refund was refused: mercadopago: the payment was refused"
    [alert] = [r for r in caplog.records if getattr(r, "alert", "") == "orphan_unresolved"]
    assert (alert.payment_id, alert.gateway) == (str(payment.id), "mercadopago")
    assert f"(reference {orphan_charge['id']})" in alert.getMessage()
    refunds = capture.http.get(
        "/refunds", params={"gateway": "mercadopago", "charge_id": orphan_charge["id"]}
    ).json()
    assert [r["id"] for r in refunds] == [by_hand.reference]  # one refund: the person's


def paid_orphan(pix_payment: Any, capture: Any) -> tuple[Payment, dict[str, Any]]:
    """A payment settled at Efí whose orphan charge at Mercado Pago was paid too, its
    refund next (as a sweep stopped between the lookup and the refund left it)."""
    capture.faults("mercadopago", timeout_rate=1)
    payment = drive(pix_payment(amount=2500)).payment
    capture.reset_faults()
    receive_and_process("gerencianet", pay_pix(capture, payment))
    [orphan_charge] = capture.charges(payment.id, gateway="mercadopago")
    capture.http.post(f"/pix/{orphan_charge['id']}/pay", params={"gateway": "mercadopago"})
    OrphanCharge.objects.filter(payment=payment).update(
        status="refunding", reference=orphan_charge["id"], amount_paid=2500
    )
    return payment, orphan_charge


def test_an_orphan_s_refund_answered_failed_goes_to_a_person(
    pix_payment: Any,
    gateways: Any,
    capture: Any,
    orphan_settings: LazySettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    payment, orphan_charge = paid_orphan(pix_payment, capture)
    capture.faults("mercadopago", refund_status="failed")  # the payer's bank refused it

    assert orphans_withdraw() == {"given_up": 1}
    assert orphans_withdraw() == {}

    orphan = OrphanCharge.objects.get(payment=payment)
    why = "the refund failed at mercadopago (rejected)"
    assert (orphan.status, orphan.last_error, orphan.refund_reference) == ("given_up", why, "")
    [alert] = [r for r in caplog.records if getattr(r, "alert", "") == "orphan_unresolved"]
    assert (alert.payment_id, alert.gateway) == (str(payment.id), "mercadopago")
    assert alert.getMessage() == (
        f"a charge payment {payment.id} left at mercadopago "
        f"(reference {orphan_charge['id']}) needs a person: {why}"
    )
    refunds = capture.http.get(
        "/refunds", params={"gateway": "mercadopago", "charge_id": orphan_charge["id"]}
    ).json()
    assert [(r["amount"], r["status"]) for r in refunds] == [(2500, "rejected")]


def test_an_orphan_s_refund_answered_pending_is_looked_at_later(
    pix_payment: Any,
    gateways: Any,
    capture: Any,
    orphan_settings: LazySettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    payment, orphan_charge = paid_orphan(pix_payment, capture)
    capture.faults("mercadopago", refund_status="pending")
    before = timezone.now()

    assert orphans_withdraw() == {"later": 1}

    orphan = OrphanCharge.objects.get(payment=payment)
    assert (orphan.status, orphan.checks, orphan.claimed_until) == ("refunding", 1, None)
    assert orphan.last_error == "refund in_process at mercadopago"
    assert orphan.next_check_at >= before
    assert not [r for r in caplog.records if getattr(r, "alert", "") == "orphan_unresolved"]
    refunds = capture.http.get(
        "/refunds", params={"gateway": "mercadopago", "charge_id": orphan_charge["id"]}
    ).json()
    assert [(r["amount"], r["status"]) for r in refunds] == [(2500, "in_process")]


def test_an_orphan_paid_first_settles_the_payment_and_its_own_charge_is_withdrawn(
    pix_payment: Any, wallet_app: Any, capture: Any, orphan_settings: LazySettings
) -> None:
    wallet = WalletFactory(client=wallet_app)
    capture.faults("mercadopago", timeout_rate=1)
    payment = drive(pix_payment(client=wallet_app, amount=1800, wallet_id=wallet.pk)).payment
    capture.reset_faults()
    efi_txid = payment.gateway_reference

    [orphan_charge] = capture.charges(payment.id, gateway="mercadopago")
    capture.http.post(f"/pix/{orphan_charge['id']}/pay", params={"gateway": "mercadopago"})
    assert orphans_withdraw() == {"settled": 1}
    payment.refresh_from_db()
    assert (payment.status, payment.gateway) == (S.SUCCEEDED, "mercadopago")
    assert payment.gateway_reference == orphan_charge["id"]
    assert Wallet.objects.get(pk=wallet.pk).balance == 1800

    assert orphans_withdraw() == {"withdrawn": 1}  # the Efí code nobody needs now
    [efi] = capture.charges(payment.id, gateway="gerencianet")
    assert (efi["id"], efi["status"]) == (efi_txid, "REMOVIDA_PELO_USUARIO_RECEBEDOR")
    assert Wallet.objects.get(pk=wallet.pk).balance == 1800


def test_a_payment_settled_from_its_orphan_no_longer_waits_on_anything(
    pix_payment: Any, capture: Any, orphan_settings: LazySettings
) -> None:
    """What a person was asked to look at goes with the wait: the orphan's charge paid the
    payment, and the charge it waited on is the orphan now."""
    capture.faults("mercadopago", timeout_rate=1)
    payment = drive(pix_payment(amount=1800)).payment
    capture.reset_faults()
    efi_txid = payment.gateway_reference
    Payment.objects.filter(pk=payment.pk).update(
        needs_reconciliation=True,
        reconciliation_reason="gerencianet: the charge could not be read",
        parked_reason="charge_unconfirmed",
    )  # flagged meanwhile
    [orphan_charge] = capture.charges(payment.id, gateway="mercadopago")
    capture.http.post(f"/pix/{orphan_charge['id']}/pay", params={"gateway": "mercadopago"})

    assert orphans_withdraw() == {"settled": 1}

    payment.refresh_from_db()
    assert (payment.status, payment.gateway_reference) == (S.SUCCEEDED, orphan_charge["id"])
    assert (payment.needs_reconciliation, payment.reconciliation_reason) == (False, "")
    assert payment.parked_reason == ""
    settled = PaymentEvent.objects.get(payment=payment, to_status=S.SUCCEEDED)
    assert (settled.reason, settled.actor) == (
        "paid at mercadopago, on a charge left there by a fallback", "orphan-withdrawal",
    )  # fmt: skip
    orphan = OrphanCharge.objects.get(payment=payment, gateway="mercadopago")
    assert (orphan.status, orphan.amount_paid) == ("settled", 1800)
    assert (orphan.last_error, orphan.claimed_until) == ("it paid the payment", None)
    efi = OrphanCharge.objects.get(payment=payment, gateway="gerencianet")
    [efi_attempt] = payment.attempts.filter(gateway="gerencianet")
    assert (efi.status, efi.reference, efi.reason) == (
        "open", efi_txid, "the payment was paid at mercadopago instead",
    )  # fmt: skip
    assert (efi.idempotency_key, efi.charge_params) == (
        efi_attempt.idempotency_key, efi_attempt.charge_params,
    )  # fmt: skip


def test_an_orphan_paid_before_the_next_gateway_is_tried_settles_the_payment(
    pix_payment: Any, sim: Any, orphan_settings: LazySettings
) -> None:
    """The sweep finds the orphan paid between the fallback and a retry at the next gateway:
    the payment, charged nowhere else yet, is settled from it; that retry has nothing to do."""
    sim.faults("mercadopago", down=True, down_mode="hang")
    sim.faults("gerencianet", down=True, down_mode="503")  # refused: retried after a backoff
    payment = pix_payment(amount=1500)
    sweeps: list[dict[str, int]] = []

    def pay_the_orphan_once_left(number: int) -> None:
        if sweeps or not OrphanCharge.objects.filter(payment=payment).exists():
            return
        sim.reset_faults()
        [made] = sim.charges(payment.id, gateway="mercadopago")
        sim.http.post(f"/pix/{made['id']}/pay", params={"gateway": "mercadopago"})
        assert Payment.objects.get(pk=payment.pk).gateway == ""  # charged nowhere yet
        sweeps.append(orphans_withdraw())

    settled = drive(payment, before_step=pay_the_orphan_once_left).payment

    assert sweeps == [{"settled": 1}]
    assert (settled.status, settled.gateway) == (S.SUCCEEDED, "mercadopago")
    orphans = OrphanCharge.objects.filter(payment=payment).values_list("gateway", "status")
    assert list(orphans) == [("mercadopago", "settled")]  # nothing displaced to withdraw
    assert sim.charges(payment.id, gateway="gerencianet") == []


def test_a_claimed_orphan_is_left_to_the_sweep_that_holds_it(
    pix_payment: Any, sim: Any, orphan_settings: LazySettings
) -> None:
    sim.faults("mercadopago", down=True, down_mode="hang")
    payment = drive(pix_payment()).payment
    sim.reset_faults()
    held_until = timezone.now() + timedelta(seconds=30)
    OrphanCharge.objects.filter(payment=payment).update(claimed_until=held_until)

    assert orphans_withdraw() == {}  # another sweep is on it
    orphan = OrphanCharge.objects.get(payment=payment)
    assert (orphan.status, orphan.claimed_until) == ("open", held_until)
    assert orphan_resolve(orphan) == "claimed"

    OrphanCharge.objects.filter(payment=payment).update(claimed_until=timezone.now())
    assert orphans_withdraw() == {"withdrawn": 1}  # a lapsed claim is taken over
    assert OrphanCharge.objects.get(payment=payment).claimed_until is None


def test_an_orphan_that_paid_the_payment_is_never_refunded_by_a_later_look(
    pix_payment: Any, wallet_app: Any, capture: Any, orphan_settings: LazySettings
) -> None:
    """Two looks at one paid orphan (two sweeps, or a sweep after a callback): the first
    settles the payment from it; the second must see the payment's own charge."""
    wallet = WalletFactory(client=wallet_app)
    capture.faults("mercadopago", down=True, down_mode="hang")
    payment = drive(pix_payment(client=wallet_app, amount=1200, wallet_id=wallet.pk)).payment
    capture.reset_faults()
    [orphan_charge] = capture.charges(payment.id, gateway="mercadopago")
    capture.http.post(f"/pix/{orphan_charge['id']}/pay", params={"gateway": "mercadopago"})
    stale = OrphanCharge.objects.get(payment=payment)  # a second sweep's copy, read now

    assert orphans_withdraw() == {"settled": 1}
    # As if not yet seen: the payment settled from it by its callback, say.
    OrphanCharge.objects.filter(pk=stale.pk).update(status="open", amount_paid=None)
    assert orphan_resolve(stale) == "settled"
    stored = OrphanCharge.objects.get(pk=stale.pk)
    assert (stored.status, stored.amount_paid, stored.last_error) == (
        "settled", 1200, "it paid the payment",
    )  # fmt: skip

    refunds = capture.http.get(
        "/refunds", params={"gateway": "mercadopago", "charge_id": orphan_charge["id"]}
    ).json()
    assert refunds == []
    payment.refresh_from_db()
    assert (payment.status, payment.gateway_reference) == (S.SUCCEEDED, orphan_charge["id"])
    assert Wallet.objects.get(pk=wallet.pk).balance == 1200


def test_an_orphan_recorded_on_the_charge_the_payment_took_is_not_withdrawn(
    pix_payment: Any, sim: Any, orphan_settings: LazySettings
) -> None:
    """Two jobs of one payment (a worker killed mid-call, its job published again): one
    finds the charge and the payment takes it; the other, whose look-up timed out, records
    it as an orphan before its claim fails. The payer's code is the payment's own: kept."""
    payment = drive(pix_payment()).payment
    assert payment.status == S.AWAITING_PAYMENT
    assert payment.gateway == "mercadopago"
    orphan_record(
        payment,
        "mercadopago",
        idempotency_key=idempotency_key_for(payment, "mercadopago"),
        charge_params=frozen_charge_params(payment, "mercadopago"),
        reference="",
        reason="the tries ended with no usable answer and the lookup could not tell",
    )

    assert orphans_withdraw() == {"settled": 1}
    assert orphans_withdraw() == {}

    [kept] = sim.charges(payment.id, gateway="mercadopago")
    assert kept["status"] == "pending"  # the payer can still pay it
    assert OrphanCharge.objects.get(payment=payment).status == "settled"
    payment.refresh_from_db()
    assert (payment.status, payment.gateway_reference) == (S.AWAITING_PAYMENT, kept["id"])
