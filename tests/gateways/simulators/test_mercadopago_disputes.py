"""Mercado Pago disputes in the simulator: chargebacks through the real SDK, mediations on
the payment, opened and closed through the control API, and their notifications."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import mercadopago
import pytest
from mercadopago.webhook import InvalidWebhookSignatureError, WebhookSignatureValidator

from gateways.simulators import SimulatorConfig, SimulatorServer
from tests.gateways.simulators.conftest import CallbackReceiver, mp_options, pix_payment

WEBHOOK_SECRET = "mp-test-secret"
MP_AUTH = {"Authorization": "Bearer TEST-token"}


def paid_payment(
    sdk: mercadopago.SDK, control: httpx.Client, reference: str = "pw_mp", amount: float = 10.5
) -> dict[str, Any]:
    created = sdk.payment().create(pix_payment(reference, amount), mp_options(f"key-{reference}"))
    assert created["status"] == 201, created
    paid = control.post(f"/pix/{created['response']['id']}/pay", params={"gateway": "mercadopago"})
    assert paid.status_code == 200, paid.text
    return paid.json()["charge"]


def open_dispute(control: httpx.Client, reference: str = "pw_mp", **body: Any) -> dict[str, Any]:
    answer = control.post("/disputes", json={"reference": reference, **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


def close(control: httpx.Client, dispute_id: str, outcome: str) -> httpx.Response:
    return control.post(f"/disputes/{dispute_id}/close", json={"outcome": outcome})


def payment_now(sdk: mercadopago.SDK, payment_id: int) -> dict[str, Any]:
    answer = sdk.payment().get(payment_id, mp_options())
    assert answer["status"] == 200, answer
    return answer["response"]


def capture_callbacks(control: httpx.Client, receiver: CallbackReceiver) -> None:
    target = {"url": receiver.url + "/cb/mp", "secret": WEBHOOK_SECRET}
    assert control.put("/callbacks/mercadopago", json=target).status_code == 200


def assert_signed_over(notification: Any, data_id: str) -> None:
    """What the SDK's validator (and PayWave's adapter) checks: the query's data.id."""
    assert notification.query["data.id"] == [data_id]
    WebhookSignatureValidator.validate(
        notification.headers["x-signature"],
        notification.headers["x-request-id"],
        data_id,
        WEBHOOK_SECRET,
        tolerance_seconds=300,
    )
    with pytest.raises(InvalidWebhookSignatureError):
        WebhookSignatureValidator.validate(
            notification.headers["x-signature"],
            notification.headers["x-request-id"],
            "999",
            WEBHOOK_SECRET,
        )


# Chargebacks.


