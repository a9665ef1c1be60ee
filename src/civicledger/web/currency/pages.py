"""The local-currency pages, thin over the node's ``CurrencyDesk`` (``request.app.state.currency``).

The JSON API under ``/api/v1/currencies`` calls the same desk, so a page and an endpoint cannot
disagree.

Invariants:

- Everything shown is the ledger's: definitions, totals, balances, lots, history, merchant
  records, settlement orders and daily figures come from the ``currency`` contract's queries;
  the checks are ``services.currency.report.reconciliation``'s. The pages compute only the
  charts' geometry.
- The portal never holds a key: the pay page checks a merchant's request and shows the exact
  ``currency.pay`` call the payer's wallet must sign, and nothing more.
- The daily charts are inline SVG drawn here (one ``rect`` per day and series, no inline
  styles, so the CSP holds), with the same figures as a table.
- Without a desk (a node serving the ledger only) every page says so, with status 503.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from civicledger.agency.currency_desk import CurrencyDesk
from civicledger.errors import CivicError
from civicledger.services.currency.contract import (
    CODE_PATTERN,
    CONTRACT_NAME,
    CURRENCY_ID_PATTERN,
    MAX_TOTAL,
)
from civicledger.services.currency.payment_request import MAX_QR_TEXT, payment_args
from civicledger.services.currency.report import Reconciliation, reconciliation
from civicledger.services.identity.qr_image import MAX_IMAGE_BYTES, decode_qr_image
from civicledger.web.forms import (
    PageInputError,
    Refusal,
    form_reader,
    refusal,
    upload,
)
from civicledger.web.portal import render, render_not_found
from civicledger.web.sections import PortalSection, package_section

__all__ = [
    "CHART_DAYS",
    "CHART_SIZE",
    "EXPLAINED_REASONS",
    "PAY_BODY_LIMIT",
    "PAY_PATH",
    "Bar",
    "BarChart",
    "bar_chart",
    "pay_command",
    "section",
]

SLUG = "currency"
PAY_PATH = f"/{SLUG}/pay"
PAY_BODY_LIMIT = MAX_IMAGE_BYTES + 64 * 1024
"""The pay form carries a photo of a QR code (at most ``MAX_IMAGE_BYTES``) and its text."""
CHART_DAYS = 14
CHART_SIZE = {"width": 640, "height": 220, "left": 64, "right": 8, "top": 12, "bottom": 28}
"""The charts' viewBox and margins, in SVG units."""
_CURRENCY_ID = re.compile(CURRENCY_ID_PATTERN)
_MERCHANT_ID = re.compile(CODE_PATTERN)
_DID = re.compile(r"^did:key:z[1-9A-HJ-NP-Za-km-z]{40,60}$")
_HISTORY_SHOWN = 50
_LOTS_SHOWN = 100
_MAX_FORM_FIELDS = 16
_TOTALS = ("minted", "burned", "expired", "supply", "reserve", "pending_settlement", "settled")
_FLOWS = ("minted", "redeemed", "expired")

EXPLAINED_REASONS = frozenset(
    {
        "bad_payment_request",
        "wrong_chain",
        "expired_request",
        "bad_signature",
        "unknown_currency",
        "unknown_merchant",
        "merchant_suspended",
        "account_mismatch",
        "bad_qr_image",
        "bad_request",
        "too_large",
    }
)
"""Reasons with a translated explanation (``currency.reason.<reason>``)."""


# -- the charts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One bar: one series' value on one day."""

    day: str
    series: str
    index: int
    """The series' position (its colour class, ``series-<index % 8>``)."""
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class BarChart:
    """Grouped bars: one group per day, one bar per series in each group."""

    days: tuple[str, ...]
    series: tuple[str, ...]
    bars: tuple[Bar, ...]
    rows: tuple[tuple[str, tuple[int, ...]], ...]
    """The same figures as a table: ``(day, values by series)``."""
    y_max: int
    size: Mapping[str, int]


def bar_chart(days: Sequence[str], series: Mapping[str, Sequence[int]]) -> BarChart:
    """The chart of ``series`` (name → one value per day of ``days``). Pure."""
    size = CHART_SIZE
    left, right = size["left"], size["width"] - size["right"]
    top, bottom = size["top"], size["height"] - size["bottom"]
    names = tuple(series)
    y_max = max([1, *(v for values in series.values() for v in values)])
    group = (right - left) / max(1, len(days))
    width = group * 0.8 / max(1, len(names))
    bars = []
    for d, day in enumerate(days):
        for s, name in enumerate(names):
            value = int(series[name][d])
            height = round(value / y_max * (bottom - top), 1)
            bars.append(
                Bar(
                    day=day,
                    series=name,
                    index=s,
                    value=value,
                    x=round(left + d * group + group * 0.1 + s * width, 1),
                    y=round(bottom - height, 1),
                    width=round(width, 1),
                    height=height,
                )
            )
    rows = tuple((day, tuple(int(series[name][d]) for name in names)) for d, day in enumerate(days))
    return BarChart(tuple(days), names, tuple(bars), rows, y_max, size)


