"""QR code images for credentials and presentations: draw (segno) and read (zxing-cpp).

A presentation travels as a QR code a gate or a desk scans; the portal and the API accept a
photo or screenshot of one. Reading untrusted images is bounded: at most ``MAX_IMAGE_BYTES``
of file and ``MAX_IMAGE_PIXELS`` of decoded image (Pillow refuses bigger ones before
decoding, so a decompression bomb costs nothing).
"""

from __future__ import annotations

import io
import warnings

import segno
import zxingcpp
from PIL import Image, UnidentifiedImageError

from civicledger.errors import CivicError
from civicledger.services.identity.credentials import MAX_QR_PAYLOAD

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "QrImageError",
    "decode_qr_image",
    "qr_png",
    "qr_svg",
]

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_PIXELS = 25_000_000
"""A 12-megapixel phone photo fits twice over."""


class QrImageError(CivicError):
    """A QR code cannot be drawn for a text, or read from an image; the message says why."""

    reason = "bad_qr_image"


def _malformed(message: str) -> QrImageError:
    return QrImageError(message)


def _code(text: str) -> segno.QRCode:
    if not text or len(text) > MAX_QR_PAYLOAD:
        raise _malformed(f"a QR code carries 1-{MAX_QR_PAYLOAD} characters, not {len(text)}")
    # Low error correction: the payloads are long and a screen or a print is clean.
    return segno.make_qr(text, error="L", boost_error=True)


def qr_png(text: str, *, scale: int = 4) -> bytes:
    """A PNG of the QR code for ``text`` (with the standard 4-module quiet zone)."""
    out = io.BytesIO()
    _code(text).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def qr_svg(text: str, *, scale: int = 3, title: str | None = None) -> str:
    """An inline SVG element of the QR code for ``text`` (no XML declaration, no script)."""
    out = io.BytesIO()
    _code(text).save(
        out,
        kind="svg",
        scale=scale,
        border=4,
        xmldecl=False,
        svgns=True,
        title=title,
        nl=False,
        svgclass="qr",
        lineclass=None,
    )
    return out.getvalue().decode("utf-8")


def decode_qr_image(data: bytes) -> str:
    """The text of the one QR code in an image (PNG, JPEG, GIF, WebP, BMP).

    Raises ``QrImageError`` for an oversized, unreadable or codeless image, or
    one holding several different codes (which one was meant would be a guess).
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise _malformed(f"the image is over {MAX_IMAGE_BYTES // (1024 * 1024)} MiB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise _malformed(f"the image has over {MAX_IMAGE_PIXELS:,} pixels")
            image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise _malformed("not a readable image (PNG, JPEG, GIF, WebP or BMP)") from e
    except Image.DecompressionBombWarning as e:
        raise _malformed(f"the image has over {MAX_IMAGE_PIXELS:,} pixels") from e
    found = {
        result.text
        for result in zxingcpp.read_barcodes(
            image.convert("L"), formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        )
        if result.valid and result.text
    }
    if not found:
        raise _malformed("no QR code was found in the image")
    if len(found) > 1:
        raise _malformed(f"the image holds {len(found)} different QR codes; show one")
    return found.pop()
