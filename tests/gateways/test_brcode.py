import binascii
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateways.pix.brcode import MAX_AMOUNT, BRCode, BRCodeError, crc16, parse, qr_png

# The Banco Central's BR Code manual, static example.
MANUAL = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
MANUAL_KEY = "123e4567-e12b-12d1-a456-426655440000"
URL = "pix.example.com/qr/v2/9d36b84fc70b478fb95c12729b90ca25"
ACCENTED = "áàâãéêíóôõúüçÁÀÂÃÉÊÍÓÔÕÚÜÇ"
PLAIN = "aaaaeeiooouucAAAAEEIOOOUUC"


def tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def signed(body: str) -> str:
    return body + "6304" + crc16(body + "6304")


def manual_fields(**replace: str | None) -> str:
    """The manual's example with fields replaced (None drops one), CRC recomputed."""
    fields = {
        "00": "01",
        "26": tlv("00", "br.gov.bcb.pix") + tlv("01", MANUAL_KEY),
        "52": "0000",
        "53": "986",
        "58": "BR",
        "59": "Fulano de Tal",
        "60": "BRASILIA",
        "62": tlv("05", "***"),
    } | replace
    return signed("".join(tlv(tag, value) for tag, value in fields.items() if value is not None))


def reference_crc(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = (crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def test_manual_example_parses() -> None:
    assert parse(MANUAL) == BRCode(
        key=MANUAL_KEY, merchant_name="Fulano de Tal", merchant_city="BRASILIA"
    )
    code = parse(MANUAL)
    assert (code.txid, code.amount, code.url, code.unique_use) == (None, None, None, False)


def test_manual_example_rebuilds_byte_for_byte() -> None:
    assert parse(MANUAL).encode() == MANUAL
    assert (
        BRCode(key=MANUAL_KEY, merchant_name="Fulano de Tal", merchant_city="BRASILIA").encode()
        == MANUAL
    )


def test_manual_check_value() -> None:
    assert crc16(MANUAL[:-4]) == "1D3D"


@given(st.binary(max_size=200))
def test_crc_matches_a_bitwise_ccitt_false(data: bytes) -> None:
    assert binascii.crc_hqx(data, 0xFFFF) == reference_crc(data)


def test_static_round_trip_with_amount_txid_and_info() -> None:
    code = BRCode(
        key="+5561999998888",
        merchant_name="Padaria Pão Doce",
        merchant_city="Brasília",
        amount=1050,
        txid="PEDIDO123",
        additional_info="Mesa 4",
    )
    payload = code.encode()
    assert "540510.50" in payload
    assert "0509PEDIDO123" in payload
    assert "0206Mesa 4" in payload
    assert "010212" not in payload  # static codes are reusable unless asked otherwise
    assert parse(payload) == code
    assert (code.merchant_name, code.merchant_city) == ("Padaria Pao Doce", "Brasilia")


def test_dynamic_round_trip_is_unique_use() -> None:
    code = BRCode(url=URL, merchant_name="Loja", merchant_city="Recife", amount=99_99)
    payload = code.encode()
    assert payload.startswith("000201010212")
    assert tlv("25", URL) in payload
    assert "540599.99" in payload
    assert parse(payload) == code
    assert code.unique_use is True


def test_dynamic_code_can_be_reusable() -> None:
    code = BRCode(url=URL, merchant_name="Loja", merchant_city="Recife", unique_use=False)
    assert "010212" not in code.encode()
    assert parse(code.encode()) == code


@pytest.mark.parametrize(
    ("amount", "rendered"),
    [(1, "0.01"), (10, "0.10"), (100, "1.00"), (1050, "10.50"), (MAX_AMOUNT, "9999999999.99")],
)
def test_amount_is_rendered_from_centavos(amount: int, rendered: str) -> None:
    code = BRCode(key=MANUAL_KEY, merchant_name="A", merchant_city="B", amount=amount)
    assert tlv("54", rendered) in code.encode()


def test_crc_with_leading_zero_is_padded() -> None:
    for amount in range(1, 10_000):
        code = BRCode(key=MANUAL_KEY, merchant_name="Fulano", merchant_city="RIO", amount=amount)
        payload = code.encode()
        if binascii.crc_hqx(payload[:-4].encode(), 0xFFFF) < 0x1000:
            break
    else:
        pytest.fail("no amount gave a CRC below 0x1000")
    assert payload[-8:-4] == "6304"
    assert payload[-4] == "0"
    assert int(payload[-4:], 16) == binascii.crc_hqx(payload[:-4].encode(), 0xFFFF)
    assert parse(payload) == code


@given(st.data())
def test_any_one_character_change_is_rejected(data: st.DataObject) -> None:
    payload = data.draw(
        st.sampled_from(
            [
                MANUAL,
                BRCode(url=URL, merchant_name="Loja", merchant_city="Recife", amount=1234).encode(),
            ]
        )
    )
    index = data.draw(st.integers(0, len(payload) - 1))
    char = data.draw(
        st.one_of(st.sampled_from(string.printable), st.characters()).filter(
            lambda c: c != payload[index]
        )
    )
    with pytest.raises(BRCodeError):
        parse(payload[:index] + char + payload[index + 1 :])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"merchant_name": "N" * 26}, "merchant_name is 26"),
        ({"merchant_city": "C" * 16}, "merchant_city is 16"),
        ({"merchant_name": "ﬁ" * 13}, "merchant_name is 26"),  # NFKD: "ﬁ" -> "fi"
        ({"merchant_name": "Søren"}, "no ASCII equivalent"),
        ({"merchant_city": "São\nPaulo"}, "no ASCII equivalent"),
        ({"merchant_name": "  "}, "empty"),
        ({"txid": "T" * 26}, "txid"),
        ({"txid": "PEDIDO-1"}, "txid"),
        ({"txid": ""}, "txid"),
        ({"key": "k" * 78}, "key is 78"),
        ({"key": "a b"}, "without spaces"),
        ({"key": None, "url": "u" * 78}, "url is 78"),
        ({"key": None, "url": "https://" + URL}, "scheme"),
        ({"url": URL}, "exactly one"),
        ({"key": None}, "exactly one"),
        ({"amount": 0}, "amount"),
        ({"amount": -100}, "amount"),
        ({"amount": MAX_AMOUNT + 1}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": 10.5}, "amount"),
        ({"key": "k" * 77, "additional_info": "x" * 5}, "field 26"),
        ({"additional_info": ""}, "empty"),
    ],
)
def test_builder_rejects(fields: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "key": MANUAL_KEY,
        "merchant_name": "Fulano",
        "merchant_city": "RIO",
    } | fields
    with pytest.raises(BRCodeError, match=message):
        BRCode(**values)


