"""The donations pages, thin over the node's ``DonationDesk`` (``request.app.state.donations``).

The JSON API under ``/api/v1/donations`` calls the same desk, so a page and an endpoint cannot
disagree.

Invariants:

- Everything shown is the ledger's (the ``donations`` and ``currency`` contracts' queries,
  traced by ``services.donations.trace``); the pages compute only the bars' geometry.
- A donor's receipt secret is posted in a form body (never in a URL) and never echoed back.
- Bars are inline SVG (``rect`` widths, no inline styles, so the CSP holds), with the same
  figures as text.
- Without a desk (a node serving the ledger only) every page says so, with status 503.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from civicledger.agency.donation_desk import DonationDesk
from civicledger.errors import CivicError
from civicledger.services.donations.contract import CODE_PATTERN
from civicledger.web.forms import form_reader, refusal, text_field
from civicledger.web.portal import render, render_not_found
from civicledger.web.sections import PortalSection, package_section

__all__ = ["BAR_WIDTH", "EXPLAINED_REASONS", "Progress", "progress", "section"]

SLUG = "donations"
BAR_WIDTH = 200
"""The progress bars' viewBox width, in SVG units."""
_CAMPAIGN_ID = re.compile(CODE_PATTERN)
_MAX_FORM_FIELDS = 4
_MAX_RECEIPT = 200

EXPLAINED_REASONS = frozenset({"unknown_donor", "bad_request"})
"""Reasons with a translated explanation (``donations.reason.<reason>``)."""


@dataclass(frozen=True)
class Progress:
    """A campaign's raised and disbursed amounts as bar widths against its goal (or against
    what was raised, when that is more)."""

    raised: int
    disbursed: int
    goal: int
    raised_width: float
    disbursed_width: float
    percent: int
    """Raised as a percentage of the goal (may pass 100)."""


def progress(raised: int, disbursed: int, goal: int) -> Progress:
    """The bars of one campaign. Pure."""
    scale = max(goal, raised, 1)
    return Progress(
        raised=raised,
        disbursed=disbursed,
        goal=goal,
        raised_width=round(raised / scale * BAR_WIDTH, 1),
        disbursed_width=round(disbursed / scale * BAR_WIDTH, 1),
        percent=raised * 100 // max(goal, 1),
    )


def _desk(request: Request) -> DonationDesk | None:
    desk = getattr(request.app.state, "donations", None)
    return desk if isinstance(desk, DonationDesk) else None


def _unavailable(request: Request) -> HTMLResponse:
    return render(request, "donations/unavailable.html", status_code=503)


def _bars(campaign: Mapping[str, Any]) -> Progress:
    return progress(int(campaign["donated"]), int(campaign["disbursed"]), int(campaign["goal"]))


Form = Annotated[FormData, Depends(form_reader(_MAX_FORM_FIELDS))]
router = APIRouter()


@router.get("", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    """Every campaign with its raised and disbursed bars."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    campaigns = [{**c, "bars": _bars(c)} for c in desk.campaigns()]
    charities = {c["charity_id"]: c for c in desk.charities()}
    context = {"campaigns": campaigns, "charities": charities, "bar_width": BAR_WIDTH}
    return render(request, "donations/index.html", context)


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse, name="donation_campaign")
def campaign(request: Request, campaign_id: str) -> HTMLResponse:
    """A campaign's flows: its donations, its disbursements (FIFO shares, help-coin funding)
    and where its help coin went, by merchant category."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    if not _CAMPAIGN_ID.fullmatch(campaign_id):
        return render_not_found(request, campaign_id[:64])
    try:
        book = desk.ledger_of(campaign_id)
        traced = desk.trace_campaign(campaign_id)
    except CivicError as e:
        if e.reason == "unknown_campaign":
            return render_not_found(request, campaign_id)
        raise
    record = book["campaign"]
    context = {
        "campaign": record,
        "charity": desk.charity(record["charity_id"]),
        "bars": _bars(record),
        "bar_width": BAR_WIDTH,
        "donations": book["donations"],
        "rows": traced["disbursements"],
        "coin": traced["coin"],
    }
    return render(request, "donations/campaign.html", context)


def _trace_context(**values: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"tree": None, "refusal": None}
    context.update(values)
    return context


@router.get("/trace", response_class=HTMLResponse)
def trace_page(request: Request) -> HTMLResponse:
    """Type the receipt secret (or its 64-hex commitment) printed for the donor."""
    if _desk(request) is None:
        return _unavailable(request)
    return render(request, "donations/trace.html", _trace_context())


@router.post("/trace", response_class=HTMLResponse)
def trace_submit(request: Request, form: Form) -> HTMLResponse:
    """The donation's tree down to help-coin spending by merchant category, or why not."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    receipt = text_field(form, "receipt")
    if not receipt or len(receipt) > _MAX_RECEIPT:
        bad = CivicError(f"a receipt is 1 to {_MAX_RECEIPT} characters", reason="bad_request")
        context = _trace_context(refusal=refusal(bad, SLUG, EXPLAINED_REASONS))
        return render(request, "donations/trace.html", context)
    try:
        tree = desk.trace_donor(receipt)
    except CivicError as e:
        context = _trace_context(refusal=refusal(e, SLUG, EXPLAINED_REASONS))
        return render(request, "donations/trace.html", context)
    return render(request, "donations/trace.html", _trace_context(tree=tree))


def section() -> PortalSection:
    """The donations pages at ``/donations``; ``install_portal`` adds them when a donations
    desk is set."""
    return package_section("civicledger.web.donations", router, nav_order=70)
