"""``/api/v1/certificates``: verify a certificate (PDF upload or QR text), read anchored batches,
read a certificate's verification log, and (with a desk token) record a verification or
download a PDF the token's agency issued.

Verifying without a token records nothing. With an agency's desk token and a ``purpose``, the
verification is recorded on the ledger as that agency's (``certificates.record_verification``),
which the holder sees in the log; only when integrity passes (an altered or forged document is no
check of the certificate its reference names). See docs/certificates.md.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from civicledger.agency.certificate_desk import CertificateDesk
from civicledger.agency.certificate_issuer import CertificateIssuer
from civicledger.agency.desk import IdentityDesk
from civicledger.api.problems import ApiError, problem_responses
from civicledger.crypto.encoding import canonical_json
from civicledger.ledger.genesis import AGENCY_ID_PATTERN
from civicledger.services.certificates.contract import MAX_PAGE, MAX_VERIFICATIONS, REASON_PATTERN
from civicledger.services.certificates.document import (
    BATCH_ID_PATTERN,
    MAX_QR_TEXT,
    REF_PATTERN,
)
from civicledger.services.certificates.pdf import MAX_PDF_BYTES
from civicledger.services.certificates.verify import Report

__all__ = ["CERTIFICATE_PDF_PATH", "certificate_router"]

CERTIFICATE_PDF_PATH = "/certificates/verify/pdf"
"""The PDF upload: its body limit is ``MAX_PDF_BYTES`` (set in ``api/app.py``)."""

_PDF_TYPES = ("application/pdf", "application/octet-stream")
"""A browser or a script may not know the file is a PDF; the bytes decide anyway."""
Issuer = Annotated[str, Path(pattern=AGENCY_ID_PATTERN)]
BatchId = Annotated[str, Path(pattern=BATCH_ID_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Purpose = Annotated[str | None, Query(pattern=REASON_PATTERN)]

_bearer = HTTPBearer(
    auto_error=False,
    description="An agency desk token: records the verification as the agency's.",
)


class QrIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=MAX_QR_TEXT, description="The scanned QR text (civic-cert:...).")


def _json(value: Any) -> Response:
    return Response(canonical_json(value), media_type="application/json")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _recorder(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The agency whose desk token the request carries, or None without one (401 if bad)."""
    if credentials is None:
        return None
    identity = getattr(request.app.state, "identity", None)
    if not isinstance(identity, IdentityDesk):
        raise ApiError(401, "unauthenticated", "this node has no agency desks")
    return identity.authenticate(credentials.credentials)


Recorder = Annotated[str | None, Depends(_recorder)]


def certificate_router(desk: CertificateDesk, identity: IdentityDesk | None = None) -> APIRouter:
    router = APIRouter(prefix="/certificates", tags=["certificates"])

    def answer(report: Report, agency: str | None, purpose: str | None) -> Response:
        body = report.to_json()
        body["recorded"] = None
        if agency is not None:
            if purpose is None:
                raise ApiError(422, "validation", "purpose: required to record a verification")
            # Only a check of the issued document is recorded: an altered or forged one is no
            # check of the certificate its reference names.
            if report.integrity.ok:
                body["recorded"] = desk.record(agency, report.ref, purpose)
        return _json(body)

    @router.post(
        "/verify/pdf",
        responses={
            200: {"description": "The report: integrity, authority and status, separately."},
            **problem_responses(400, 401, 413, 415, 422),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    t: {"schema": {"type": "string", "format": "binary"}} for t in _PDF_TYPES
                },
            }
        },
    )
    async def verify_pdf(request: Request, agency: Recorder, purpose: Purpose = None) -> Response:
        """Verify a certificate PDF (the raw file as the body). A file that is a certificate
        always gets a 200 report, whatever its verdicts; a file that is none is a 400."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in _PDF_TYPES:
            raise ApiError(415, "unsupported_media_type", "send the file as application/pdf")
        data = await request.body()
        if len(data) > MAX_PDF_BYTES:
            raise ApiError(413, "payload_too_large", "the PDF is too large")
        # Re-rendering the PDF (and recording, which waits for a block) takes a while: off
        # the event loop, as the plain ``def`` routes are.
        report = await run_in_threadpool(desk.verify_pdf, data, _now_ms())
        return await run_in_threadpool(answer, report, agency, purpose)

    @router.post("/verify/qr", responses=problem_responses(400, 401, 422))
    def verify_qr(body: QrIn, agency: Recorder, purpose: Purpose = None) -> Response:
        """Verify a certificate's QR text; the same report as for a PDF (``source: qr``)."""
        return answer(desk.verify_qr(body.text, _now_ms()), agency, purpose)

    @router.get("/log/{ref}", responses=problem_responses(422))
    def log(
        ref: Annotated[str, Path(pattern=REF_PATTERN)],
        after: Annotated[int, Query(ge=0, le=MAX_VERIFICATIONS)] = 0,
        limit: Limit = 100,
    ) -> Response:
        """Who verified the certificate and when (its reference is printed on the PDF):
        ``{"entries", "count", "next"}``."""
        return _json(desk.log(ref, after=after, limit=limit))

    @router.get("/batches/{issuer}", responses=problem_responses(422))
    def batches(
        issuer: Issuer,
        after: Annotated[str, Query(max_length=64)] = "",
        limit: Limit = 100,
    ) -> Response:
        """An issuer's anchored batches by id, paginated with ``after``."""
        return _json(desk.batches(issuer, after=after, limit=limit))

    @router.get("/batches/{issuer}/{batch_id}", responses=problem_responses(404, 422))
    def batch(issuer: Issuer, batch_id: BatchId) -> Response:
        """One anchored batch: root, size, type, issue and anchoring time."""
        return _json(dict(desk.batch(issuer, batch_id)))

    if identity is not None:

        @router.get(
            "/issued/{certificate_id}.pdf",
            response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}, **problem_responses(401, 404)},
        )
        def issued_pdf(
            certificate_id: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{7,63}$")],
            agency: Recorder,
        ) -> Response:
            """A PDF the token's agency issued, from its register (the issuer desk)."""
            if agency is None:
                raise ApiError(401, "unauthenticated", "an issuer desk token is required")
            data = CertificateIssuer(identity.ledger, agency).pdf(certificate_id)
            return Response(data, media_type="application/pdf")

    return router