def test_limits_count_characters_after_normalization() -> None:
    code = BRCode(key=MANUAL_KEY, merchant_name="ã" * 25, merchant_city="Ç" * 15)
    assert (code.merchant_name, code.merchant_city) == ("a" * 25, "C" * 15)
    assert parse(code.encode()) == code


def test_stars_mean_no_txid() -> None:
    code = BRCode(key=MANUAL_KEY, merchant_name="A", merchant_city="B", txid="***")
    assert code.txid is None
    assert code == BRCode(key=MANUAL_KEY, merchant_name="A", merchant_city="B")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("", "empty"),
        (MANUAL[:-8], "last field"),
        (MANUAL[:-4] + "1D3E", "CRC mismatch"),
        (MANUAL[:-4] + "1d3d", "uppercase"),
        (MANUAL[:-4] + "1D3D0", "offset"),
        (MANUAL + "X", "offset"),
        (MANUAL + tlv("99", "xy"), "last field"),
        (MANUAL.replace("5913Fulano", "5912Fulano"), "offset|bad length"),
        (MANUAL.replace("5913Fulano", "5914Fulano"), "offset|bad length"),
        (MANUAL.replace("Tal", "Tãl"), "ASCII"),
        (manual_fields(**{"26": tlv("00", "br.gov.bcb.pix") + "0199x"}), "bad length"),
        (manual_fields(**{"00": None}), "start with field 00"),
        (manual_fields(**{"00": "02"}), "start with field 00"),
        (manual_fields(**{tag: None for tag in ("26", "53")}), "26, 53"),
        (manual_fields(**{"52": None}), "52"),
        (manual_fields(**{"58": None}), "58"),
        (manual_fields(**{"59": None}), "59"),
        (manual_fields(**{"60": None}), "60"),
        (manual_fields(**{"01": "13"}), "field 01"),
        (manual_fields(**{"52": "00A0"}), "field 52"),
        (manual_fields(**{"53": "840"}), "986"),
        (manual_fields(**{"58": "US"}), "BR"),
        (manual_fields(**{"59": "N" * 26}), "merchant_name"),
        (manual_fields(**{"62": tlv("05", "PEDIDO-1")}), "txid"),
        (manual_fields(**{"26": tlv("00", "br.gov.bcb.pox") + tlv("01", "k")}), "GUI"),
        (manual_fields(**{"26": tlv("01", MANUAL_KEY)}), "GUI"),
        (manual_fields(**{"26": tlv("00", "br.gov.bcb.pix")}), "exactly one"),
        (
            manual_fields(**{"26": tlv("00", "br.gov.bcb.pix") + tlv("01", "k") + tlv("25", URL)}),
            "exactly one",
        ),
        (manual_fields(**{"62": tlv("05", "A") + tlv("05", "B")}), "twice"),
        (signed(MANUAL[:-8] + tlv("52", "0000")), "twice"),
        (signed(MANUAL[:-8]) + "6304" + "0000", "twice"),
    ],
)
def test_parser_rejects(payload: str, message: str) -> None:
    with pytest.raises(BRCodeError, match=message):
        parse(payload)


