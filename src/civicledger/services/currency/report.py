"""The daily reconciliation report of a currency: pure, no I/O, no clock.

``reconciliation(day_figures, totals)`` takes one record of the contract's ``daily`` query (or
``None`` for a day without activity) and the ``totals`` query, checks them, and returns a frozen
``Reconciliation``. Every figure is an integer number of won; a float, a bool, a negative or a
missing figure is refused (``ReportError``, reason ``bad_figures``) rather than reported.

The checks are named and each carries its verdict and a detail line; ``require_ok`` raises
``ReconciliationFailed`` when one fails (a caller that publishes the report should still call it,
so a broken ledger view never passes silently):

- ``supply_identity``: ``supply == minted - burned - expired`` (totals);
- ``reserve_backing``: ``reserve >= supply + pending_settlement`` (totals);
- ``day_spent_by_category`` / ``day_spent_by_region``: the day's spending by category and by
  region each sum to the day's ``spent``;
- ``day_backing``: at the end of the day ``reserve >= supply``.

The CSV form is one table ``section,key,value`` whose values are integers only (a check is
``1`` when it holds, ``0`` when not; its detail is in the JSON form only).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from civicledger.errors import CivicError

__all__ = ["Check", "Reconciliation", "ReconciliationFailed", "ReportError", "reconciliation"]

_DAY_FIGURES = ("minted", "spent", "b2b", "p2p", "redeemed", "settled", "expired")
_DAY_BALANCES = ("supply", "reserve")
_TOTALS = ("minted", "burned", "expired", "supply", "reserve", "pending_settlement", "settled")
_DATE_LENGTH = 10


class ReportError(CivicError):
    """The figures given to the report are malformed (missing, negative, not integers)."""

    reason = "bad_figures"


class ReconciliationFailed(CivicError):  # noqa: N818  (reads as the verdict, like TxRejected)
    """A reconciliation check failed: the ledger's figures do not add up."""

    reason = "reconciliation_failed"


@dataclass(frozen=True, slots=True)
class Check:
    """One named reconciliation check."""

    name: str
    """A stable identifier (``supply_identity``, ``reserve_backing``, …)."""
    ok: bool
    """Whether the check holds."""
    detail: str
    """The compared figures, for a human."""


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """A currency's figures for one UTC day, the running totals and the checks on them."""

    currency_id: str
    """The currency reported on."""
    day: str
    """The UTC day, ``YYYY-MM-DD``."""
    minted: int
    """Won minted that day (mints, batches, purchases with their bonus, reward points)."""
    spent: int
    """Won holders paid to merchants that day."""
    spent_by_category: tuple[tuple[str, int], ...]
    """``spent`` by merchant category, sorted by category."""
    spent_by_region: tuple[tuple[str, int], ...]
    """``spent`` by merchant region, sorted by region."""
    b2b: int
    """Won merchants paid to merchants that day."""
    p2p: int
    """Won holders paid to holders that day."""
    redeemed: int
    """Won merchants redeemed (burned for a settlement order) that day."""
    settled: int
    """Won the custodian bank paid out on settlement orders that day."""
    expired: int
    """Won of expired lots returned to the issuer that day."""
    supply: int
    """Outstanding supply at the end of the day (after its last transaction)."""
    reserve: int
    """Attested reserve at the end of the day."""
    totals: tuple[tuple[str, int], ...]
    """The running totals at the ledger head (minted, burned, expired, supply, reserve,
    pending_settlement, settled), in that order."""
    checks: tuple[Check, ...]
    """The checks, in a fixed order."""

    @property
    def ok(self) -> bool:
        """Whether every check holds."""
        return all(check.ok for check in self.checks)

    def require_ok(self) -> None:
        """Raise ``ReconciliationFailed`` naming every failed check."""
        failed = [f"{check.name} ({check.detail})" for check in self.checks if not check.ok]
        if failed:
            raise ReconciliationFailed(f"{self.currency_id} on {self.day}: " + "; ".join(failed))

    def rows(self) -> list[tuple[str, str, int]]:
        """The report as ``(section, key, value)`` rows, every value an integer."""
        day = [(name, int(getattr(self, name))) for name in (*_DAY_FIGURES, *_DAY_BALANCES)]
        return [
            *(("day", key, value) for key, value in day),
            *(("spent_by_category", key, value) for key, value in self.spent_by_category),
            *(("spent_by_region", key, value) for key, value in self.spent_by_region),
            *(("totals", key, value) for key, value in self.totals),
            *(("check", check.name, int(check.ok)) for check in self.checks),
        ]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "currency_id": self.currency_id,
            "day": self.day,
            **{name: getattr(self, name) for name in (*_DAY_FIGURES, *_DAY_BALANCES)},
            "spent_by_category": dict(self.spent_by_category),
            "spent_by_region": dict(self.spent_by_region),
            "totals": dict(self.totals),
            "checks": [
                {"name": check.name, "ok": check.ok, "detail": check.detail}
                for check in self.checks
            ],
            "ok": self.ok,
        }

    def to_json(self) -> str:
        """The report as indented JSON (keys in a fixed order)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"

    def to_csv(self) -> str:
        """The report as CSV: a ``section,key,value`` header, then one row per figure."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(("section", "key", "value"))
        writer.writerows(self.rows())
        return buffer.getvalue()


