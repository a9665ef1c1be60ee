"""The public-works pages, thin over the node's ``WorksDesk`` (``request.app.state.works``).

The JSON API under ``/api/v1/works`` calls the same desk, so a page and an endpoint cannot
disagree.

Invariants:

- Everything shown is the ledger's (the ``works`` contract's queries through the desk); the
  pages compute only the split bars' geometry (``split_bars``, pure).
- The portal never holds a key and sends nothing: approvals, releases and payouts are signed
  by their signers (``civic works`` or ``POST /api/v1/tx``).
- A worker checks their wage by the pseudonym or account reference they were given; the page
  asks the ledger for nothing else (no name, no account number is ever typed in).
- Without a desk (a node serving the ledger only) every page says so, with status 503.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from civicledger.agency.works_desk import WorksDesk
from civicledger.errors import CivicError
from civicledger.services.works.contract import ID_PATTERN, LINE_KINDS
from civicledger.web.portal import render, render_not_found
from civicledger.web.sections import PortalSection, package_section

__all__ = ["SplitBar", "section", "split_bars"]

BAR_WIDTH = 600
"""The split bar's viewBox width, in SVG units."""
_ID = re.compile(ID_PATTERN)
_KINDS = (*LINE_KINDS, "prime")


@dataclass(frozen=True)
class SplitBar:
    """One kind's segment of a stage's split bar."""

    kind: str
    value: int
    x: float
    width: float


def split_bars(by_kind: Mapping[str, int], amount: int) -> tuple[SplitBar, ...]:
    """Segments of one bar of ``BAR_WIDTH`` for the stage ``amount``, one per kind with a
    value, left to right in ``_KINDS`` order; what is left of the bar is unclaimed. Pure."""
    if amount <= 0:
        return ()
    bars = []
    x = 0.0
    for kind in _KINDS:
        value = int(by_kind.get(kind, 0))
        if value <= 0:
            continue
        width = round(BAR_WIDTH * value / amount, 2)
        bars.append(SplitBar(kind, value, round(x, 2), width))
        x += width
    return tuple(bars)


def _desk(request: Request) -> WorksDesk | None:
    desk = getattr(request.app.state, "works", None)
    return desk if isinstance(desk, WorksDesk) else None


def _unavailable(request: Request) -> HTMLResponse:
    return render(request, "works/unavailable.html", status_code=503)


router = APIRouter()


@router.get("", response_class=HTMLResponse)
def index(request: Request, after: str = "") -> HTMLResponse:
    """The works contracts with their escrow figures; the wage check; alert and overdue counts."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    page = desk.contracts(after=after[:64] if _ID.fullmatch(after) else "", limit=50)
    context = {
        "contracts": page["contracts"],
        "next": page["next"],
        "alerts": len(desk.alerts(limit=500)["alerts"]),
        "overdue": len(desk.overdue(limit=500)),
    }
    return render(request, "works/index.html", context)


@router.get("/wage", response_class=HTMLResponse)
def wage(request: Request, ref: str = "") -> HTMLResponse:
    """Check my wage: the payout orders to a pseudonym or account reference."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    asked = ref.strip().lower()[:64]
    found = None
    bad = False
    if asked:
        try:
            found = desk.payments(asked)
        except CivicError:
            bad = True
    return render(request, "works/wage.html", {"asked": asked, "found": found, "bad": bad})


@router.get("/alerts", response_class=HTMLResponse)
def alerts(request: Request) -> HTMLResponse:
    """Late-payment alerts (kept after payment) and the stages overdue now."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    context = {"alerts": desk.alerts(limit=500)["alerts"], "overdue": desk.overdue(limit=500)}
    return render(request, "works/alerts.html", context)


@router.get("/contracts/{contract_id}", response_class=HTMLResponse)
def contract(request: Request, contract_id: str) -> HTMLResponse:
    """A contract: escrow, stages with the split as bars and a table, approvals, payouts per
    party and late alerts."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    if not _ID.fullmatch(contract_id):
        return render_not_found(request, contract_id[:64])
    try:
        view: dict[str, Any] = desk.contract_view(contract_id)
    except CivicError as e:
        if e.reason == "unknown_works_contract":
            return render_not_found(request, contract_id)
        raise
    for stage in view["stages"]:
        stage["bars"] = split_bars(stage["by_kind"], int(stage["amount"]))
    return render(request, "works/contract.html", {**view, "kinds": _KINDS, "bar_width": BAR_WIDTH})


def section() -> PortalSection:
    """The works pages at ``/works``; ``install_portal`` adds them when a works desk is set."""
    return package_section("civicledger.web.works", router, nav_order=80)
