"""The simulators' small parts: BR Codes, amounts, Stripe's form keys, configuration."""

import base64
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest

from gateways.credentials import SANDBOX_VALUES
from gateways.pix.brcode import parse
from gateways.simulators import CallbackTarget, SimulatorConfig
from gateways.simulators._brcode import crc16, dynamic_brcode, qr_png_base64
from gateways.simulators._money import AmountError, major_number, major_string, minor_from_major
from gateways.simulators.app import Simulator
from gateways.simulators.callbacks import (
    efi_notification_url,
    paypal_signed_string,
    paypal_transmission_signature,
    with_query,
)
from gateways.simulators.config import (
    SANDBOX_GERENCIANET_CLIENT_ID,
    SANDBOX_GERENCIANET_CLIENT_SECRET,
    SANDBOX_PAYPAL_CLIENT_ID,
    SANDBOX_PAYPAL_CLIENT_SECRET,
    SANDBOX_WEBHOOK_SECRETS,
)
from gateways.simulators.stripe_wire import FormError, parse_form

BCB_EXAMPLE = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***6304"
)


def test_crc_matches_the_central_bank_manuals_example() -> None:
    assert crc16(BCB_EXAMPLE) == "1D3D"


@pytest.mark.parametrize("amount", [1, 99, 100, 1050, 123456, 10**12 - 1])
def test_dynamic_codes_parse_with_paywaves_parser(amount: int) -> None:
    code = dynamic_brcode(
        location="pix-sim.invalid/gerencianet/v2/" + "a" * 32,
        amount=amount,
        merchant_name="PAYWAVE SANDBOX",
        merchant_city="SAO PAULO",
    )

    parsed = parse(code)

    assert parsed.amount == amount
    assert parsed.url == "pix-sim.invalid/gerencianet/v2/" + "a" * 32
    assert parsed.txid is None  # "***"
    assert parsed.unique_use is True


def test_qr_image_is_a_png() -> None:
    assert base64.b64decode(qr_png_base64("000201")).startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    ("wire", "minor"),
    [(Decimal("10.5"), 1050), (Decimal("0.29"), 29), (10, 1000), ("123.45", 12345)],
)
def test_minor_units_are_exact(wire: object, minor: int) -> None:
    assert minor_from_major(wire) == minor


@pytest.mark.parametrize("wire", [Decimal("10.005"), "abc", None, True, 1.5, Decimal("NaN")])
def test_inexact_or_non_decimal_amounts_are_refused(wire: object) -> None:
    with pytest.raises(AmountError):
        minor_from_major(wire)


def test_major_unit_spellings() -> None:
    assert major_string(1050) == "10.50"
    assert major_string(5) == "0.05"
    assert major_number(29) == 0.29
    assert str(major_number(1050)) == "10.5"


def test_stripe_form_keys_nest() -> None:
    body = (
        "amount=100&metadata[payment_id]=pw_1&payment_method_types[0]=card"
        "&expand[]=payment_method&expand[]=latest_charge&a[b][c]=1"
    )
    assert parse_form(parse_qsl(body)) == {
        "amount": "100",
        "metadata": {"payment_id": "pw_1"},
        "payment_method_types": ["card"],
        "expand": ["payment_method", "latest_charge"],
        "a": {"b": {"c": "1"}},
    }
    with pytest.raises(FormError):
        parse_form([("a", "1"), ("a[b]", "2")])


def test_efi_appends_pix_to_the_text_of_the_url() -> None:
    assert efi_notification_url("https://h/cb") == "https://h/cb/pix"
    assert (
        efi_notification_url("https://h/cb?hmac=s&ignorar=") == "https://h/cb?hmac=s&ignorar=/pix"
    )
    assert with_query("https://h/cb?x=1", {"data.id": "5"}) == "https://h/cb?x=1&data.id=5"


def test_paypal_signs_the_transmission_the_webhook_id_and_the_bodys_crc32() -> None:
    signed = paypal_signed_string("tid", "2024-05-01T12:00:00Z", "WH-1", b"{}")

    assert signed == "tid|2024-05-01T12:00:00Z|WH-1|2745614147"  # zlib.crc32(b"{}"), unsigned
    signature = paypal_transmission_signature(b"k", signed)
    assert len(base64.b64decode(signature)) == 32
    assert paypal_transmission_signature(b"other", signed) != signature


def test_sandbox_defaults_match_paywaves_credentials() -> None:
    assert SANDBOX_VALUES["gerencianet"]["CLIENT_ID"] == SANDBOX_GERENCIANET_CLIENT_ID
    assert SANDBOX_VALUES["gerencianet"]["CLIENT_SECRET"] == SANDBOX_GERENCIANET_CLIENT_SECRET
    assert SANDBOX_VALUES["paypal"]["CLIENT_ID"] == SANDBOX_PAYPAL_CLIENT_ID
    assert SANDBOX_VALUES["paypal"]["CLIENT_SECRET"] == SANDBOX_PAYPAL_CLIENT_SECRET
    for gateway, secret in SANDBOX_WEBHOOK_SECRETS.items():
        name = "WEBHOOK_ID" if gateway == "paypal" else "WEBHOOK_SECRET"  # PayPal signs with RSA
        assert secret == SANDBOX_VALUES[gateway][name]
    assert SANDBOX_VALUES["stripe"]["API_KEY"].startswith("sk_test_")


def test_config_from_the_environment() -> None:
    config = SimulatorConfig.from_env(
        {
            "SIM_STRIPE_WEBHOOK_URL": "http://127.0.0.1:8000/cb/stripe",
            "SIM_MERCADOPAGO_WEBHOOK_SECRET": "mp-s",
            "SIM_STRIPE_API_KEYS": "sk_test_a, sk_test_b",
            "SIM_HANG_MS": "2000",
        }
    )

    assert config.callbacks["stripe"] == CallbackTarget(
        "http://127.0.0.1:8000/cb/stripe", SANDBOX_WEBHOOK_SECRETS["stripe"]
    )
    assert config.callbacks["mercadopago"] == CallbackTarget("", "mp-s")
    assert config.stripe_api_keys == frozenset({"sk_test_a", "sk_test_b"})
    assert config.mercadopago_access_tokens is None
    assert config.hang_ms == 2000


def test_gateways_left_out_of_the_config_keep_the_sandbox_secrets() -> None:
    simulator = Simulator(SimulatorConfig(callbacks={"stripe": CallbackTarget("http://x", "s")}))

    assert simulator.callbacks.target("stripe") == CallbackTarget("http://x", "s")
    assert (
        simulator.callbacks.target("mercadopago").secret == SANDBOX_WEBHOOK_SECRETS["mercadopago"]
    )