def reconciliation(
    currency_id: str, day: str, day_figures: Mapping[str, Any] | None, totals: Mapping[str, Any]
) -> Reconciliation:
    """Build and check the report of ``currency_id`` on ``day``.

    ``day_figures`` is the ``daily`` query's record of that day, or ``None`` when nothing happened
    that day (its figures are then zero and its end-of-day balances those of ``totals``; a caller
    reporting a past quiet day should pass the last earlier record's balances instead).
    """
    if len(day) != _DATE_LENGTH:
        raise ReportError(f"{day[:40]!r} is not a YYYY-MM-DD day")
    running = {name: _figure(totals, name, "totals") for name in _TOTALS}
    if day_figures is None:
        day_figures = {
            **dict.fromkeys(_DAY_FIGURES, 0),
            "day": day,
            "spent_by_category": {},
            "spent_by_region": {},
            "supply": running["supply"],
            "reserve": running["reserve"],
        }
    if day_figures.get("day") != day:
        raise ReportError(f"the figures are of {day_figures.get('day')!r}, not of {day!r}")
    figures = {name: _figure(day_figures, name, day) for name in (*_DAY_FIGURES, *_DAY_BALANCES)}
    by_category = _breakdown(day_figures, "spent_by_category", day)
    by_region = _breakdown(day_figures, "spent_by_region", day)
    checks = (
        _check_equal(
            "supply_identity",
            "supply",
            running["supply"],
            "minted - burned - expired",
            running["minted"] - running["burned"] - running["expired"],
        ),
        _check_at_least(
            "reserve_backing",
            "reserve",
            running["reserve"],
            "supply + pending_settlement",
            running["supply"] + running["pending_settlement"],
        ),
        _check_equal(
            "day_spent_by_category",
            "spent",
            figures["spent"],
            "the sum by category",
            sum(value for _, value in by_category),
        ),
        _check_equal(
            "day_spent_by_region",
            "spent",
            figures["spent"],
            "the sum by region",
            sum(value for _, value in by_region),
        ),
        _check_at_least("day_backing", "reserve", figures["reserve"], "supply", figures["supply"]),
    )
    return Reconciliation(
        currency_id=currency_id,
        day=day,
        spent_by_category=by_category,
        spent_by_region=by_region,
        totals=tuple(running.items()),
        checks=checks,
        **figures,
    )


def _figure(record: Mapping[str, Any], name: str, where: str) -> int:
    value = record.get(name)
    if type(value) is not int:
        raise ReportError(f"{name} of {where} is {value!r}, not an integer")
    if value < 0:
        raise ReportError(f"{name} of {where} is negative ({value})")
    return value


def _breakdown(record: Mapping[str, Any], name: str, where: str) -> tuple[tuple[str, int], ...]:
    values = record.get(name)
    if not isinstance(values, Mapping):
        raise ReportError(f"{name} of {where} is not a mapping")
    for key in values:
        if not isinstance(key, str) or not key:
            raise ReportError(f"{name} of {where} has a key {key!r}")
    return tuple((key, _figure(values, key, f"{name} of {where}")) for key in sorted(values))


def _check_equal(name: str, left: str, left_value: int, right: str, right_value: int) -> Check:
    ok = left_value == right_value
    relation = "==" if ok else "!="
    return Check(name, ok, f"{left} {left_value} {relation} {right} {right_value}")


def _check_at_least(name: str, left: str, left_value: int, right: str, right_value: int) -> Check:
    ok = left_value >= right_value
    relation = ">=" if ok else "<"
    return Check(name, ok, f"{left} {left_value} {relation} {right} {right_value}")