def _last_days(today: dt.date, count: int) -> list[str]:
    return [(today - dt.timedelta(days=count - 1 - i)).isoformat() for i in range(count)]


def _charts(figures: Sequence[Mapping[str, Any]], days: list[str]) -> dict[str, BarChart]:
    by_day = {str(f["day"]): f for f in figures}
    categories = sorted({c for f in figures for c in f.get("spent_by_category") or {}})
    regions = sorted({r for f in figures for r in f.get("spent_by_region") or {}})

    def breakdown(name: str, keys: list[str]) -> dict[str, list[int]]:
        return {
            key: [int((by_day.get(day, {}).get(name) or {}).get(key, 0)) for day in days]
            for key in keys
        }

    flows = {key: [int(by_day.get(day, {}).get(key, 0)) for day in days] for key in _FLOWS}
    return {
        "category": bar_chart(days, breakdown("spent_by_category", categories)),
        "region": bar_chart(days, breakdown("spent_by_region", regions)),
        "flows": bar_chart(days, flows),
    }


# -- pay ----------------------------------------------------------------------------------------


def pay_command(currency_id: str, qr_text: str, amount: int | None) -> str:
    """The payer's command line: ``civic currency pay`` checks the request again and signs
    with the wallet's key for this currency (an open request needs ``--amount``)."""
    words = ["civic", "currency", "pay", currency_id, "--request", qr_text, "--wallet", "WALLET"]
    if amount is None:
        words += ["--amount", "AMOUNT"]
    return shlex.join(words)


def _refusal(error: CivicError) -> Refusal:
    return refusal(error, "currency", EXPLAINED_REASONS)


Form = Annotated[FormData, Depends(form_reader(_MAX_FORM_FIELDS))]


def _pasted(form: FormData) -> str:
    value = form.get("text")
    return value.strip() if isinstance(value, str) else ""


# -- plumbing ----------------------------------------------------------------------------------


def _desk(request: Request) -> CurrencyDesk | None:
    desk = getattr(request.app.state, "currency", None)
    return desk if isinstance(desk, CurrencyDesk) else None


def _unavailable(request: Request) -> HTMLResponse:
    return render(request, "currency/unavailable.html", status_code=503)


def _not_found(request: Request, error: CivicError, what: str) -> HTMLResponse:
    if error.reason in ("unknown_currency", "unknown_account", "unknown_merchant"):
        return render_not_found(request, what)
    raise error


def _totals(found: Any) -> dict[str, int]:
    record = found if isinstance(found, Mapping) else {}
    return {name: int(record.get(name, 0)) for name in _TOTALS}


# -- the pages ---------------------------------------------------------------------------------

router = APIRouter()


@router.get("", response_class=HTMLResponse)
def index(request: Request, currency_id: str = "") -> Response:
    """Open a currency's treasury view by id; the pay page."""
    if _desk(request) is None:
        return _unavailable(request)
    if currency_id and _CURRENCY_ID.fullmatch(currency_id):
        return RedirectResponse(str(request.url_for("treasury", currency_id=currency_id)), 303)
    return render(request, "currency/index.html", {"asked": currency_id[:64]})


def _pay_context(**values: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"checked": None, "refusal": None, "source": None, "text": ""}
    context.update(values)
    return context


@router.get("/pay", response_class=HTMLResponse)
def pay_page(request: Request) -> HTMLResponse:
    """Paste a merchant's ``civic-pay:`` text or upload a photo of its QR code."""
    if _desk(request) is None:
        return _unavailable(request)
    return render(request, "currency/pay.html", _pay_context())


