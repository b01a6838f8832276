"""PIX BR Code ("copia e cola"): the EMV MPM TLV payload behind a PIX QR code.

`BRCode(...).encode()` builds a payload, `parse(payload)` reads one back, `qr_png`
draws it. Amounts are integer centavos. A BRCode validates and normalizes its
values when made, so every BRCode encodes and `parse(code.encode()) == code`.

- Merchant name, city and additional info are NFKD-decomposed with combining marks
  dropped ("São Paulo" -> "Sao Paulo"), as the BCB manual recommends; whatever is
  still not printable ASCII is refused, never dropped. Limits count the result.
- Payloads are printable ASCII (EMV's "ans" set), so a TLV length counts characters
  and bytes alike; `parse` refuses anything else.
- The CRC is written, and only accepted, as 4 uppercase hex digits: each valid
  payload has one spelling and any one-character change to it is rejected.
"""

import binascii
import io
import re
import unicodedata
from dataclasses import dataclass

import segno

GUI = "br.gov.bcb.pix"
MAX_AMOUNT = 10**12 - 1  # "9999999999.99": field 54 holds at most 13 characters

_TXID = re.compile(r"[A-Za-z0-9]{1,25}")
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]{1,2}))?")
_HEADER = re.compile(r"[0-9]{4}")
_CRC = re.compile(r"[0-9A-F]{4}")
_MCC = re.compile(r"[0-9]{4}")
_REQUIRED = ("26", "52", "53", "58", "59", "60")


class BRCodeError(ValueError):
    """A BR Code that cannot be built or parsed; the message says why."""


@dataclass(frozen=True, kw_only=True)
class BRCode:
    key: str | None = None  # static code: the PIX key (26/01)
    url: str | None = None  # dynamic code: location without "https://" (26/25)
    merchant_name: str
    merchant_city: str
    amount: int | None = None  # centavos; None lets the payer choose
    txid: str | None = None  # None is written as "***"
    additional_info: str | None = None
    unique_use: bool | None = None  # field 01 = "12"; None means "if dynamic"

    def __post_init__(self) -> None:
        if (self.key is None) == (self.url is None):
            raise BRCodeError("give exactly one of key (static code) or url (dynamic code)")
        if self.key is not None:
            _check_token("key", self.key)
        if self.url is not None:
            _check_token("url", self.url)
            if "://" in self.url:
                raise BRCodeError(f"url must not include its scheme (https is implied): {self.url}")
        if self.amount is not None:
            if isinstance(self.amount, bool) or not isinstance(self.amount, int):
                raise BRCodeError(f"amount is an integer number of centavos, got {self.amount!r}")
            if not 0 < self.amount <= MAX_AMOUNT:
                raise BRCodeError(f"amount must be 1..{MAX_AMOUNT} centavos, got {self.amount}")
        txid = None if self.txid == "***" else self.txid
        if txid is not None and not _TXID.fullmatch(txid):
            raise BRCodeError(f"txid must be 1 to 25 characters [A-Za-z0-9], got {txid!r}")
        normalized = {
            "txid": txid,
            "merchant_name": _text("merchant_name", self.merchant_name, 25),
            "merchant_city": _text("merchant_city", self.merchant_city, 15),
            "unique_use": self.url is not None if self.unique_use is None else self.unique_use,
        }
        if self.additional_info is not None:
            normalized["additional_info"] = _text("additional_info", self.additional_info, 99)
        for name, value in normalized.items():
            object.__setattr__(self, name, value)
        self._merchant_account()  # key or url plus additional info must fit in 99

    def _merchant_account(self) -> str:
        account = _tlv("00", GUI)
        account += _tlv("01", self.key) if self.key is not None else _tlv("25", self.url or "")
        if self.additional_info is not None:
            account += _tlv("02", self.additional_info)
        if len(account) > 99:
            raise BRCodeError(
                f"field 26 would be {len(account)} characters (limit 99): "
                "shorten the key, url or additional_info"
            )
        return account

    def encode(self) -> str:
        payload = _tlv("00", "01")
        if self.unique_use:
            payload += _tlv("01", "12")
        payload += _tlv("26", self._merchant_account()) + _tlv("52", "0000") + _tlv("53", "986")
        if self.amount is not None:
            payload += _tlv("54", f"{self.amount // 100}.{self.amount % 100:02d}")
        payload += _tlv("58", "BR")
        payload += _tlv("59", self.merchant_name) + _tlv("60", self.merchant_city)
        payload += _tlv("62", _tlv("05", self.txid or "***")) + "6304"
        return payload + crc16(payload)


