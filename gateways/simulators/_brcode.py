"""A minimal PIX BR Code (EMV "copia e cola") builder and QR image, private to the simulators.

The simulators stand in for the gateways, which build their own codes; keeping this
independent of PayWave's builder (gateways/pix/brcode.py) means a bug there cannot
hide itself by agreeing with the simulator. Swap it for the shared builder if that
independence stops mattering: `dynamic_brcode` and `qr_png` are the whole interface.
"""

import base64
import binascii
import struct
import zlib

from gateways.simulators._money import major_string

GUI = "br.gov.bcb.pix"


def _tlv(tag: str, value: str) -> str:
    if not 0 < len(value) <= 99:
        raise ValueError(f"EMV field {tag} must hold 1 to 99 characters, got {len(value)}")
    return f"{tag}{len(value):02d}{value}"


def crc16(data: str) -> str:
    """CRC16/CCITT-FALSE (poly 0x1021, init 0xFFFF) as 4 uppercase hex digits."""
    return f"{binascii.crc_hqx(data.encode('ascii'), 0xFFFF):04X}"


def dynamic_brcode(
    *,
    location: str,
    amount: int,
    merchant_name: str,
    merchant_city: str,
    txid: str = "***",
) -> str:
    """A dynamic (single-use) BR Code pointing at `location` (a URL without its scheme)."""
    account = _tlv("00", GUI) + _tlv("25", location)
    payload = (
        _tlv("00", "01")
        + _tlv("01", "12")
        + _tlv("26", account)
        + _tlv("52", "0000")
        + _tlv("53", "986")
        + _tlv("54", major_string(amount))
        + _tlv("58", "BR")
        + _tlv("59", merchant_name[:25])
        + _tlv("60", merchant_city[:15])
        + _tlv("62", _tlv("05", txid))
        + "6304"
    )
    return payload + crc16(payload)


def qr_png(payload: str) -> bytes:
    """A PNG of the payload's QR code (segno, pure Python); a blank PNG if segno is missing.

    The mask is fixed: choosing the best of the eight (what a gateway's renderer does for
    print quality) is three quarters of segno's time, and every PIX charge at a simulator
    renders one, on the same cores as the platform under test."""
    try:
        import segno
    except ImportError:
        return _blank_png()
    import io

    buffer = io.BytesIO()
    segno.make_qr(payload, error="m", mask=0).save(buffer, kind="png", scale=4)
    return buffer.getvalue()


def qr_png_base64(payload: str) -> str:
    return base64.b64encode(qr_png(payload)).decode("ascii")


def _blank_png(size: int = 8) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = b"".join(b"\x00" + b"\xff" * size for _ in range(size))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