@router.post("/pay", response_class=HTMLResponse)
def pay_submit(request: Request, form: Form) -> HTMLResponse:
    """The checked request and the ``pay`` call to sign, or the refusal with its reason (an
    answer, 200, as in the API's check)."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    text = _pasted(form)
    try:
        image = upload(form, "qr_image")
        if image is not None and text:
            raise PageInputError("give either the request's text or its QR image")
        if image is None and not text:
            raise PageInputError("give the request's text or its QR image")
        source = "text"
        if image is not None:
            source = "image"
            text = decode_qr_image(image).strip()
        if len(text) > MAX_QR_TEXT:
            raise PageInputError(f"a payment request is at most {MAX_QR_TEXT} characters")
        checked = desk.check_request(text, int(time.time() * 1000))
    except CivicError as e:
        context = _pay_context(refusal=_refusal(e), text=text[:MAX_QR_TEXT])
        return render(request, "currency/pay.html", context)
    pay = None if checked.request.amount is None else payment_args(checked.request)
    call = None if pay is None else {"contract": CONTRACT_NAME, "method": "pay", "args": pay}
    view = {
        "request": checked.request.to_json(),
        "signed": checked.request.signature is not None,
        "merchant": dict(checked.merchant),
        "call": call,
        "call_json": None if call is None else json.dumps(call, ensure_ascii=False, indent=2),
        "command": pay_command(checked.request.currency_id, text.strip(), checked.request.amount),
    }
    return render(request, "currency/pay.html", _pay_context(checked=view, source=source))


@router.get("/{currency_id}", response_class=HTMLResponse, name="treasury")
def treasury(request: Request, currency_id: str) -> HTMLResponse:
    """The treasury view: definition, totals with the checks, and 14 days of daily figures."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    if not _CURRENCY_ID.fullmatch(currency_id):
        return render_not_found(request, currency_id)
    try:
        definition = desk.currency(currency_id)
    except CivicError as e:
        return _not_found(request, e, currency_id)
    totals = _totals(desk.totals(currency_id))
    days = _last_days(dt.datetime.now(dt.UTC).date(), CHART_DAYS)
    found = desk.ledger.query(
        CONTRACT_NAME,
        "daily",
        {"currency_id": currency_id, "from_day": days[0], "to_day": days[-1], "limit": 366},
    )
    figures = [f for f in found if isinstance(f, Mapping)] if isinstance(found, list) else []
    today = next((f for f in figures if f.get("day") == days[-1]), None)
    report: Reconciliation = reconciliation(currency_id, days[-1], today, totals)
    context = {
        "currency": definition,
        "totals": totals,
        "report": report,
        "charts": _charts(figures, days),
        "days": days,
    }
    return render(request, "currency/treasury.html", context)


@router.get("/{currency_id}/accounts/{did}", response_class=HTMLResponse)
def wallet(request: Request, currency_id: str, did: str, after: int = 0) -> HTMLResponse:
    """The wallet view: balance, what is spendable now, lots by expiry, a page of history."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    if not _CURRENCY_ID.fullmatch(currency_id) or not _DID.fullmatch(did):
        return render_not_found(request, f"{currency_id[:64]} {did[:80]}")
    after = min(max(after, 0), MAX_TOTAL)
    try:
        definition = desk.currency(currency_id)
        balance = desk.balance(currency_id, did, lots=_LOTS_SHOWN)
    except CivicError as e:
        return _not_found(request, e, f"{currency_id} {did}")
    page = desk.history(currency_id, did, after=after, limit=_HISTORY_SHOWN)
    now_ms = int(time.time() * 1000)
    lots = [
        {**lot, "expired": lot["expires_ms"] <= now_ms}
        for lot in balance.get("lots") or []
        if lot.get("remaining", 0) > 0
    ]
    context = {
        "currency": definition,
        "account": balance,
        "did": did,
        "lots": lots,
        "entries": page.get("entries") or [],
        "next": page.get("next"),
        "after": after,
    }
    return render(request, "currency/wallet.html", context)


@router.get("/{currency_id}/merchants/{merchant_id}", response_class=HTMLResponse)
def merchant(request: Request, currency_id: str, merchant_id: str) -> HTMLResponse:
    """The merchant view: its record, balance and pending settlement orders."""
    desk = _desk(request)
    if desk is None:
        return _unavailable(request)
    if not _CURRENCY_ID.fullmatch(currency_id) or not _MERCHANT_ID.fullmatch(merchant_id):
        return render_not_found(request, f"{currency_id[:64]} {merchant_id[:64]}")
    try:
        definition = desk.currency(currency_id)
        view = desk.merchant_view(currency_id, merchant_id)
    except CivicError as e:
        return _not_found(request, e, f"{currency_id} {merchant_id}")
    orders = view["pending_orders"]
    context = {
        "currency": definition,
        "merchant": view["merchant"],
        "balance": view["balance"],
        "orders": orders["orders"],
        "pending_total": sum(int(o["amount"]) for o in orders["orders"]),
        "more_orders": orders["next"] is not None,
    }
    return render(request, "currency/merchant.html", context)


def section() -> PortalSection:
    """The currency pages at ``/currency``; ``install_portal`` adds them when a currency desk
    is set."""
    return package_section("civicledger.web.currency", router, nav_order=40)
