"""The poll pages, thin over the node's ``PollDesk`` (``request.app.state.polls``).

The JSON API under ``/api/v1/polls`` calls the same desk, and the dashboard's script refetches
from it, so the page as rendered and the page as updated live cannot disagree.

Invariants:

- Everything shown is the ledger's: definitions, turnout, tallies and results come from the
  ``polls`` contract's queries, never from the page's own arithmetic beyond percentages and the
  chart's geometry.
- A secret poll's choices are never shown: its tally is the contract's, which is null until a
  result whose every count matches the trustees' combined decryption has been published.
- The turnout chart is drawn here, as SVG, for readers without scripts, with a table of the
  same points beside it; ``polls.js`` redraws it with the same geometry (``turnout_chart``).
- Without a desk (a node serving the ledger only) every page says so, with status 503.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from civicledger.agency.poll_desk import PollDesk
from civicledger.crypto.encoding import sha256
from civicledger.errors import CivicError
from civicledger.node.embedded import EmbeddedNode
from civicledger.web.portal import render, render_not_found
from civicledger.web.sections import PortalSection, package_section

__all__ = [
    "CHART_SIZE",
    "Chart",
    "ChartPoint",
    "key_fingerprint",
    "percent",
    "section",
    "turnout_chart",
]

_POLL_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
_POLLS_SHOWN = 100
_SERIES_SHOWN = 1000
"""The contract's page size: a dashboard shows the first 1000 changes of turnout."""
_KNOWN_TYPES = frozenset({"ResidentCard", "FamilyLoveCard", "Qualification", "VisitorPass"})
"""Credential types with a translated name (``polls.type.<lowercase>``)."""
_PHASES = frozenset({"joining", "dealing", "checking", "ready", "failed"})

CHART_SIZE = {"width": 640, "height": 240, "left": 48, "right": 16, "top": 16, "bottom": 28}
"""The chart's viewBox and margins, in SVG units; ``polls.js`` reads them from the page."""


# -- the chart ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartPoint:
    """One entry of the contract's ``series``: turnout after a block that changed it."""

    time_ms: int
    voted: int
    x: float
    y: float


@dataclass(frozen=True)
class Chart:
    """Turnout over time as SVG geometry: a step line through one point per series entry."""

    points: tuple[ChartPoint, ...]
    line: str
    """``<polyline points=...>``: from (start, 0) stepping up at each point."""
    y_max: int
    """The top of the scale: the registered voters (at least the highest turnout, at least 1)."""
    start_ms: int
    end_ms: int
    size: Mapping[str, int]


def _scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    span = high - low
    share = (value - low) / span if span > 0 else 0.0
    return round(out_low + share * (out_high - out_low), 1)


def turnout_chart(series: Sequence[Mapping[str, int]], start_ms: int, registered: int) -> Chart:
    """The chart of ``series`` (``[{"time_ms", "voted"}]``, by time) from ``start_ms`` (the
    poll's opening) to the last point; the vertical scale runs from 0 to ``registered``.

    Pure: ``polls.js`` computes the same geometry from the same inputs.
    """
    size = CHART_SIZE
    left, right = size["left"], size["width"] - size["right"]
    top, bottom = size["top"], size["height"] - size["bottom"]
    voted = [int(p["voted"]) for p in series]
    times = [int(p["time_ms"]) for p in series]
    y_max = max([registered, 1, *voted])
    start = min([start_ms, *times])
    end = max([start + 1, *times])

    def x(t: int) -> float:
        return _scale(t, start, end, left, right)

    def y(v: int) -> float:
        return _scale(v, 0, y_max, bottom, top)

    points = tuple(ChartPoint(t, v, x(t), y(v)) for t, v in zip(times, voted, strict=True))
    line = [(x(start), y(0))]
    previous = 0
    for point in points:
        line += [(point.x, y(previous)), (point.x, point.y)]
        previous = point.voted
    text = " ".join(f"{px:g},{py:g}" for px, py in line)
    return Chart(points, text, y_max, start, end, size)


# -- views -------------------------------------------------------------------------------------


def percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` in percent, rounded down to one decimal (as ``polls.js`` does)."""
    if whole <= 0:
        return "0.0"
    tenths = part * 1000 // whole
    return f"{tenths // 10}.{tenths % 10}"


def key_fingerprint(public_key_hex: str) -> str:
    """What people compare: the first 16 bytes of SHA-256 of the poll's public key, in groups
    of four hex digits."""
    digest = sha256(bytes.fromhex(public_key_hex)).hex()[:32]
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def _districts(turnout: Mapping[str, Any], tally: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    by_district: Mapping[str, Any] = turnout.get("by_district") or {}
    counts: Mapping[str, Any] = (tally or {}).get("by_district") or {}
    rows = []
    for name in sorted(by_district):
        record = by_district[name]
        rows.append(
            {
                "district": name,
                "registered": record["registered"],
                "voted": record["voted"],
                "percent": percent(record["voted"], record["registered"]),
                "counts": counts.get(name),
            }
        )
    return rows


def _trustees(desk: PollDesk, poll: Mapping[str, Any]) -> list[dict[str, Any]]:
    if poll["mode"] != "secret":
        return []
    found = desk.trustees(str(poll["poll_id"]))
    return [
        {
            "index": t["index"],
            "did": t["did"],
            "joined": t.get("box_key") is not None,
            "dealt": t.get("commitments") is not None,
            "acked": bool(t.get("acked")),
            "complaints": list(t.get("complaints") or []),
        }
        for t in (found if isinstance(found, list) else [])
    ]


def _credential_label(credential_type: str) -> str | None:
    if credential_type not in _KNOWN_TYPES:
        return None
    return f"polls.type.{credential_type.lower()}"


# -- plumbing ----------------------------------------------------------------------------------


def _desk(request: Request) -> PollDesk | None:
    desk = getattr(request.app.state, "polls", None)
    return desk if isinstance(desk, PollDesk) else None


def _unavailable(request: Request) -> HTMLResponse:
    return render(request, "polls/unavailable.html", status_code=503)


def _height(request: Request) -> int:
    return cast(EmbeddedNode, request.app.state.node).chain.height


# -- the pages ---------------------------------------------------------------------------------

router = APIRouter()


@router.get("", response_class=HTMLResponse)
def poll_list(request: Request, after: str = "") -> HTMLResponse:
    """Every poll (100 a page): mode, phase, status, schedule and turnout."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    if after and not _POLL_ID.fullmatch(after):
        after = ""
    page = desk.polls(after=after, limit=_POLLS_SHOWN)
    rows = []
    for poll in page.get("polls", []) if isinstance(page, Mapping) else []:
        turnout = desk.turnout(poll["poll_id"]) or {"total_registered": 0, "voted": 0}
        rows.append(
            {
                "poll": poll,
                "registered": turnout["total_registered"],
                "voted": turnout["voted"],
                "percent": percent(turnout["voted"], turnout["total_registered"]),
            }
        )
    following = page.get("next") if isinstance(page, Mapping) else None
    context = {"rows": rows, "next": following, "phases": _PHASES}
    return render(request, "polls/index.html", context)


@router.get("/{poll_id}", response_class=HTMLResponse)
def dashboard(request: Request, poll_id: str) -> HTMLResponse:
    """One poll's dashboard, rendered complete for readers without scripts; ``polls.js``
    keeps it current from the event stream."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    if not _POLL_ID.fullmatch(poll_id):
        return render_not_found(request, poll_id)
    height = _height(request)  # Before the reads: the stream replays anything after it.
    try:
        poll = desk.poll(poll_id)
    except CivicError as e:
        if e.reason == "unknown_poll":
            return render_not_found(request, poll_id)
        raise
    turnout = desk.turnout(poll_id) or {"total_registered": 0, "voted": 0, "by_district": {}}
    tally = desk.tally(poll_id)
    series = desk.series(poll_id, limit=_SERIES_SHOWN) or []
    chart = turnout_chart(series, poll["opens_ms"], turnout["total_registered"])
    public_key = poll.get("public_key")
    context = {
        "poll": poll,
        "height": height,
        "turnout": turnout,
        "turnout_percent": percent(turnout["voted"], turnout["total_registered"]),
        "tally": tally,
        "counts": (tally or {}).get("counts"),
        "percent": percent,
        "districts": _districts(turnout, tally),
        "chart": chart,
        "trustees": _trustees(desk, poll),
        "phase_known": poll.get("phase") in _PHASES,
        "phases": _PHASES,
        "credential_label": _credential_label(poll["eligibility"]["credential_type"]),
        "fingerprint": key_fingerprint(public_key) if public_key else None,
        "script_data": {
            "poll_id": poll_id,
            "mode": poll["mode"],
            "height": height,
            "opens_ms": poll["opens_ms"],
            "closes_ms": poll["closes_ms"],
            "size": CHART_SIZE,
        },
    }
    return render(request, "polls/dashboard.html", context)


def section() -> PortalSection:
    """The poll pages at ``/polls``; ``install_portal`` adds them when a poll desk is set."""
    return package_section("civicledger.web.polls", router, nav_order=30)
