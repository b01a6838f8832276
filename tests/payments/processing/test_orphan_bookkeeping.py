"""Orphan charges that cannot be withdrawn yet: looked at again later, then given to a person.

Each check that settles nothing pushes that orphan's next look back (and counts it);
one left unresolved past PAYWAVE_ORPHAN_GIVE_UP_SECONDS, or at a gateway no longer
configured, is given up with an alert naming the payment, the gateway and the charge.
A callback from a gateway brings its open orphans (or one payment's) forward at once.
The withdrawal itself, against the simulators, is in test_orphan_withdrawal.py.
"""

from datetime import timedelta
from typing import Any

import pytest
from django.conf import LazySettings
from django.utils import timezone

from gateways.models import Gateway
from payments.models import OrphanCharge
from payments.models import PaymentStatus as S
from payments.orphans import orphan_record, orphan_resolve, orphans_due_now, orphans_withdraw
from tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db

LATER = timezone.now() + timedelta(hours=1)


def orphan(gateway: str = "mercadopago", **fields: Any) -> OrphanCharge:
    payment = fields.pop("payment", None) or PaymentFactory(status=S.AWAITING_PAYMENT)
    return OrphanCharge.objects.create(
        payment=payment,
        gateway=gateway,
        idempotency_key=f"paywave-{payment.id}-{gateway}",
        reason="left behind by a fallback",
        expires_at=timezone.now() + timedelta(hours=1),
        next_check_at=fields.pop("next_check_at", LATER),
        **fields,
    )


def alerts(caplog: pytest.LogCaptureFixture, kind: str) -> list[Any]:
    return [r for r in caplog.records if getattr(r, "alert", "") == kind]


def test_a_callback_brings_that_gateway_s_open_orphans_forward(gateways: Any) -> None:
    mine = orphan("mercadopago")
    same_payment_elsewhere = orphan("gerencianet", payment=mine.payment)
    closed = orphan("mercadopago", status="withdrawn")
    other_payment = orphan("mercadopago")

    assert orphans_due_now("mercadopago", payment_id=mine.payment_id) == 1
    assert OrphanCharge.objects.get(pk=mine.pk).next_check_at <= timezone.now()
    for untouched in (same_payment_elsewhere, closed, other_payment):
        assert OrphanCharge.objects.get(pk=untouched.pk).next_check_at == LATER

    assert orphans_due_now("mercadopago") == 2  # without a payment: all of its open ones
    assert OrphanCharge.objects.get(pk=other_payment.pk).next_check_at <= timezone.now()
    assert OrphanCharge.objects.get(pk=closed.pk).next_check_at == LATER


def record_again(existing: OrphanCharge, reference: str) -> OrphanCharge:
    return orphan_record(
        existing.payment,
        existing.gateway,
        idempotency_key="another-key",
        charge_params="",
        reference=reference,
        reason="a charge answered after the payment had moved on",
    )


def test_an_orphan_recorded_again_learns_its_reference_once(gateways: Any) -> None:
    unknown = orphan("mercadopago")
    known = orphan("mercadopago", reference="mp-1")
    found_absent = orphan("mercadopago", status="absent")
    still_absent = orphan("mercadopago", status="absent")

    for existing, reference in [
        (unknown, "mp-2"), (known, "mp-3"), (found_absent, "mp-4"), (still_absent, ""),
    ]:  # fmt: skip
        assert record_again(existing, reference).pk == existing.pk

    def stored(o: OrphanCharge) -> tuple[str, str, str, bool]:
        row = OrphanCharge.objects.get(pk=o.pk)
        assert (row.idempotency_key, row.reason) == (o.idempotency_key, o.reason)  # the first's
        return (row.status, row.reference, row.charge_params, row.next_check_at == LATER)

    assert stored(unknown) == ("open", "mp-2", "", True)
    assert stored(known) == ("open", "mp-1", "", True)
    assert stored(found_absent) == ("open", "mp-4", "", False)  # it turned up: looked at now
    assert stored(still_absent) == ("absent", "", "", True)


def test_an_orphan_that_cannot_be_looked_up_is_looked_at_again_later(
    gateways: Any, settings: LazySettings
) -> None:
    settings.PAYWAVE_ORPHAN_RETRY_BASE_SECONDS = 100
    settings.PAYWAVE_ORPHAN_RETRY_MAX_SECONDS = 1000
    unknown = orphan("mercadopago")  # no reference, no parameters: nothing to ask with
    before = timezone.now()

    assert orphan_resolve(unknown) == "later"
    assert orphan_resolve(OrphanCharge.objects.get(pk=unknown.pk)) == "later"

    stored = OrphanCharge.objects.get(pk=unknown.pk)
    assert (stored.status, stored.checks) == ("open", 2)
    assert stored.last_error == "GatewayError: nothing to look the charge up by"
    # The second look waits about twice the first (base 100 s, factor 2, jitter 20 %).
    assert before + timedelta(seconds=160) <= stored.next_check_at
    assert stored.next_check_at <= timezone.now() + timedelta(seconds=240)
    assert stored.updated_at >= before