def test_a_chargeback_opens_on_the_paid_payment_and_the_sdk_reads_it(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    payment = paid_payment(mp_sdk, control)
    before = datetime.now(UTC)

    opened = open_dispute(control, amount=500, reason="fraudulent")

    chargeback = opened["dispute"]
    assert (opened["gateway"], opened["charge"]) == ("mercadopago", str(payment["id"]))
    assert opened["id"] == chargeback["id"]
    assert isinstance(chargeback["id"], str)
    assert chargeback["id"].isdigit()
    assert chargeback["payments"] == [payment["id"]]
    assert (chargeback["currency"], chargeback["amount"], chargeback["reason"]) == (
        "BRL",
        5.0,
        "fraudulent",
    )
    assert chargeback["coverage_applied"] is False
    assert chargeback["coverage_elegible"] is True
    assert chargeback["documentation_required"] is True
    assert (chargeback["documentation_status"], chargeback["documentation"]) == ("pending", [])
    assert chargeback["live_mode"] is False
    created = datetime.fromisoformat(chargeback["date_created"])
    assert before - timedelta(seconds=1) < created < datetime.now(UTC) + timedelta(seconds=1)
    deadline = datetime.fromisoformat(chargeback["date_documentation_deadline"])
    assert deadline - created == timedelta(days=10)
    got = mp_sdk.chargeback().get(chargeback["id"], mp_options())
    assert (got["status"], got["response"]) == (200, chargeback)
    found = mp_sdk.chargeback().search({"payment_id": payment["id"]}, mp_options())
    assert found["status"] == 200
    assert found["response"] == {
        "paging": {"total": 1, "limit": 30, "offset": 0},
        "results": [chargeback],
    }
    now = payment_now(mp_sdk, payment["id"])
    assert (now["status"], now["status_detail"]) == ("charged_back", "in_process")
    assert now["date_last_updated"] >= chargeback["date_created"]
    [record] = control.get("/charges", params={"gateway": "mercadopago"}).json()
    assert record["status"] == "charged_back"


def test_a_chargeback_defaults_to_what_is_left_of_the_payment(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    payment = paid_payment(mp_sdk, control)
    refunded = mp_sdk.refund().create(payment["id"], {"amount": 5.0}, mp_options("refund-1"))
    assert refunded["status"] == 201

    assert control.post("/disputes", json={"reference": "pw_mp", "amount": 551}).status_code == 400
    chargeback = open_dispute(control)["dispute"]

    assert chargeback["amount"] == 5.5


def test_opening_sends_mercado_pago_s_chargebacks_notification_signed_over_its_id(
    mp_sdk: mercadopago.SDK, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    capture_callbacks(control, receiver)
    payment = paid_payment(mp_sdk, control)
    receiver.requests.clear()

    opened = open_dispute(control)

    assert opened["callback"]["delivered"] is True
    [notification] = receiver.requests
    body = notification.json()
    chargeback_id = opened["id"]
    assert notification.path == "/cb/mp"
    assert notification.query == {"data.id": [chargeback_id], "type": ["topic_chargebacks_wh"]}
    assert body["actions"] == ["created"]
    assert (body["type"], body["api_version"], body["live_mode"]) == (
        "topic_chargebacks_wh",
        "v1",
        False,
    )
    assert body["data"] == {
        "id": chargeback_id,
        "payment_id": payment["id"],
        "checkout": "API",
        "site_id": "MLB",
        "date_updated": opened["dispute"]["date_last_updated"],
    }
    assert isinstance(body["id"], int)
    assert isinstance(body["application_id"], int)
    assert isinstance(body["user_id"], int)
    assert body["version"] == 1
    assert_signed_over(notification, chargeback_id)


@pytest.mark.parametrize(
    ("outcome", "detail", "covered", "documentation"),
    [("won", "reimbursed", True, "valid"), ("lost", "settled", False, "invalid")],
)
def test_closing_a_chargeback_decides_it_and_notifies(
    mp_sdk: mercadopago.SDK,
    control: httpx.Client,
    receiver: CallbackReceiver,
    outcome: str,
    detail: str,
    covered: bool,
    documentation: str,
) -> None:
    capture_callbacks(control, receiver)
    payment = paid_payment(mp_sdk, control)
    opened = open_dispute(control)

    closed = close(control, opened["id"], outcome)

    assert closed.status_code == 200, closed.text
    chargeback = mp_sdk.chargeback().get(opened["id"], mp_options())["response"]
    assert closed.json()["dispute"] == chargeback
    assert (chargeback["coverage_applied"], chargeback["documentation_status"]) == (
        covered,
        documentation,
    )
    assert chargeback["date_last_updated"] >= opened["dispute"]["date_last_updated"]
    now = payment_now(mp_sdk, payment["id"])
    assert (now["status"], now["status_detail"]) == ("charged_back", detail)
    assert now["transaction_amount_refunded"] == 0
    _, created, changed = receiver.requests  # payment.updated, then the chargeback's two
    assert changed.json()["actions"] == ["changed_case_status"]
    assert changed.json()["version"] == 2
    assert changed.json()["id"] != created.json()["id"]  # PayWave dedupes by this id
    assert changed.json()["data"]["date_updated"] == chargeback["date_last_updated"]
    assert_signed_over(changed, opened["id"])


def test_closing_twice_is_409_and_an_unknown_dispute_404(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    paid_payment(mp_sdk, control)
    opened = open_dispute(control)
    assert close(control, opened["id"], "won").status_code == 200

    assert close(control, opened["id"], "lost").status_code == 409
    assert close(control, "233300000000999999", "won").status_code == 404


def test_a_charged_back_payment_takes_no_second_dispute_and_no_refund(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    payment = paid_payment(mp_sdk, control)
    open_dispute(control)

    again = control.post("/disputes", json={"reference": "pw_mp", "kind": "mediation"})
    refund = mp_sdk.refund().create(payment["id"], {"amount": 1.0}, mp_options("refund-1"))

    assert again.status_code == 409
    assert refund["status"] == 400
    assert refund["response"]["error"] == "bad_request"
    assert "charged_back" in refund["response"]["cause"][0]["description"]


def test_only_a_paid_payment_can_be_disputed(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    created = mp_sdk.payment().create(pix_payment("pw_unpaid"), mp_options("key-unpaid"))
    assert created["status"] == 201

    unpaid = control.post("/disputes", json={"reference": "pw_unpaid"})
    unknown = control.post("/disputes", json={"reference": "pw_nobody"})

    assert (unpaid.status_code, unknown.status_code) == (404, 404)


def test_a_kind_mercado_pago_has_not_is_400(mp_sdk: mercadopago.SDK, control: httpx.Client) -> None:
    paid_payment(mp_sdk, control)

    answer = control.post("/disputes", json={"reference": "pw_mp", "kind": "pix_med"})

    assert answer.status_code == 400


def test_an_unknown_chargeback_is_404_in_mercado_pago_shape(mp_sdk: mercadopago.SDK) -> None:
    answer = mp_sdk.chargeback().get("233300000000999999", mp_options())

    assert answer["status"] == 404
    assert (answer["response"]["error"], answer["response"]["status"]) == ("not_found", 404)
    assert answer["response"]["cause"][0]["code"] == 2000


def test_chargeback_search_filters_by_payment_and_pages(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    first = paid_payment(mp_sdk, control, "pw_1")
    paid_payment(mp_sdk, control, "pw_2")
    ours = open_dispute(control, "pw_1")["dispute"]
    theirs = open_dispute(control, "pw_2")["dispute"]

    by_payment = mp_sdk.chargeback().search({"payment_id": first["id"]}, mp_options())
    second_page = mp_sdk.chargeback().search({"limit": 1, "offset": 1}, mp_options())

    assert by_payment["response"]["results"] == [ours]
    assert second_page["response"] == {
        "paging": {"total": 2, "limit": 1, "offset": 1},
        "results": [theirs],
    }


def test_a_refund_settling_during_a_chargeback_leaves_the_payment_charged_back(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    payment = paid_payment(mp_sdk, control)
    control.put("/faults/mercadopago", json={"refund_status": "pending"})
    refund = mp_sdk.refund().create(payment["id"], {"amount": 2.0}, mp_options("refund-1"))
    assert refund["response"]["status"] == "in_process"
    opened = open_dispute(control)
    control.delete("/faults/mercadopago")

    now = payment_now(mp_sdk, payment["id"])  # the read settles the refund

    assert (now["status"], now["status_detail"]) == ("charged_back", "in_process")
    assert now["transaction_amount_refunded"] == 2.0
    assert opened["dispute"]["amount"] == 8.5


# Mediations.


def test_a_mediation_puts_the_payment_in_mediation_and_notifies_as_a_payment_update(
    mp_sdk: mercadopago.SDK, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    capture_callbacks(control, receiver)
    payment = paid_payment(mp_sdk, control)
    receiver.requests.clear()

    opened = open_dispute(control, kind="mediation", reason="not_received")

    assert opened["id"] == f"mediation-{payment['id']}"
    mediation = opened["dispute"]
    assert (mediation["type"], mediation["status"], mediation["resource_id"]) == (
        "mediations",
        "opened",
        payment["id"],
    )
    assert (mediation["amount"], mediation["reason_id"]) == (10.5, "not_received")
    now = payment_now(mp_sdk, payment["id"])
    assert (now["status"], now["status_detail"]) == ("in_mediation", "accredited")
    search = mp_sdk.chargeback().search({"payment_id": payment["id"]}, mp_options())
    assert search["response"]["results"] == []
    assert control.get("/charges").json()[0]["status"] == "in_mediation"
    [notification] = receiver.requests
    assert notification.json()["action"] == "payment.updated"
    assert notification.json()["data"] == {"id": str(payment["id"])}
    assert notification.query["type"] == ["payment"]
    assert_signed_over(notification, str(payment["id"]))
    refund = mp_sdk.refund().create(payment["id"], {}, mp_options("refund-1"))
    assert refund["status"] == 400


def test_a_mediation_won_gives_the_payment_back_approved(
    mp_sdk: mercadopago.SDK, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    capture_callbacks(control, receiver)
    payment = paid_payment(mp_sdk, control)
    opened = open_dispute(control, kind="mediation")

    closed = close(control, opened["id"], "won")

    assert closed.status_code == 200
    assert closed.json()["dispute"]["status"] == "closed"
    assert closed.json()["dispute"]["resolution"]["benefited"] == ["respondent"]
    now = payment_now(mp_sdk, payment["id"])
    assert (now["status"], now["status_detail"]) == ("approved", "accredited")
    assert now["transaction_amount_refunded"] == 0
    first, second = (r.json()["id"] for r in receiver.requests[1:])
    assert first != second
    assert receiver.requests[-1].json()["data"] == {"id": str(payment["id"])}
    # The money is the merchant's again: it can be refunded, but not mediated again.
    assert mp_sdk.refund().create(payment["id"], {}, mp_options("refund-1"))["status"] == 201
    assert close(control, opened["id"], "lost").status_code == 409


def test_a_mediation_lost_refunds_the_disputed_amount(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    payment = paid_payment(mp_sdk, control)
    mp_sdk.refund().create(payment["id"], {"amount": 0.5}, mp_options("refund-1"))
    opened = open_dispute(control, kind="mediation")
    assert opened["dispute"]["amount"] == 10.0

    assert close(control, opened["id"], "lost").status_code == 200

    now = payment_now(mp_sdk, payment["id"])
    assert (now["status"], now["status_detail"]) == ("refunded", "bpp_refunded")
    assert now["transaction_amount_refunded"] == 10.5
    assert len(now["refunds"]) == 1  # the merchant's own; Mercado Pago's is not one of them
    [record] = control.get("/charges").json()
    assert (record["status"], record["amount_refunded"]) == ("refunded", 1050)


# Polling: payment search by status and by a date range.


def test_payment_search_by_status_and_last_update_finds_disputed_payments(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    early = paid_payment(mp_sdk, control, "pw_early")
    open_dispute(control, "pw_early")
    time.sleep(0.01)
    since = datetime.now(UTC)
    late = paid_payment(mp_sdk, control, "pw_late")
    open_dispute(control, "pw_late")
    window = {"range": "date_last_updated", "end_date": "NOW"}

    def ids(**filters: Any) -> list[int]:
        answer = mp_sdk.payment().search({**window, **filters}, mp_options())
        assert answer["status"] == 200, answer
        return [payment["id"] for payment in answer["response"]["results"]]

    assert ids(status="charged_back", begin_date=since.isoformat()) == [late["id"]]
    assert ids(status="charged_back", begin_date="NOW-1DAYS") == [early["id"], late["id"]]
    assert ids(status="approved", begin_date="NOW-1DAYS") == []
    upto = (since - timedelta(milliseconds=1)).isoformat(timespec="milliseconds")
    assert ids(status="charged_back", begin_date="NOW-1DAYS", end_date=upto) == [early["id"]]


@pytest.mark.parametrize(
    "query",
    [
        {"range": "date_of_birth", "begin_date": "NOW-1DAYS"},
        {"range": "date_last_updated", "begin_date": "yesterday"},
        {"range": "date_last_updated", "begin_date": "2024-01-01T00:00:00"},  # no offset
        {"limit": "many"},
        {"offset": "-1"},
    ],
)
def test_payment_search_refuses_parameters_it_cannot_read(
    sim: SimulatorServer, query: dict[str, str]
) -> None:
    answer = httpx.get(sim.base_url + "/mercadopago/v1/payments/search", params=query,
                       headers=MP_AUTH)  # fmt: skip

    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"


def test_payment_search_pages_with_limit_and_offset(
    mp_sdk: mercadopago.SDK, control: httpx.Client
) -> None:
    payments = [paid_payment(mp_sdk, control, f"pw_{n}") for n in range(3)]

    page = mp_sdk.payment().search({"limit": 2, "offset": 2}, mp_options())["response"]

    assert page["paging"] == {"total": 3, "limit": 2, "offset": 2}
    assert [p["id"] for p in page["results"]] == [payments[2]["id"]]


# The state file.


@contextmanager
def simulator(state_file: Path) -> Iterator[httpx.Client]:
    config = SimulatorConfig(hang_ms=200, state_file=str(state_file))
    with (
        SimulatorServer("127.0.0.1", 0, config=config) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        yield http


def test_disputes_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "sim.sqlite3"
    with simulator(state) as http:
        created = http.post("/mercadopago/v1/payments", headers=MP_AUTH, json=pix_payment("pw_s"))
        payment_id = created.json()["id"]
        http.post(f"/_sim/pix/{payment_id}/pay", params={"gateway": "mercadopago"})
        opened = http.post("/_sim/disputes", json={"reference": "pw_s"}).json()
    chargeback_path = f"/mercadopago/v1/chargebacks/{opened['id']}"

    with simulator(state) as http:
        assert http.get(chargeback_path, headers=MP_AUTH).json() == opened["dispute"]
        closed = http.post(f"/_sim/disputes/{opened['id']}/close", json={"outcome": "lost"})
        assert closed.status_code == 200

    with simulator(state) as http:
        payment = http.get(f"/mercadopago/v1/payments/{payment_id}", headers=MP_AUTH).json()
        assert (payment["status"], payment["status_detail"]) == ("charged_back", "settled")
        chargeback = http.get(chargeback_path, headers=MP_AUTH).json()
        assert chargeback["documentation_status"] == "invalid"
