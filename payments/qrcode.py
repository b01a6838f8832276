"""The PIX QR code image of a BR Code, as the API and the hosted page serve it."""

import io

import segno


def qr_code_png(br_code: str) -> bytes:
    image = io.BytesIO()
    segno.make(br_code, error="m").save(image, kind="png", scale=6, border=4)
    return image.getvalue()