def crc16(data: str) -> str:
    """CRC16/CCITT-FALSE of an ASCII string as 4 uppercase hex digits."""
    return f"{binascii.crc_hqx(data.encode('ascii'), 0xFFFF):04X}"


def parse(payload: str) -> BRCode:
    if not (payload.isascii() and payload.isprintable()):
        raise BRCodeError("payload must be printable ASCII")
    fields = _fields(payload, "payload")
    tags = list(fields)
    if tags[-1] != "63":
        raise BRCodeError("the CRC (field 63) must be the last field")
    if not _CRC.fullmatch(fields["63"]):
        raise BRCodeError(f"the CRC must be 4 uppercase hex digits, got {fields['63']!r}")
    if fields["63"] != (computed := crc16(payload[:-4])):
        raise BRCodeError(f"CRC mismatch: payload says {fields['63']}, content gives {computed}")
    if tags[0] != "00" or fields["00"] != "01":
        raise BRCodeError("the payload must start with field 00 = '01'")
    if missing := [tag for tag in _REQUIRED if tag not in fields]:
        raise BRCodeError(f"missing required field(s): {', '.join(missing)}")
    if fields.get("01", "11") not in ("11", "12"):
        raise BRCodeError(f"point of initiation (field 01) must be 11 or 12: {fields['01']!r}")
    if not _MCC.fullmatch(fields["52"]):
        raise BRCodeError(f"merchant category code (field 52) must be 4 digits: {fields['52']!r}")
    if fields["53"] != "986":
        raise BRCodeError(f"currency (field 53) must be 986 (BRL), got {fields['53']!r}")
    if fields["58"] != "BR":
        raise BRCodeError(f"country (field 58) must be BR, got {fields['58']!r}")
    account = _fields(fields["26"], "field 26")
    if account.get("00", "").lower() != GUI:
        raise BRCodeError(f"field 26 must start with GUI {GUI}, got {account.get('00')!r}")
    additional = _fields(fields["62"], "field 62") if "62" in fields else {}
    return BRCode(
        key=account.get("01"),
        url=account.get("25"),
        merchant_name=fields["59"],
        merchant_city=fields["60"],
        amount=_parse_amount(fields["54"]) if "54" in fields else None,
        txid=additional.get("05"),
        additional_info=account.get("02"),
        unique_use=fields.get("01") == "12",
    )


def qr_png(payload: str, *, scale: int = 6) -> bytes:
    buffer = io.BytesIO()
    segno.make_qr(payload, error="m", boost_error=False).save(buffer, kind="png", scale=scale)
    return buffer.getvalue()


def _tlv(tag: str, value: str) -> str:
    if not 0 < len(value) <= 99:
        raise BRCodeError(f"field {tag} must hold 1 to 99 characters, got {len(value)}")
    return f"{tag}{len(value):02d}{value}"


def _fields(data: str, where: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    position = 0
    while position < len(data):
        header = data[position : position + 4]
        if not _HEADER.fullmatch(header):
            raise BRCodeError(f"{where}: no field ID and length at offset {position}")
        tag, length = header[:2], int(header[2:])
        value = data[position + 4 : position + 4 + length]
        if length == 0 or len(value) != length:
            raise BRCodeError(f"{where}: field {tag} at offset {position} has a bad length")
        if tag in fields:
            raise BRCodeError(f"{where}: field {tag} appears twice")
        fields[tag] = value
        position += 4 + length
    if not fields:
        raise BRCodeError(f"{where} is empty")
    return fields


def _parse_amount(text: str) -> int:
    match = _AMOUNT.fullmatch(text)
    if match is None or len(text) > 13:
        raise BRCodeError(f"amount (field 54) must be digits with up to 2 decimals: {text!r}")
    whole, cents = match.groups()
    return int(whole) * 100 + int((cents or "").ljust(2, "0"))


def _check_token(field: str, value: str, limit: int = 77) -> None:
    if not value or not value.isascii() or not value.isprintable() or " " in value:
        raise BRCodeError(f"{field} must be printable ASCII without spaces: {value!r}")
    if len(value) > limit:
        raise BRCodeError(f"{field} is {len(value)} characters, the limit is {limit}")


def _text(field: str, value: str, limit: int) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    text = "".join(char for char in decomposed if not unicodedata.combining(char)).strip()
    if not text:
        raise BRCodeError(f"{field} is empty")
    if not (text.isascii() and text.isprintable()):
        raise BRCodeError(f"{field} has characters with no ASCII equivalent: {value!r}")
    if len(text) > limit:
        raise BRCodeError(f"{field} is {len(text)} characters (limit {limit}): {text!r}")
    return text
