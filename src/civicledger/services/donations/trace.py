"""Where a donation went: pure functions over the ``donations`` and ``currency`` query results.

What is exact and what is proportional:

- donation → disbursements: exact. The contract allocates FIFO and records every share.
- disbursement → help-coin holders: exact. ``link_funding`` checked each holder's ``minted``
  history entry against the mint batch the disbursement's reserve deposit paid for.
- holder's minted lot → merchants: exact by replay when the holder never received coin from
  another holder. The currency spends a holder's lots earliest expiry first (ties: oldest lot),
  and a minted lot's expiry is its block time plus the currency's lot lifetime, so replaying
  the holder's history reproduces which payment took how much of *this* lot. Coin received
  from another holder keeps an expiry the history does not show; such a replay assumes the
  latest possible expiry and the flow is marked ``exact = False``.
- a donation's part of a help-coin disbursement's spending: proportional (money is fungible
  once it is one lot): the disbursement's flow scaled by share/amount, rounded down with the
  remainders handed out largest first so the parts add up exactly.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from civicledger.crypto.encoding import sha256

__all__ = [
    "CoinFlow",
    "beneficiary_pseudonym",
    "coin_flow",
    "donor_commitment",
    "follow_lot",
    "scale_flow",
]

MAX_TIME_MS = 2**53 - 1
DAY_MS = 86_400_000
P2P = "p2p"
"""The bucket of value a holder paid on to another holder."""


def donor_commitment(secret: str) -> str:
    """The ledger's reference of a donor's receipt secret (SHA-256, domain-separated).

    The secret stays with the donor (printed on the receipt); the bank records only this.
    """
    return sha256(b"civicledger/donations/donor/v1\0" + secret.encode()).hex()


def beneficiary_pseudonym(charity_secret: bytes, beneficiary_id: str) -> str:
    """The charity's keyed pseudonym of a beneficiary (HMAC-SHA256 under a charity secret).

    Stable, so repeated help to one household is visible as such, but nobody without the
    charity's secret can test a guessed name or resident number against the ledger.
    """
    key = sha256(b"civicledger/donations/beneficiary/v1\0" + charity_secret)
    return hmac.new(key, beneficiary_id.encode(), "sha256").hexdigest()


@dataclass
class CoinFlow:
    """What became of minted help coin: every won is in exactly one bucket."""

    minted: int = 0
    spent: dict[str, int] = field(default_factory=dict)
    """Paid to merchants, by merchant category (``p2p``: paid on to other holders)."""
    unspent: int = 0
    expired: int = 0
    """Expired (swept, or past its expiry and not yet swept)."""
    holders: int = 0
    exact: bool = True

    @property
    def accounted(self) -> int:
        return sum(self.spent.values()) + self.unspent + self.expired

    def add(self, other: CoinFlow) -> None:
        self.minted += other.minted
        for category, amount in other.spent.items():
            self.spent[category] = self.spent.get(category, 0) + amount
        self.unspent += other.unspent
        self.expired += other.expired
        self.holders += other.holders
        self.exact = self.exact and other.exact

    def as_dict(self) -> dict[str, Any]:
        return {
            "minted": self.minted,
            "spent": dict(sorted(self.spent.items())),
            "spent_total": sum(self.spent.values()),
            "unspent": self.unspent,
            "expired": self.expired,
            "holders": self.holders,
            "exact": self.exact,
        }


@dataclass
class _Lot:
    expires_ms: int
    order: int
    remaining: int
    ours: bool


def _take(lots: list[_Lot], amount: int, usable: Any) -> int:
    """Take ``amount`` from the usable lots, earliest expiry first; return how much was ours."""
    ours = 0
    for lot in sorted(lots, key=lambda lot: (lot.expires_ms, lot.order)):
        if not amount:
            break
        if not usable(lot) or not lot.remaining:
            continue
        taken = min(amount, lot.remaining)
        lot.remaining -= taken
        amount -= taken
        if lot.ours:
            ours += taken
    return ours


def follow_lot(
    history: Iterable[Mapping[str, Any]],
    mint_seq: int,
    lot_ttl_days: int | None,
    merchant_categories: Mapping[str, str],
    now_ms: int,
) -> CoinFlow:
    """Replay one holder's history and follow the lot minted by entry ``mint_seq``.

    ``history`` is the account's entries (any order; sorted by ``seq`` here);
    ``merchant_categories`` maps merchant account keys to categories.
    """
    ttl = None if lot_ttl_days is None else lot_ttl_days * DAY_MS
    lots: list[_Lot] = []
    flow = CoinFlow(holders=1)
    for entry in sorted(history, key=lambda e: int(e["seq"])):
        kind, change, at = entry["kind"], int(entry["change"]), int(entry["time_ms"])
        if kind in ("minted", "received"):
            expires = MAX_TIME_MS if ttl is None else min(MAX_TIME_MS, at + ttl)
            ours = kind == "minted" and entry["seq"] == mint_seq
            if ours:
                flow.minted = change
            if kind == "received":
                flow.exact = False
            lots.append(_Lot(expires, int(entry["seq"]), change, ours))
        elif kind == "expired":
            flow.expired += _take(lots, -change, lambda lot, at=at: lot.expires_ms <= at)
        elif kind in ("paid", "redeemed"):
            taken = _take(lots, -change, lambda lot, at=at: lot.expires_ms > at)
            if taken:
                bucket = merchant_categories.get(entry.get("counterparty") or "", P2P)
                flow.spent[bucket] = flow.spent.get(bucket, 0) + taken
    for lot in lots:
        if lot.ours and lot.remaining:
            if lot.expires_ms <= now_ms:
                flow.expired += lot.remaining
            else:
                flow.unspent += lot.remaining
    return flow


def coin_flow(flows: Iterable[CoinFlow]) -> CoinFlow:
    """The sum of several lots' flows (a disbursement's holders)."""
    total = CoinFlow()
    for flow in flows:
        total.add(flow)
    return total


def _apportion(values: Sequence[int], part: int, whole: int) -> list[int]:
    """``values`` scaled by ``part/whole``: floors, then the largest remainders get one more,
    so the results sum to ``sum(values) * part // whole`` (ties by position)."""
    scaled = [value * part for value in values]
    floors = [value // whole for value in scaled]
    target = sum(values) * part // whole
    order = sorted(range(len(values)), key=lambda i: (-(scaled[i] % whole), i))
    for i in order[: target - sum(floors)]:
        floors[i] += 1
    return floors


def scale_flow(flow: CoinFlow, part: int, whole: int) -> CoinFlow:
    """The part of a disbursement's flow that a ``part`` of its ``whole`` amount paid for."""
    if not 0 <= part <= whole or whole <= 0:
        raise ValueError(f"a part {part} of {whole} is not a share")
    categories = sorted(flow.spent)
    buckets = [flow.spent[c] for c in categories] + [flow.unspent, flow.expired]
    minted = flow.minted * part // whole
    scaled = _apportion(buckets, part, whole)
    return CoinFlow(
        minted=minted,
        spent={c: v for c, v in zip(categories, scaled, strict=False) if v},
        unspent=scaled[-2],
        expired=scaled[-1],
        holders=flow.holders,
        exact=False,
    )
