"""Bad input to the payments API: a 4xx in the error shape, and nothing stored.

Each case of the table is one request to `POST /api/v1/payments` that the API
must refuse (API.md "Conventions" and "Payments"); the tests after the table
check that inputs on the right side of each boundary are accepted, so the
refusals are about the bad value and not about the request around it.
"""

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings

from payments.models import Payment, PaymentEvent
from paywave.models import IdempotencyKey
from tests.factories import PaymentFactory
from tests.helpers import card_body, pix_body

pytestmark = pytest.mark.django_db

URL = "/api/v1/payments"
CARD_NUMBER = "4242424242424242"  # Luhn-valid Visa test number
ERROR_KEYS = {"type", "code", "message", "fields"}
INVALID = "invalid_request_error"


def assert_error(
    response: Any, status: int, *, error_type: str = INVALID, code: str | None = None
) -> dict[str, Any]:
    """The response is `status` with the documented error shape; returns the "error" object."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == ERROR_KEYS
    assert error["type"] == error_type
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["fields"], dict)
    for path, message in error["fields"].items():
        assert isinstance(path, str)
        assert path
        assert isinstance(message, str)
        assert message
    if code is not None:
        assert error["code"] == code
    return error


def assert_nothing_stored() -> None:
    assert Payment.objects.count() == 0
    assert PaymentEvent.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0


def _with_payer(base: dict[str, Any], **payer: Any) -> dict[str, Any]:
    body = dict(base)
    body["payer"] = {**base["payer"], **payer}
    return body


def _without(base: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k not in names}


def _without_payer(base: dict[str, Any], *names: str) -> dict[str, Any]:
    body = dict(base)
    body["payer"] = {k: v for k, v in base["payer"].items() if k not in names}
    return body


@dataclass
class Bad:
    """One refused request: its body (dict/list/None -> JSON, bytes -> as is) and the answer."""

    body: Any
    fields: set[str]  # the exact set of field paths named in error.fields
    code: str = "invalid_request"
    status: int = 400
    headers: dict[str, str] = field(default_factory=lambda: {"HTTP_IDEMPOTENCY_KEY": "key-1"})


def _raw(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


NO_KEY: dict[str, str] = {}
MAX_AMOUNT = settings.PAYWAVE_MAX_AMOUNT

CASES = [
    # --- amount
    pytest.param(Bad(pix_body(amount=10.5), {"amount"}), id="amount-float"),
    pytest.param(Bad(pix_body(amount=1050.0), {"amount"}), id="amount-float-integral"),
    pytest.param(Bad(pix_body(amount="1050"), {"amount"}), id="amount-string"),
    pytest.param(Bad(pix_body(amount=True), {"amount"}), id="amount-bool"),
    pytest.param(Bad(pix_body(amount=None), {"amount"}), id="amount-null"),
    pytest.param(Bad(pix_body(amount=0), {"amount"}), id="amount-zero"),
    pytest.param(Bad(pix_body(amount=-100), {"amount"}), id="amount-negative"),
    pytest.param(Bad(pix_body(amount=MAX_AMOUNT + 1), {"amount"}), id="amount-above-max"),
    pytest.param(Bad(pix_body(amount=2**64), {"amount"}), id="amount-beyond-int64"),
    pytest.param(Bad(_without(pix_body(), "amount"), {"amount"}), id="amount-missing"),
    # --- currency
    pytest.param(Bad(card_body(currency="usd"), {"currency"}), id="currency-lowercase"),
    pytest.param(Bad(card_body(currency="XYZ"), {"currency"}), id="currency-unknown"),
    pytest.param(Bad(card_body(currency="JPY"), {"currency"}), id="currency-unsupported"),
    pytest.param(Bad(card_body(currency="US"), {"currency"}), id="currency-too-short"),
    pytest.param(Bad(_without(card_body(), "currency"), {"currency"}), id="currency-missing"),
    pytest.param(Bad(card_body(currency=840), {"currency"}), id="currency-number"),
    # --- method
    pytest.param(Bad(pix_body(method="boleto"), {"method"}), id="method-unknown"),
    pytest.param(Bad(pix_body(method="PIX"), {"method"}), id="method-uppercase"),
    pytest.param(Bad(_without(pix_body(), "method"), {"method"}), id="method-missing"),
    # --- PIX rules
    pytest.param(Bad(pix_body(currency="USD"), {"currency"}), id="pix-in-usd"),
    pytest.param(
        Bad(_without_payer(pix_body(), "tax_id"), {"payer.tax_id"}), id="pix-without-tax-id"
    ),
    pytest.param(
        Bad(_with_payer(pix_body(), tax_id="123.456.789-00"), {"payer.tax_id"}),
        id="pix-cpf-bad-check-digits",
    ),
    pytest.param(
        Bad(_with_payer(pix_body(), tax_id="111.111.111-11"), {"payer.tax_id"}),
        id="pix-cpf-repeated-digits",
    ),
    pytest.param(
        Bad(_with_payer(pix_body(), tax_id="11.222.333/0001-80"), {"payer.tax_id"}),
        id="pix-cnpj-bad-check-digits",
    ),
    pytest.param(
        Bad(_with_payer(pix_body(), tax_id="12.ABC.345/01DE-36"), {"payer.tax_id"}),
        id="pix-alphanumeric-cnpj-bad-check-digits",
    ),
    pytest.param(
        Bad(
            _with_payer(
                pix_body(),
                tax_id="\uff15\uff12\uff19.\uff19\uff18\uff12.\uff12\uff14\uff17-\uff12\uff15",
            ),
            {"payer.tax_id"},
        ),
        id="pix-cpf-fullwidth-digits",
    ),
    pytest.param(
        Bad(
            _with_payer(
                pix_body(),
                tax_id="\u0665\u0662\u0669\u0669\u0668\u0662\u0662\u0664\u0667\u0662\u0665",
            ),
            {"payer.tax_id"},
        ),
        id="pix-cpf-arabic-indic-digits",
    ),
    pytest.param(
        Bad(_with_payer(pix_body(), tax_id=12345678909), {"payer.tax_id"}),
        id="pix-tax-id-number",
    ),
    pytest.param(Bad(_without_payer(pix_body(), "email"), {"payer.email"}), id="pix-without-email"),
    pytest.param(
        Bad(pix_body(card={"token": "pm_card_visa"}), {"card"}), id="pix-with-card-object"
    ),
    # --- card rules
    pytest.param(Bad(_without(card_body(), "card"), {"card"}), id="card-without-card"),
    pytest.param(Bad(card_body(pix={"expires_in": 3600}), {"pix"}), id="card-with-pix-object"),
    pytest.param(Bad(card_body(card="pm_card_visa"), {"card"}), id="card-not-an-object"),
    pytest.param(Bad(card_body(card={}), {"card.token"}), id="card-token-missing"),
    pytest.param(
        Bad(card_body(card={"token": "pm card visa!"}), {"card.token"}), id="card-token-malformed"
    ),
    # --- raw card numbers, wherever they hide
    pytest.param(
        Bad(card_body(card={"token": CARD_NUMBER}), {"card.token"}, code="card_number_forbidden"),
        id="card-number-in-card-token",
    ),
    pytest.param(
        Bad(
            card_body(card={"token": "4242 4242 4242 4242"}),
            {"card.token"},
            code="card_number_forbidden",
        ),
        id="card-number-with-spaces-in-card-token",
    ),
    pytest.param(
        Bad(card_body(card={"number": CARD_NUMBER, "exp": "12/30"}), {"card.exp", "card.number"}),
        id="card-number-in-card-number-field",
    ),
    pytest.param(
        Bad(
            card_body(description=f"card {CARD_NUMBER}"),
            {"description"},
            code="card_number_forbidden",
        ),
        id="card-number-in-description",
    ),
    pytest.param(
        Bad(
            card_body(metadata={"note": "4242-4242-4242-4242"}),
            {"metadata.note"},
            code="card_number_forbidden",
        ),
        id="card-number-in-metadata-value",
    ),
    pytest.param(
        Bad(
            _with_payer(card_body(), name=f"John {CARD_NUMBER}"),
            {"payer.name"},
            code="card_number_forbidden",
        ),
        id="card-number-in-payer-name",
    ),
    # --- payer
    pytest.param(
        Bad(_with_payer(pix_body(), email="not-an-email"), {"payer.email"}), id="email-bad"
    ),
    pytest.param(Bad(_with_payer(pix_body(), country="XX"), {"payer.country"}), id="country-XX"),
    pytest.param(Bad(_with_payer(pix_body(), country="br"), {"payer.country"}), id="country-br"),
    pytest.param(Bad(_with_payer(pix_body(), country="BRA"), {"payer.country"}), id="country-BRA"),
    pytest.param(Bad(_with_payer(pix_body(), name=""), {"payer.name"}), id="payer-name-empty"),
    pytest.param(
        Bad(_with_payer(pix_body(), name="x" * 141), {"payer.name"}), id="payer-name-too-long"
    ),
    pytest.param(Bad(_without(pix_body(), "payer"), {"payer"}), id="payer-missing"),
    pytest.param(Bad(pix_body(payer="Ana Souza"), {"payer"}), id="payer-not-an-object"),
    pytest.param(
        Bad(_with_payer(pix_body(), phone="+55 11 99999-9999"), {"payer.phone"}),
        id="payer-unknown-field",
    ),
    # --- description and metadata
    pytest.param(Bad(pix_body(description="d" * 256), {"description"}), id="description-256"),
    pytest.param(Bad(pix_body(description=42), {"description"}), id="description-number"),
    pytest.param(
        Bad(pix_body(metadata={f"k{i}": "v" for i in range(51)}), {"metadata"}),
        id="metadata-51-keys",
    ),
    pytest.param(Bad(pix_body(metadata={"n": 1}), {"metadata.n"}), id="metadata-number-value"),
    pytest.param(Bad(pix_body(metadata={"n": None}), {"metadata.n"}), id="metadata-null-value"),
    pytest.param(
        Bad(pix_body(metadata={"n": {"deep": "x"}}), {"metadata.n"}), id="metadata-nested-object"
    ),
    pytest.param(Bad(pix_body(metadata={"n": ["x"]}), {"metadata.n"}), id="metadata-list-value"),
    pytest.param(
        Bad(pix_body(metadata={"k" * 41: "v"}), {"metadata." + "k" * 41}), id="metadata-key-41"
    ),
    pytest.param(Bad(pix_body(metadata={"n": "v" * 501}), {"metadata.n"}), id="metadata-value-501"),
    pytest.param(Bad(pix_body(metadata=["a", "b"]), {"metadata"}), id="metadata-list"),
    pytest.param(Bad(pix_body(metadata="order=A-1"), {"metadata"}), id="metadata-string"),
    # --- wallet_id
    pytest.param(Bad(pix_body(wallet_id="wallet-1"), {"wallet_id"}), id="wallet-id-not-uuid"),
    pytest.param(
        Bad(pix_body(wallet_id=12), {"wallet_id"}),
        id="wallet-id-number",
    ),
    pytest.param(
        Bad(pix_body(wallet_id="6f1c2b0e-8a3d-4c5e-9f7a-1b2c3d4e5f60"), {"wallet_id"}),
        id="wallet-id-of-no-wallet",
    ),
    # --- pix options
    pytest.param(
        Bad(pix_body(pix={"expires_in": 59}), {"pix.expires_in"}), id="pix-expires-in-too-small"
    ),
    pytest.param(
        Bad(pix_body(pix={"expires_in": 7 * 86400 + 1}), {"pix.expires_in"}),
        id="pix-expires-in-too-big",
    ),
    pytest.param(
        Bad(pix_body(pix={"expires_in": "3600"}), {"pix.expires_in"}),
        id="pix-expires-in-string",
    ),
    pytest.param(
        Bad(pix_body(pix={"expires_in": 3600.5}), {"pix.expires_in"}),
        id="pix-expires-in-float",
    ),
    pytest.param(Bad(pix_body(pix={"expiry": 3600}), {"pix.expiry"}), id="pix-unknown-field"),
    # --- the document itself
    pytest.param(Bad(pix_body(status="succeeded"), {"status"}), id="unknown-top-level-field"),
    pytest.param(Bad([pix_body()], set()), id="top-level-array"),
    pytest.param(Bad("payment", set()), id="top-level-string"),
    pytest.param(Bad(None, set()), id="top-level-null"),
    pytest.param(Bad(b"", {"amount", "currency", "method", "payer"}), id="empty-body"),
    pytest.param(Bad({}, {"amount", "currency", "method", "payer"}), id="empty-object"),
    # --- Idempotency-Key header
    pytest.param(
        Bad(pix_body(), {"Idempotency-Key"}, code="idempotency_key_required", headers=NO_KEY),
        id="idempotency-key-missing",
    ),
    pytest.param(
        Bad(
            pix_body(),
            {"Idempotency-Key"},
            code="idempotency_key_required",
            headers={"HTTP_IDEMPOTENCY_KEY": ""},
        ),
        id="idempotency-key-empty",
    ),
    pytest.param(
        Bad(
            pix_body(),
            {"Idempotency-Key"},
            code="idempotency_key_invalid",
            headers={"HTTP_IDEMPOTENCY_KEY": "k" * 256},
        ),
        id="idempotency-key-256-chars",
    ),
    pytest.param(
        Bad(
            pix_body(),
            {"Idempotency-Key"},
            code="idempotency_key_invalid",
            headers={"HTTP_IDEMPOTENCY_KEY": "key\x01one"},
        ),
        id="idempotency-key-control-character",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_create_input_is_refused_and_nothing_is_stored(api: Any, case: Bad) -> None:
    response = api.generic(
        "POST", URL, data=_raw(case.body), content_type="application/json", **case.headers
    )

    error = assert_error(response, case.status, code=case.code)
    assert set(error["fields"]) == case.fields
    assert_nothing_stored()


def test_the_table_has_the_cases_asked_for() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


def test_card_number_field_is_refused_with_the_card_number_message(api: Any) -> None:
    """A client that sends the card itself is told why, not just "unknown field"."""
    response = api.generic(
        "POST",
        URL,
        data=_raw(card_body(card={"number": CARD_NUMBER})),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="key-1",
    )

    error = assert_error(response, 400)
    assert set(error["fields"]) == {"card.number"}
    assert "token" in error["fields"]["card.number"].lower()
    assert CARD_NUMBER not in response.content.decode()
    assert_nothing_stored()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(card_body(card={"token": CARD_NUMBER}), id="card-token"),
        pytest.param(card_body(description=f"card {CARD_NUMBER}"), id="description"),
        pytest.param(card_body(metadata={"note": CARD_NUMBER}), id="metadata"),
        pytest.param(_with_payer(card_body(), name=f"John {CARD_NUMBER}"), id="payer-name"),
        pytest.param(
            card_body(metadata={CARD_NUMBER: "card"}),
            id="metadata-key",
        ),
    ],
)
def test_refused_card_number_is_not_echoed_back(api: Any, body: dict[str, Any]) -> None:
    response = api.generic(
        "POST", URL, data=_raw(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY="k"
    )

    assert_error(response, 400, code="card_number_forbidden")
    assert CARD_NUMBER not in response.content.decode()


def test_refused_request_does_not_use_up_its_idempotency_key(api: Any) -> None:
    bad = api.generic(
        "POST",
        URL,
        data=_raw(pix_body(amount=0)),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="key-1",
    )
    assert_error(bad, 400)

    good = api.post(URL, pix_body(), format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert good.status_code == 202, good.content
    assert "Idempotent-Replayed" not in good


# --- The other side of each boundary: accepted --------------------------------


def _post_ok(api: Any, body: dict[str, Any], key: str = "key-ok", **extra: Any) -> dict[str, Any]:
    response = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key, **extra)
    assert response.status_code == 202, response.content
    return response.json()


@pytest.mark.parametrize(
    ("tax_id", "stored", "last4"),
    [
        pytest.param("529.982.247-25", "52998224725", "4725", id="cpf-with-punctuation"),
        pytest.param("52998224725", "52998224725", "4725", id="cpf-digits"),
        pytest.param("11.222.333/0001-81", "11222333000181", "0181", id="cnpj-numeric"),
        pytest.param("12.ABC.345/01DE-35", "12ABC34501DE35", "DE35", id="cnpj-alphanumeric"),
        pytest.param("12.abc.345/01de-35", "12ABC34501DE35", "DE35", id="cnpj-alnum-lowercase"),
    ],
)
def test_valid_tax_ids_are_accepted(api: Any, tax_id: str, stored: str, last4: str) -> None:
    document = _post_ok(api, _with_payer(pix_body(), tax_id=tax_id))

    assert document["payer"]["tax_id_last4"] == last4
    payment = Payment.objects.get(pk=document["id"])
    assert payment.payer_tax_id == stored
    assert PaymentEvent.objects.filter(payment=payment).count() == 1
    assert IdempotencyKey.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(pix_body(amount=1), id="amount-1"),
        pytest.param(pix_body(amount=MAX_AMOUNT), id="amount-max"),
        pytest.param(pix_body(description="d" * 255), id="description-255"),
        pytest.param(pix_body(description=""), id="description-empty"),
        pytest.param(pix_body(metadata={f"k{i}": "v" for i in range(50)}), id="metadata-50-keys"),
        pytest.param(pix_body(metadata={"k" * 40: "v" * 500}), id="metadata-key-40-value-500"),
        pytest.param(pix_body(metadata={}), id="metadata-empty"),
        pytest.param(pix_body(pix={"expires_in": 60}), id="pix-expires-in-60"),
        pytest.param(pix_body(pix={"expires_in": 7 * 86400}), id="pix-expires-in-7-days"),
        pytest.param(pix_body(wallet_id=None), id="wallet-id-null"),
        pytest.param(card_body(currency="CLP"), id="card-in-clp"),
        pytest.param(
            _with_payer(card_body(), name="Call +55 11 4004-0001 ext 1234"), id="phone-in-name"
        ),
    ],
)
def test_inputs_on_the_edge_are_accepted(api: Any, body: dict[str, Any]) -> None:
    document = _post_ok(api, body)

    assert Payment.objects.filter(pk=document["id"]).exists()
    assert document["amount"] == body["amount"]


def test_idempotency_key_of_255_characters_is_accepted(api: Any) -> None:
    _post_ok(api, pix_body(), key="k" * 255)

    assert IdempotencyKey.objects.get().key == "k" * 255


# --- PATCH /api/v1/payments/{id} -----------------------------------------------


def _snapshot(payment: Payment) -> dict[str, Any]:
    payment.refresh_from_db()
    return {
        "amount": payment.amount,
        "currency": payment.currency,
        "status": payment.status,
        "method": payment.method,
        "description": payment.description,
        "metadata": payment.metadata,
        "version": payment.version,
        "updated_at": payment.updated_at,
        "payer_name": payment.payer_name,
        "wallet_id": payment.wallet_id,
    }


@pytest.fixture
def payment(wallet_app: Any) -> Payment:
    return PaymentFactory(client=wallet_app, description="Top-up", metadata={"order": "A-1"})


PATCH_CASES = [
    pytest.param({"amount": 1}, {"amount"}, id="amount"),
    pytest.param({"status": "succeeded"}, {"status"}, id="status"),
    pytest.param({"currency": "USD"}, {"currency"}, id="currency"),
    pytest.param({"method": "card"}, {"method"}, id="method"),
    pytest.param({"payer": {"name": "Eve"}}, {"payer"}, id="payer"),
    pytest.param({"wallet_id": None}, {"wallet_id"}, id="wallet-id"),
    pytest.param({"id": "6f1c2b0e-8a3d-4c5e-9f7a-1b2c3d4e5f60"}, {"id"}, id="id"),
    pytest.param({"description": "New", "amount": 1}, {"amount"}, id="description-and-amount"),
    pytest.param({"metadata": "order=A-2"}, {"metadata"}, id="metadata-string"),
    pytest.param({"metadata": ["order", "A-2"]}, {"metadata"}, id="metadata-list"),
    pytest.param({"metadata": None}, {"metadata"}, id="metadata-null"),
    pytest.param({"metadata": {"order": 2}}, {"metadata.order"}, id="metadata-number-value"),
    pytest.param({"metadata": {"o": {"x": "y"}}}, {"metadata.o"}, id="metadata-nested"),
    pytest.param(
        {"metadata": {f"k{i}": "v" for i in range(51)}}, {"metadata"}, id="metadata-51-keys"
    ),
    pytest.param({"description": "d" * 256}, {"description"}, id="description-256"),
    pytest.param({"description": None}, {"description"}, id="description-null"),
]


@pytest.mark.parametrize(("body", "fields"), PATCH_CASES)
def test_bad_patch_is_refused_and_payment_is_unchanged(
    api: Any, payment: Payment, body: dict[str, Any], fields: set[str]
) -> None:
    before = _snapshot(payment)
    document_before = api.get(f"{URL}/{payment.id}").json()

    response = api.patch(f"{URL}/{payment.id}", body, format="json")

    error = assert_error(response, 400, code="invalid_request")
    assert set(error["fields"]) == fields
    assert _snapshot(payment) == before
    assert api.get(f"{URL}/{payment.id}").json() == document_before


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        pytest.param({"metadata": {"order": "A-2"}}, {"description"}, id="description-missing"),
        pytest.param({"description": "x", "metadata": {}, "amount": 5}, {"amount"}, id="amount"),
    ],
)
def test_bad_put_is_refused_and_payment_is_unchanged(
    api: Any, payment: Payment, body: dict[str, Any], fields: set[str]
) -> None:
    before = _snapshot(payment)

    response = api.put(f"{URL}/{payment.id}", body, format="json")

    error = assert_error(response, 400, code="invalid_request")
    assert set(error["fields"]) == fields
    assert _snapshot(payment) == before


def test_patch_with_card_number_is_refused(api: Any, payment: Payment) -> None:
    before = _snapshot(payment)

    response = api.patch(f"{URL}/{payment.id}", {"metadata": {"pan": CARD_NUMBER}}, format="json")

    error = assert_error(response, 400, code="card_number_forbidden")
    assert set(error["fields"]) == {"metadata.pan"}
    assert _snapshot(payment) == before


def test_good_patch_changes_only_description_and_metadata(api: Any, payment: Payment) -> None:
    """The control for the PATCH cases: the same request without the bad field works."""
    before = _snapshot(payment)

    response = api.patch(
        f"{URL}/{payment.id}", {"description": "New", "metadata": {"o": "2"}}, format="json"
    )

    assert response.status_code == 200, response.content
    after = _snapshot(payment)
    assert (after["description"], after["metadata"]) == ("New", {"o": "2"})
    assert after["version"] == before["version"] + 1
    unchanged = ("amount", "currency", "status", "method", "payer_name", "wallet_id")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
