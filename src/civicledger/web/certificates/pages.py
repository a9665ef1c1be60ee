"""The certificate pages, thin over the node's ``CertificateDesk`` (``app.state.certificates``).

Invariants:

- The verify page shows the three verdicts (integrity, issuer authority, status) separately,
  each with its translated reason; the JSON API (``/api/v1/certificates/verify/...``) calls the
  same desk, so the page and the endpoint cannot disagree.
- Verifying here records nothing on the ledger and keeps nothing: the uploaded file is read,
  checked and dropped. The certificate's fields are shown only to whoever uploaded it.
- One upload field takes the PDF or a photo of its QR code (told apart by the PDF header), or
  the QR text is pasted; the form is bounded (``VERIFY_BODY_LIMIT``).
- The holder's "who verified it" page reads the log by the reference printed on the PDF.
- Without a desk (a node serving the ledger only) every page says so, with status 503.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData, UploadFile

from civicledger.agency.certificate_desk import CertificateDesk
from civicledger.errors import CivicError
from civicledger.services.certificates.document import MAX_QR_TEXT, REF_PATTERN
from civicledger.services.certificates.pdf import MAX_PDF_BYTES, type_label
from civicledger.services.certificates.verify import Report
from civicledger.services.identity.qr_image import decode_qr_image
from civicledger.web.forms import PageInputError, Refusal, form_reader, refusal, text_field
from civicledger.web.portal import render
from civicledger.web.sections import PortalSection, package_section

__all__ = ["EXPLAINED_REASONS", "VERIFY_BODY_LIMIT", "VERIFY_PATH", "section"]

SLUG = "certificates"
VERIFY_PATH = f"/{SLUG}/verify"
VERIFY_BODY_LIMIT = MAX_PDF_BYTES + 64 * 1024
"""The verify form carries one PDF (at most ``MAX_PDF_BYTES``) or a QR photo, and a text."""
_REF = re.compile(REF_PATTERN)
_MAX_FORM_FIELDS = 4

VERDICT_REASONS = frozenset(
    {
        "pdf_altered",
        "not_in_batch",
        "unknown_batch",
        "batch_mismatch",
        "wrong_chain",
        "integrity_failed",
        "issuer_not_authorized",
        "revoked",
        "superseded",
        "expired",
    }
)
"""Verdict reasons with a translated explanation (``certificates.reason.<reason>``)."""
EXPLAINED_REASONS = VERDICT_REASONS | {
    "bad_pdf",
    "no_certificate",
    "bad_certificate",
    "too_large",
    "bad_qr_image",
    "bad_request",
    "cannot_render",
}
"""Every reason the pages explain; others get ``certificates.reason.other``."""


def _desk(request: Request) -> CertificateDesk | None:
    desk = getattr(request.app.state, "certificates", None)
    return desk if isinstance(desk, CertificateDesk) else None


def _unavailable(request: Request) -> HTMLResponse:
    return render(request, "certificates/unavailable.html", status_code=503)


def _refusal(error: CivicError) -> Refusal:
    return refusal(error, SLUG, EXPLAINED_REASONS)


def _uploaded(form: FormData) -> bytes | None:
    value = form.get("file")
    if not isinstance(value, UploadFile) or not value.filename:
        return None
    data = value.file.read(MAX_PDF_BYTES + 1)
    if len(data) > MAX_PDF_BYTES:
        raise PageInputError(
            f"the file is over {MAX_PDF_BYTES // (1024 * 1024)} MiB", reason="too_large"
        )
    return data or None


def _explain(reason: str | None) -> str | None:
    if reason is None:
        return None
    known = reason if reason in VERDICT_REASONS else "other"
    return f"certificates.reason.{known}"


LABELLED_FIELDS = (
    "name",
    "birth_date",
    "address",
    "school",
    "degree",
    "graduated_on",
    "licence_class",
    "licence_number",
)
"""Fields with a translated label (``certificates.field.<name>``), shown first in this order."""


def _field_rows(fields: dict[str, str]) -> list[dict[str, Any]]:
    known = [n for n in LABELLED_FIELDS if n in fields]
    rest = sorted(n for n in fields if n not in LABELLED_FIELDS)
    return [
        {
            "name": name,
            "label_key": f"certificates.field.{name}" if name in LABELLED_FIELDS else None,
            "value": fields[name],
        }
        for name in [*known, *rest]
    ]


def _view(report: Report) -> dict[str, Any]:
    body = report.to_json()
    body["field_rows"] = _field_rows(body["certificate"]["fields"])
    for name in ("integrity", "authority", "status"):
        body[name]["explanation_key"] = _explain(body[name]["reason"])
    ko, en = type_label(report.bundle.document.certificate_type)
    body["type_label"] = {"ko": ko, "en": en}
    return body


Form = Annotated[FormData, Depends(form_reader(_MAX_FORM_FIELDS))]
router = APIRouter()


@router.get("", response_class=HTMLResponse)
def verify_page(request: Request) -> HTMLResponse:
    """Upload a certificate PDF or a photo of its QR code, or paste the QR text."""
    if _desk(request) is None:
        return _unavailable(request)
    return render(request, "certificates/verify.html", {"report": None, "refusal": None})


@router.post("/verify", response_class=HTMLResponse)
def verify_submit(request: Request, form: Form) -> HTMLResponse:
    """The three verdicts, or why the input is no certificate (an answer: status 200)."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    text = text_field(form, "text")
    now_ms = int(time.time() * 1000)
    try:
        data = _uploaded(form)
        if data is not None and text:
            raise PageInputError("give either a file or the QR text")
        if data is None and not text:
            raise PageInputError("give the certificate's PDF, a photo of its QR code or its text")
        if data is not None and data.startswith(b"%PDF-"):
            report = desk.verify_pdf(data, now_ms)
        else:
            if data is not None:
                text = decode_qr_image(data).strip()
            if len(text) > MAX_QR_TEXT:
                raise PageInputError(f"a certificate's QR text is at most {MAX_QR_TEXT} characters")
            report = desk.verify_qr(text, now_ms)
    except CivicError as e:
        context = {"report": None, "refusal": _refusal(e)}
        return render(request, "certificates/verify.html", context)
    return render(request, "certificates/verify.html", {"report": _view(report), "refusal": None})


@router.get("/log", response_class=HTMLResponse)
def log_page(request: Request, ref: str = "") -> HTMLResponse:
    """Who verified a certificate and when, by the reference printed on its PDF."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    ref = ref.strip().lower()
    context: dict[str, Any] = {"ref": ref[:64], "log": None, "bad_ref": False}
    if ref and _REF.fullmatch(ref) is None:
        context["bad_ref"] = True
    elif ref:
        context["log"] = desk.log(ref, limit=1000)
    return render(request, "certificates/log.html", context)


def section() -> PortalSection:
    """The certificate pages at ``/certificates``; ``install_portal`` adds them with a desk."""
    return package_section("civicledger.web.certificates", router, nav_order=50)