@pytest.mark.parametrize(
    "amount", ["10,50", "10.505", "1e3", "-1.00", ".50", "10.", "0", "0.00", "12345678901.00"]
)
def test_parser_rejects_bad_amounts(amount: str) -> None:
    with pytest.raises(BRCodeError, match="amount"):
        parse(manual_fields(**{"54": amount}))


@pytest.mark.parametrize(
    ("amount", "centavos"),
    [("10", 1000), ("10.5", 1050), ("10.50", 1050), ("0.01", 1), ("9999999999.99", MAX_AMOUNT)],
)
def test_parser_reads_amounts_as_centavos(amount: str, centavos: int) -> None:
    assert parse(manual_fields(**{"54": amount})).amount == centavos


def test_parser_tolerates_unknown_fields_and_missing_field_62() -> None:
    code = parse(manual_fields(**{"62": None, "80": tlv("00", "br.example")}))
    assert code == BRCode(key=MANUAL_KEY, merchant_name="Fulano de Tal", merchant_city="BRASILIA")


names = st.text(alphabet=string.ascii_letters + ACCENTED + " ", min_size=1, max_size=25)
cities = st.text(alphabet=string.ascii_letters + ACCENTED + " ", min_size=1, max_size=15)
txids = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=25)
amounts = st.integers(1, MAX_AMOUNT)


@given(
    name=names.filter(str.strip),
    city=cities.filter(str.strip),
    amount=st.none() | amounts,
    txid=st.none() | txids,
    key=st.text(alphabet=string.ascii_letters + string.digits + "@.+-", min_size=1, max_size=77),
)
def test_static_round_trip(
    name: str, city: str, amount: int | None, txid: str | None, key: str
) -> None:
    code = BRCode(key=key, merchant_name=name, merchant_city=city, amount=amount, txid=txid)
    plain = str.maketrans(ACCENTED, PLAIN)
    assert code.merchant_name == name.translate(plain).strip()
    assert code.merchant_city == city.translate(plain).strip()
    assert code.amount == amount
    assert code.txid == txid
    assert parse(code.encode()) == code


@given(name=names.filter(str.strip), city=cities.filter(str.strip), amount=amounts)
def test_dynamic_round_trip(name: str, city: str, amount: int) -> None:
    code = BRCode(url=URL, merchant_name=name, merchant_city=city, amount=amount)
    assert parse(code.encode()) == code


@given(name=st.text(max_size=40), city=st.text(max_size=20), info=st.none() | st.text())
def test_arbitrary_text_is_encoded_faithfully_or_refused(
    name: str, city: str, info: str | None
) -> None:
    try:
        code = BRCode(key=MANUAL_KEY, merchant_name=name, merchant_city=city, additional_info=info)
    except BRCodeError:
        return
    payload = code.encode()
    assert payload.isascii()
    assert payload.isprintable()
    assert parse(payload) == code


def png_width(png: bytes) -> int:
    return int.from_bytes(png[16:20], "big")  # IHDR follows the 8-byte signature


def test_qr_png() -> None:
    small = qr_png(MANUAL, scale=2)
    large = qr_png(MANUAL)
    assert small.startswith(b"\x89PNG\r\n\x1a\n")
    assert large.startswith(b"\x89PNG\r\n\x1a\n")
    assert png_width(large) == 3 * png_width(small)
    assert len(large) > len(small)
