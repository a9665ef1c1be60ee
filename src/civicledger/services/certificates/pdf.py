"""A certificate's PDF copy: rendered deterministically, so a verifier can render it again.

The PDF shows the document's fields, its reference number and a QR code of the bundle, and
embeds the bundle (``certificate.json``, readable with pypdf) with the render settings. The
integrity rule for a PDF (``verify.check_pdf``): its bytes must equal the re-rendering of the
bundle it embeds, and that bundle's leaf must be in an anchored batch. So any change to the
visible text, the QR image, the attachment or anything else in the file fails, while the holder
can still hand over the file as is.

Limits (documented in docs/certificates.md): the same renderer (fpdf2, segno, the Hangul font
file) must be used to check as to issue; a PDF re-saved or printed to PDF by another tool no
longer matches byte for byte (the QR code on it still verifies the document itself).

The only I/O here is reading the font file; rendering takes no clock (every date shown comes
from the document).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import segno
from fpdf import FPDF
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from civicledger.crypto.encoding import canonical_json, parse_json
from civicledger.errors import CivicError
from civicledger.services.certificates.document import Bundle, bundle_from_json, bundle_to_qr

__all__ = [
    "ATTACHMENT_NAME",
    "HANGUL_FONT",
    "MAX_PDF_BYTES",
    "FontMode",
    "default_font_mode",
    "read_pdf",
    "render_pdf",
    "type_label",
]

FontMode = Literal["nanum", "core"]
HANGUL_FONT = Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf")
ATTACHMENT_NAME = "certificate.json"
MAX_PDF_BYTES = 2 * 1024 * 1024
RENDER_VERSION = 1
_KST = dt.timezone(dt.timedelta(hours=9))
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TYPE_LABELS = {
    "ResidenceCertificate": ("주민등록표 등본", "Certificate of residence"),
    "GraduationCertificate": ("졸업증명서", "Certificate of graduation"),
    "DriverLicenceCertificate": ("운전면허 증명서", "Driver licence certificate"),
}
_FIELD_LABELS = {
    "name": "성명 Name",
    "birth_date": "생년월일 Date of birth",
    "address": "주소 Address",
    "school": "학교 School",
    "degree": "학위 Degree",
    "graduated_on": "졸업일 Graduated on",
    "licence_class": "면허 종류 Licence class",
    "licence_number": "면허 번호 Licence number",
}

# fontTools reports every table it does not subset; it is not our concern.
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)


class PdfError(CivicError):
    """A file that is not one of our certificate PDFs (``bad_pdf``, ``no_certificate``)."""

    reason = "bad_pdf"


def default_font_mode() -> FontMode:
    """Hangul when the Nanum font is installed, else the core font (ASCII only)."""
    return "nanum" if HANGUL_FONT.is_file() else "core"


def type_label(certificate_type: str) -> tuple[str, str]:
    """Korean and English names of a certificate type (the type itself when unknown)."""
    return _TYPE_LABELS.get(certificate_type, (certificate_type, certificate_type))


def _date(ms: int) -> str:
    return (_EPOCH + dt.timedelta(milliseconds=ms)).astimezone(_KST).strftime("%Y-%m-%d %H:%M KST")


def _same(text: str) -> str:
    return text


def _ascii(text: str) -> str:
    """What the core font can draw: other characters become ``?`` (deterministically)."""
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)


def render_pdf(bundle: Bundle, font: FontMode | None = None) -> bytes:
    """The certificate's PDF; the same bundle and font mode always give the same bytes."""
    mode: FontMode = font or default_font_mode()
    doc = bundle.document
    fixed = _EPOCH + dt.timedelta(milliseconds=doc.issued_at_ms)
    pdf = FPDF(format="A4")
    pdf.set_creation_date(fixed)
    pdf.set_producer(f"CivicLedger certificates/{RENDER_VERSION}")
    pdf.set_title(doc.certificate_type)
    if mode == "nanum":
        if not HANGUL_FONT.is_file():
            raise PdfError(f"the font {HANGUL_FONT} is not installed", reason="cannot_render")
        pdf.add_font("nanum", fname=str(HANGUL_FONT))
        family = "nanum"
    else:
        family = "helvetica"
    text: Callable[[str], str] = _same if mode == "nanum" else _ascii
    pdf.add_page()
    ko, en = type_label(doc.certificate_type)
    pdf.set_font(family, size=20)
    pdf.cell(0, 12, text(ko if mode == "nanum" else en), new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.set_font(family, size=11)
    pdf.cell(0, 7, text(en), new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.ln(6)
    # The document's JSON is canonical (sorted keys), so the order shown must not depend on
    # the dict's order: known fields in their usual order, then the rest by name.
    known = list(_FIELD_LABELS)
    names = sorted(doc.fields, key=lambda n: (known.index(n) if n in known else len(known), n))
    rows = [(_FIELD_LABELS.get(name, name), doc.fields[name]) for name in names]
    rows += [
        ("발급기관 Issuer", doc.issuer),
        ("발급일시 Issued", _date(doc.issued_at_ms)),
        (
            "유효기간 Valid until",
            _date(doc.valid_until_ms) if doc.valid_until_ms is not None else "-",
        ),
        ("증명서 번호 Certificate id", doc.certificate_id),
        ("묶음 Batch", f"{bundle.proof.batch_id} #{bundle.proof.index} / {bundle.proof.size}"),
    ]
    for label, value in rows:
        pdf.set_font(family, size=10)
        pdf.cell(60, 8, text(label), border=1)
        pdf.cell(0, 8, text(value), border=1, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font(family, size=8)
    pdf.multi_cell(0, 5, text(f"확인번호 Reference: {bundle.ref}"), new_x="LMARGIN", new_y="NEXT")
    qr = segno.make(bundle_to_qr(bundle), error="l", micro=False)
    image = io.BytesIO()
    qr.save(image, kind="png", scale=2, border=4)
    pdf.image(io.BytesIO(image.getvalue()), x=pdf.l_margin, y=pdf.get_y() + 4, w=80)
    pdf.set_y(pdf.get_y() + 88)
    pdf.multi_cell(
        0,
        5,
        text(
            "위·변조 확인: 시민원장 포털의 증명서 확인 페이지에 이 PDF를 올리거나 QR 코드를 "
            "스캔하세요. Verify: upload this PDF or scan the QR code on the portal's "
            "certificate page."
        ),
    )
    attachment = {
        "bundle": bundle.to_json(),
        "render": {"version": RENDER_VERSION, "font": mode},
    }
    pdf.embed_file(
        basename=ATTACHMENT_NAME,
        bytes=canonical_json(attachment),
        desc="CivicLedger certificate bundle",
        creation_date=fixed,
        modification_date=fixed,
        compress=True,
    )
    return bytes(pdf.output())


def read_pdf(data: bytes) -> tuple[Bundle, FontMode]:
    """The bundle a PDF embeds and its render font; ``PdfError`` if there is none."""
    if len(data) > MAX_PDF_BYTES:
        raise PdfError(f"the PDF is over {MAX_PDF_BYTES // 1024} KiB", reason="too_large")
    if not data.startswith(b"%PDF-"):
        raise PdfError("the file is not a PDF")
    try:
        attachments = PdfReader(io.BytesIO(data)).attachments
        found = attachments.get(ATTACHMENT_NAME)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise PdfError(f"the PDF cannot be read: {type(e).__name__}") from e
    if not found or len(found) != 1:
        raise PdfError("the PDF embeds no certificate", reason="no_certificate")
    value: Any = parse_json(found[0])
    if not isinstance(value, dict) or not isinstance(value.get("render"), dict):
        raise PdfError("the PDF's certificate attachment is malformed", reason="no_certificate")
    font = value["render"].get("font")
    if font not in ("nanum", "core") or value["render"].get("version") != RENDER_VERSION:
        raise PdfError("the PDF was rendered by an unknown renderer", reason="no_certificate")
    return bundle_from_json(value.get("bundle")), font
