"""The used-car pages, thin over the node's ``VehicleDesk`` (``request.app.state.vehicles``).

Invariants:

- Everything shown is the ledger's, through the same desk the JSON API under
  ``/api/v1/vehicles`` uses: the report is ``services.vehicles.report.build_report`` of the
  car's events, the verdict is ``VehicleDesk.verify``. The pages compute only the chart's
  geometry.
- Owners are counted, never shown: not even their pseudonymous keys appear on the report page.
- The mileage chart is inline SVG drawn here (a polyline and one circle per reading, flagged
  readings marked by class; no inline styles, so the CSP holds), with the same readings as a
  table. The QR code is inline SVG of the verify page's URL holding the report's payload.
- Without a desk (a node serving the ledger only) every page says so, with status 503.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from civicledger.agency.vehicle_desk import VehicleDesk
from civicledger.errors import CivicError
from civicledger.services.identity.qr_image import qr_svg
from civicledger.services.vehicles.contract import VIN_PATTERN
from civicledger.services.vehicles.report import (
    MAX_REPORT_EVENTS,
    MileagePoint,
    parse_payload,
)
from civicledger.web.forms import refusal
from civicledger.web.portal import render, render_not_found
from civicledger.web.sections import PortalSection, package_section

__all__ = ["CHART_SIZE", "EXPLAINED_REASONS", "MileageChart", "mileage_chart", "section"]

SLUG = "vehicles"
CHART_SIZE = {"width": 640, "height": 240, "left": 72, "right": 12, "top": 12, "bottom": 28}
"""The chart's viewBox and margins, in SVG units."""
_VIN = re.compile(VIN_PATTERN)
_MAX_PAYLOAD = 200
_SPREAD = 12
"""Room kept at the right for readings that share the last time."""

EXPLAINED_REASONS = frozenset(
    {"bad_report_payload", "wrong_chain", "report_not_authentic", "unknown_vehicle"}
)
"""Reasons with a translated explanation (``vehicles.reason.<reason>``)."""


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    point: MileagePoint


@dataclass(frozen=True)
class MileageChart:
    """The mileage timeline: readings by time, flagged ones marked."""

    points: tuple[ChartPoint, ...]
    polyline: str
    """The ``points`` attribute of the line through the readings."""
    y_max: int
    first_ms: int
    last_ms: int

    @property
    def first_day(self) -> str:
        return _day(self.first_ms)

    @property
    def last_day(self) -> str:
        return _day(self.last_ms)


def _day(time_ms: int) -> str:
    return dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC).date().isoformat()


def mileage_chart(points: Sequence[MileagePoint]) -> MileageChart:
    """The chart of ``points`` (time → km). Pure. Readings at one time are spread a little
    so a cluster replacement's two readings both show."""
    size = CHART_SIZE
    left, right = size["left"], size["width"] - size["right"]
    top, bottom = size["top"], size["height"] - size["bottom"]
    if not points:
        return MileageChart((), "", 0, 0, 0)
    first, last = points[0].time_ms, points[-1].time_ms
    span = max(last - first, 1)
    y_max = max(*(p.km for p in points), 1)
    placed: list[ChartPoint] = []
    for point in points:
        x = left + (right - _SPREAD - left) * (point.time_ms - first) / span
        if placed and x <= placed[-1].x:
            x = min(placed[-1].x + 4, right)
        if len(points) == 1:
            x = (left + right) / 2
        y = bottom - (bottom - top) * point.km / y_max
        placed.append(ChartPoint(round(x, 1), round(y, 1), point))
    polyline = " ".join(f"{p.x},{p.y}" for p in placed)
    return MileageChart(tuple(placed), polyline, y_max, first, last)


# -- plumbing ----------------------------------------------------------------------------------


def _desk(request: Request) -> VehicleDesk | None:
    desk = getattr(request.app.state, "vehicles", None)
    return desk if isinstance(desk, VehicleDesk) else None


def _unavailable(request: Request) -> HTMLResponse:
    return render(request, "vehicles/unavailable.html", status_code=503)


def _verify_url(request: Request, payload: str) -> str:
    return f"{request.url_for('vehicle_verify')!s}?{urlencode({'payload': payload})}"


# -- the pages ---------------------------------------------------------------------------------

router = APIRouter()


@router.get("", response_class=HTMLResponse)
def index(request: Request, vin: str = "") -> Response:
    """Look up a car by VIN; a link to verify a printed report."""
    if _desk(request) is None:
        return _unavailable(request)
    asked = vin.strip().upper()[:32]
    if asked and _VIN.fullmatch(asked):
        return RedirectResponse(str(request.url_for("vehicle_report", vin=asked)), 303)
    return render(request, "vehicles/index.html", {"asked": asked})


@router.get("/verify", response_class=HTMLResponse, name="vehicle_verify")
def verify(request: Request, payload: str = "") -> HTMLResponse:
    """Verify a printed report by its QR payload (the QR code opens this page with it)."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    payload = payload.strip()[:_MAX_PAYLOAD]
    context: dict[str, object] = {"payload": payload, "check": None, "refusal": None}
    if payload:
        try:
            claim = parse_payload(payload)
            context["claim"] = claim
            context["check"] = desk.verify(payload)
        except CivicError as e:
            context["refusal"] = refusal(e, SLUG, EXPLAINED_REASONS)
    return render(request, "vehicles/verify.html", context)


@router.get("/{vin}", response_class=HTMLResponse, name="vehicle_report")
def report(request: Request, vin: str, count: int | None = None) -> HTMLResponse:
    """The history report: owner count, warnings, the mileage chart, accidents, repairs,
    inspections, liens; its QR code, print button and PDF."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    if not _VIN.fullmatch(vin):
        return render_not_found(request, vin[:32])
    if count is not None:
        count = min(max(count, 1), MAX_REPORT_EVENTS)
    try:
        found = desk.report(vin, count=count)
    except CivicError as e:
        if e.reason == "unknown_vehicle":
            return render_not_found(request, vin)
        raise
    verify_url = _verify_url(request, found.qr_payload)
    context = {
        "report": found,
        "chart": mileage_chart(found.mileage),
        "verify_url": verify_url,
        "qr": qr_svg(verify_url, scale=3, title=found.qr_payload),
        "pdf_url": f"{request.scope.get('root_path', '')}/api/v1/vehicles/{vin}/report.pdf"
        + ("" if count is None else f"?count={found.count}"),
    }
    return render(request, "vehicles/report.html", context)


def section() -> PortalSection:
    """The used-car pages at ``/vehicles``; ``install_portal`` adds them when a vehicle desk
    is set."""
    return package_section("civicledger.web.vehicles", router, nav_order=60)
