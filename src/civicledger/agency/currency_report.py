"""Gather a currency's reconciliation report and fraud flags from a ledger (read-only).

``daily_report`` reads the ``daily`` record of one UTC day and the ``totals`` and builds the
``Reconciliation`` (``civicledger.services.currency.report``). For a day without activity the
end-of-day balances are those of the last earlier day with activity (or zero).

``gather_transfers`` reads every account of the currency (``accounts`` pages) and, per account,
its ``history`` entries since a time: a binary search over the account's sequence numbers finds
the first entry at or after ``since_ms`` (history is in block order, so times never decrease),
then pages forward. Only the payer's side of each movement is kept (``paid``, ``redeemed``), so
every transfer appears once. Reading is bounded: more than ``max_entries`` entries in all is
refused (``history_too_large``) rather than reported on a partial view.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from civicledger.errors import CivicError
from civicledger.services.currency.contract import CONTRACT_NAME, MAX_PAGE
from civicledger.services.currency.fraud import Flag, Transfer, TransferKind, find_cash_out_rings
from civicledger.services.currency.report import Reconciliation, reconciliation

__all__ = ["MAX_ENTRIES", "daily_report", "fraud_flags", "gather_transfers"]

MAX_ENTRIES = 500_000
"""History entries read for one run of the flags, at most."""
_PAGE = MAX_PAGE


class Reader(Protocol):
    """A ledger that answers contract queries at its head (``Chain``, ``CityLedger``, …)."""

    def query(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        """A contract query at the head."""


def _totals(ledger: Reader, currency_id: str) -> dict[str, Any]:
    totals = ledger.query(CONTRACT_NAME, "totals", {"currency_id": currency_id})
    if totals is None:
        raise CivicError(f"there is no currency {currency_id!r}", reason="unknown_currency")
    return dict(totals)


def daily_report(ledger: Reader, currency_id: str, day: str) -> Reconciliation:
    """The reconciliation report of ``currency_id`` on the UTC ``day`` (``YYYY-MM-DD``)."""
    totals = _totals(ledger, currency_id)
    days = ledger.query(
        CONTRACT_NAME,
        "daily",
        {"currency_id": currency_id, "from_day": day, "to_day": day, "limit": 1},
    )
    figures = days[0] if days and days[0]["day"] == day else None
    if figures is None:
        figures = _quiet_day(ledger, currency_id, day)
    return reconciliation(currency_id, day, figures, totals)


def _quiet_day(ledger: Reader, currency_id: str, day: str) -> dict[str, Any]:
    """A day without activity: zero flows, the balances of the last earlier active day."""
    last: dict[str, Any] = {"supply": 0, "reserve": 0}
    after = "0000-00-00"
    while True:
        page = ledger.query(
            CONTRACT_NAME,
            "daily",
            {"currency_id": currency_id, "from_day": after, "to_day": day, "limit": _PAGE},
        )
        earlier = [record for record in page if record["day"] < day and record["day"] > after]
        if earlier:
            last = earlier[-1]
        if len(page) < _PAGE or not earlier:
            break
        after = earlier[-1]["day"]
    flows = ("minted", "spent", "b2b", "p2p", "redeemed", "settled", "expired")
    return {
        "day": day,
        **dict.fromkeys(flows, 0),
        "spent_by_category": {},
        "spent_by_region": {},
        "supply": last["supply"],
        "reserve": last["reserve"],
    }


def _accounts(ledger: Reader, currency_id: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    after = ""
    while True:
        page = ledger.query(
            CONTRACT_NAME, "accounts", {"currency_id": currency_id, "after": after, "limit": _PAGE}
        )
        found.update({record["account"]: record for record in page["accounts"]})
        if page["next"] is None:
            return found
        after = page["next"]


def _history(ledger: Reader, currency_id: str, account: str, after: int, limit: int) -> Any:
    args = {"currency_id": currency_id, "account": account, "after": after, "limit": limit}
    return ledger.query(CONTRACT_NAME, "history", args)


def _first_seq_since(
    ledger: Reader, currency_id: str, account: str, count: int, since_ms: int
) -> int:
    """The lowest sequence number whose entry is at or after ``since_ms`` (``count + 1``: none)."""
    low, high = 1, count + 1
    while low < high:
        middle = (low + high) // 2
        (entry,) = _history(ledger, currency_id, account, middle - 1, 1)["entries"]
        if entry["time_ms"] >= since_ms:
            high = middle
        else:
            low = middle + 1
    return low


def gather_transfers(
    ledger: Reader, currency_id: str, since_ms: int, *, max_entries: int = MAX_ENTRIES
) -> list[Transfer]:
    """Every payment and redemption of ``currency_id`` at or after ``since_ms``."""
    _totals(ledger, currency_id)
    accounts = _accounts(ledger, currency_id)
    transfers: list[Transfer] = []
    read = 0
    for did in sorted(accounts):
        count = accounts[did]["history"]
        after = _first_seq_since(ledger, currency_id, did, count, since_ms) - 1
        while after < count:
            page = _history(ledger, currency_id, did, after, _PAGE)
            read += len(page["entries"])
            if read > max_entries:
                raise CivicError(
                    f"more than {max_entries} history entries since the start; use fewer days",
                    reason="history_too_large",
                )
            transfers.extend(
                _transfer(did, entry, accounts)
                for entry in page["entries"]
                if entry["kind"] in ("paid", "redeemed")
            )
            if page["next"] is None:
                break
            after = page["next"]
    return transfers


def _transfer(did: str, entry: Mapping[str, Any], accounts: Mapping[str, Any]) -> Transfer:
    payee = entry["counterparty"] if entry["kind"] == "paid" else None
    kind: TransferKind = "redeem"
    if payee is not None:
        payer_kind = accounts[did]["kind"]
        payee_kind = accounts.get(payee, {}).get("kind", "holder")
        kind = "spend" if payee_kind == "merchant" else "p2p"
        if payer_kind == "merchant":
            kind = "b2b"
    return Transfer(
        payer=did,
        payee=payee,
        amount=-int(entry["change"]),
        time_ms=int(entry["time_ms"]),
        kind=kind,
        tx_id=str(entry["tx_id"]),
        seq=int(entry["seq"]),
        height=int(entry["height"]),
    )


def fraud_flags(
    ledger: Reader,
    currency_id: str,
    since_ms: int,
    *,
    controlled: Mapping[str, Collection[str]] | None = None,
) -> list[Flag]:
    """The fraud flags (default thresholds) over the transfers since ``since_ms``."""
    transfers = gather_transfers(ledger, currency_id, since_ms)
    return find_cash_out_rings(transfers, controlled=controlled)