def test_an_orphan_s_next_look_keeps_within_its_jitter_and_its_cap(
    gateways: Any, settings: LazySettings
) -> None:
    settings.PAYWAVE_ORPHAN_RETRY_BASE_SECONDS = 100
    settings.PAYWAVE_ORPHAN_RETRY_MAX_SECONDS = 1000
    first_looks = [orphan("mercadopago") for _ in range(8)]
    long_tried = orphan("mercadopago", checks=6)  # uncapped: 100 s x 2^6 = 6400 s
    before = timezone.now()

    for unknown in [*first_looks, long_tried]:
        assert orphan_resolve(unknown) == "later"

    after = timezone.now()
    for first in OrphanCharge.objects.filter(pk__in=[o.pk for o in first_looks]):
        # 100 s +/- 20 %, every time.
        assert before + timedelta(seconds=80) <= first.next_check_at
        assert first.next_check_at <= after + timedelta(seconds=120)
    stored = OrphanCharge.objects.get(pk=long_tried.pk)
    assert stored.checks == 7
    assert before + timedelta(seconds=800) <= stored.next_check_at  # the cap, +/- 20 %
    assert stored.next_check_at <= after + timedelta(seconds=1200)


def test_an_orphan_whose_look_breaks_is_counted_and_the_sweep_goes_on(gateways: Any) -> None:
    Gateway.objects.filter(code="gerencianet").update(timeout_ms=120_000)
    broken = orphan("gerencianet", charge_params="{}", next_check_at=timezone.now())  # no payer
    unknown = [orphan("mercadopago", next_check_at=timezone.now()) for _ in range(2)]
    before = timezone.now()

    assert orphans_withdraw() == {"error": 1, "later": 2}

    after = timezone.now()
    stored = OrphanCharge.objects.get(pk=broken.pk)
    assert stored.status == "open"  # looked at again once its claim lapses:
    # as long as its calls can last: 3 requests of a charge and 2 more, 120 s each, + 5 s.
    lease = timedelta(seconds=120 * (3 + 2) + 5)
    assert before + lease <= stored.claimed_until <= after + lease
    assert [o.checks for o in OrphanCharge.objects.filter(pk__in=[o.pk for o in unknown])] == [1, 1]


def test_a_sweep_s_copy_of_an_orphan_resolved_meanwhile_leaves_it_alone(gateways: Any) -> None:
    stale = orphan("mercadopago", next_check_at=timezone.now())  # read by a sweep: open
    OrphanCharge.objects.filter(pk=stale.pk).update(status="withdrawn")  # another sweep's doing

    assert orphan_resolve(stale) == "claimed"

    stored = OrphanCharge.objects.get(pk=stale.pk)
    assert (stored.status, stored.checks, stored.claimed_until) == ("withdrawn", 0, None)


def test_an_orphan_unresolved_too_long_is_given_up_with_an_alert(
    gateways: Any, settings: LazySettings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.PAYWAVE_ORPHAN_GIVE_UP_SECONDS = 0
    stale = orphan("mercadopago", reference="mp-77")
    OrphanCharge.objects.filter(pk=stale.pk).update(reference="")  # still nothing to ask with
    stale.refresh_from_db()

    assert orphan_resolve(stale) == "given_up"

    stored = OrphanCharge.objects.get(pk=stale.pk)
    assert stored.status == "given_up"
    assert stored.last_error == "still unresolved: GatewayError: nothing to look the charge up by"
    [alert] = alerts(caplog, "orphan_unresolved")
    assert (alert.payment_id, alert.gateway) == (str(stale.payment_id), "mercadopago")
    assert str(stale.payment_id) in alert.getMessage()
    assert "reference unknown" in alert.getMessage()


def test_an_orphan_at_a_gateway_no_longer_configured_is_given_up(
    gateways: Any, caplog: pytest.LogCaptureFixture
) -> None:
    gone = orphan("old-gateway", reference="og-1")
    before = timezone.now()

    assert orphan_resolve(gone) == "given_up"

    stored = OrphanCharge.objects.get(pk=gone.pk)
    assert (stored.status, stored.last_error) == (
        "given_up", "gateway old-gateway is no longer configured",
    )  # fmt: skip
    assert stored.updated_at >= before
    [alert] = alerts(caplog, "orphan_unresolved")
    assert (alert.payment_id, alert.gateway) == (str(gone.payment_id), "old-gateway")
    assert "(reference og-1)" in alert.getMessage()


def test_a_paid_orphan_without_its_amount_is_given_to_a_person(
    gateways: Any, caplog: pytest.LogCaptureFixture
) -> None:
    refunding = orphan("mercadopago", reference="mp-9", status="refunding")

    assert orphan_resolve(refunding) == "given_up"

    stored = OrphanCharge.objects.get(pk=refunding.pk)
    assert stored.last_error == "paid, but the gateway did not say how much"
    assert len(alerts(caplog, "orphan_unresolved")) == 1
