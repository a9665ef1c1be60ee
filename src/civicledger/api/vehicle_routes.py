"""``/api/v1/vehicles``: a vehicle's record and events, its history report (JSON, PDF, QR
code), verifying a report by its QR payload, sales, inspection records and the escrow totals.

Every vehicle transaction (registration, inspection, offer, deposit, transfer, …) is signed by
its signer and sent to ``POST /api/v1/tx``; see docs/vehicles.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel

from civicledger.agency.vehicle_desk import VehicleDesk, VehicleDeskError
from civicledger.agency.vehicle_report import report_pdf
from civicledger.api.problems import problem_responses
from civicledger.contracts.base import HASH_PATTERN
from civicledger.crypto.encoding import canonical_json
from civicledger.services.identity.qr_image import qr_png
from civicledger.services.vehicles.contract import MAX_ID, MAX_PAGE, VIN_PATTERN
from civicledger.services.vehicles.report import MAX_REPORT_EVENTS, ReportError, parse_payload

__all__ = ["vehicle_router"]

Vin = Annotated[str, Path(pattern=VIN_PATTERN, description="The vehicle's VIN (ISO 3779).")]
Count = Annotated[
    int | None,
    Query(ge=1, le=MAX_REPORT_EVENTS, description="Report the first `count` events (default all)."),
]
_PAYLOAD_MAX = 200


class VerifyOut(BaseModel):
    authentic: bool
    """Whether the report matches the ledger's first ``count`` events of the car."""
    reason: str | None
    """Why not (``report_not_authentic``, ``wrong_chain``), or null."""
    vin: str
    count: int
    """Events the report covers."""
    current_count: int | None
    """Events the car has now (null when not authentic)."""
    newer_events: int | None
    """Events recorded since the report was made: a report is a snapshot."""


def _json(value: Any) -> Response:
    return Response(canonical_json(value), media_type="application/json")


def vehicle_router(desk: VehicleDesk) -> APIRouter:
    router = APIRouter(prefix="/vehicles", tags=["vehicles"])

    @router.get("/reports/verify", response_model=VerifyOut, responses=problem_responses(400, 404))
    def verify(
        payload: Annotated[str, Query(min_length=1, max_length=_PAYLOAD_MAX)],
    ) -> VerifyOut:
        """Check a printed report's QR payload against the ledger: refetch the car's first
        ``count`` events and recompute the digest. Malformed payloads are a 400 problem; a
        well-formed report that does not match is an answer (``authentic: false``)."""
        claim = parse_payload(payload)
        try:
            check = desk.verify(payload)
        except ReportError as e:
            if e.reason == "bad_report_payload":
                raise
            return VerifyOut(
                authentic=False,
                reason=e.reason,
                vin=claim.vin,
                count=claim.count,
                current_count=None,
                newer_events=None,
            )
        return VerifyOut(
            authentic=True,
            reason=None,
            vin=claim.vin,
            count=claim.count,
            current_count=check.current_count,
            newer_events=check.newer_events,
        )

    @router.get("/escrow", responses=problem_responses())
    def escrow() -> Response:
        """The escrow totals: deposited, held, released, refunded, paid."""
        return _json(desk.escrow())

    @router.get("/sales/{sale_id}", responses=problem_responses(404))
    def sale(sale_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
        """A sale: parties' keys, price, disclosure, status."""
        return _json(desk.sale(sale_id))

    @router.get("/records/{record_hash}", responses=problem_responses(404))
    def record(record_hash: Annotated[str, Path(pattern=HASH_PATTERN)]) -> Response:
        """An inspection record by the digest a seller disclosed (is it on the ledger, for
        which car, when, at what reading)."""
        found = desk.record(record_hash)
        if found is None:
            raise VehicleDeskError("no inspection recorded this record", reason="unknown_record")
        return _json(found)

    @router.get("/{vin}", responses=problem_responses(404))
    def vehicle(vin: Vin) -> Response:
        """The vehicle's record: owner key, owner count, odometer, discrepancy marks, open
        liens and seizures, open sale."""
        return _json(desk.vehicle(vin))

    @router.get("/{vin}/events", responses=problem_responses(404))
    def events(
        vin: Vin,
        after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    ) -> Response:
        """A page of the vehicle's events, oldest first: ``{"events", "next"}``."""
        desk.vehicle(vin)
        return _json(desk.events(vin, after=after, limit=limit))

    @router.get("/{vin}/report", responses=problem_responses(404))
    def report(vin: Vin, count: Count = None) -> Response:
        """The history report: owners counted (never named), mileage with flags, accidents,
        repairs, inspections, liens, and the QR payload that verifies it."""
        return _json(desk.report(vin, count=count).to_json())

    @router.get(
        "/{vin}/report.pdf",
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}}}, **problem_responses(404)},
    )
    def report_as_pdf(vin: Vin, count: Count = None) -> Response:
        """The printable report (Korean when the server has a Hangul font) with its QR code."""
        found = desk.report(vin, count=count)
        return Response(report_pdf(found, found.qr_payload), media_type="application/pdf")

    @router.get(
        "/{vin}/report/qr.png",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, **problem_responses(404)},
    )
    def report_qr(vin: Vin, count: Count = None) -> Response:
        """A PNG QR code of the report's payload."""
        found = desk.report(vin, count=count)
        return Response(qr_png(found.qr_payload), media_type="image/png")

    return router
