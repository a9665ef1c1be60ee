"""Fraud flags over a currency's transfers: cash-out rings and fake-purchase bursts. Pure.

The input is a list of ``Transfer`` (built from the ``paid`` and ``redeemed`` entries of the
contract's ``history`` query, see ``civicledger.agency.currency_report``). A flag is a lead for an
auditor, not a verdict: the defaults are conservative (few, large, tight patterns), and every
flag names its accounts, amounts, transactions and the rule that fired.

Order: transfers are ordered by ``(time_ms, height, tx_id, payer, seq)``; "later" means a
strictly greater ``(time_ms, height)``, so two transfers of one block never chain (conservative:
a same-block ring is missed rather than a coincidence flagged).

Rule ``cash_out_ring``: a holder ``H`` spends ``a >= min_amount`` at merchant ``M`` (a ``spend``
transfer) and, within ``window_ms`` after it, value flows back along a chain of at most
``max_hops`` later transfers ``M -> … -> X`` where ``X`` is ``H`` or an account ``H`` controls
(``controlled[H]``, links the auditor knows off the ledger, such as a merchant account of the
holder's own business), every transfer of the chain moving at least ``ratio * a``. One flag per
spend: the chain that closes first (then the fewest hops, then the lowest tx ids).

Rule ``fake_purchase``: a merchant ``M`` redeems ``R`` at time ``t``. Its *burst* is the spends
to ``M`` after its previous redemption and within ``window_ms`` before ``t``; *round* spends are
those of at least ``min_amount`` that are a multiple of ``round_unit``. Flag when all hold:
the round spends come from at least ``min_payers`` distinct holders; they make at least
``ratio`` of the burst's total ``S``; the last round spend is at most ``redeem_within_ms``
before ``t``; and ``R >= ratio * S`` (nearly everything received is redeemed at once).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from civicledger.errors import CivicError

__all__ = [
    "DEFAULT_MAX_HOPS",
    "DEFAULT_MIN_AMOUNT",
    "DEFAULT_MIN_PAYERS",
    "DEFAULT_RATIO",
    "DEFAULT_REDEEM_WITHIN_MS",
    "DEFAULT_ROUND_UNIT",
    "DEFAULT_WINDOW_MS",
    "Flag",
    "FraudParameterError",
    "Transfer",
    "find_cash_out_rings",
]

DAY_MS = 86_400_000
DEFAULT_WINDOW_MS = 3 * DAY_MS
"""How long after a spend a return flow counts, and how far back a burst reaches."""
DEFAULT_MIN_AMOUNT = 50_000
"""Spends below this (KRW) are never part of a flag: everyday shopping is smaller."""
DEFAULT_RATIO = Fraction(9, 10)
"""The share that must come back (rings), be round and be redeemed (bursts)."""
DEFAULT_MAX_HOPS = 3
DEFAULT_MIN_PAYERS = 10
DEFAULT_ROUND_UNIT = 10_000
DEFAULT_REDEEM_WITHIN_MS = DAY_MS

TransferKind = Literal["spend", "b2b", "p2p", "redeem"]
_KINDS = ("spend", "b2b", "p2p", "redeem")


class FraudParameterError(CivicError):
    """A threshold or a transfer given to the fraud rules is out of range."""

    reason = "bad_fraud_parameters"


@dataclass(frozen=True, slots=True)
class Transfer:
    """One movement of value, from the payer's history entry."""

    payer: str
    """The paying account (the redeeming merchant for ``redeem``)."""
    payee: str | None
    """The paid account; ``None`` for ``redeem`` (the value is burned)."""
    amount: int
    """Won moved, positive."""
    time_ms: int
    """Block time."""
    kind: TransferKind
    """``spend`` holder→merchant, ``b2b`` merchant→merchant, ``p2p`` holder→holder, ``redeem``."""
    tx_id: str
    """The transaction's id."""
    seq: int
    """The payer's history sequence number of this entry."""
    height: int = 0
    """The block height."""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise FraudParameterError(f"unknown transfer kind {self.kind!r}")
        if self.amount < 1:
            raise FraudParameterError(
                f"transfer {self.tx_id}: amount {self.amount} is not positive"
            )
        if (self.payee is None) != (self.kind == "redeem"):
            raise FraudParameterError(f"transfer {self.tx_id}: only a redemption has no payee")

    @property
    def order(self) -> tuple[int, int, str, str, int]:
        """The total order of transfers."""
        return (self.time_ms, self.height, self.tx_id, self.payer, self.seq)

    def before(self, other: Transfer) -> bool:
        """Whether this transfer is in an earlier block position than ``other``."""
        return (self.time_ms, self.height) < (other.time_ms, other.height)


@dataclass(frozen=True, slots=True)
class Flag:
    """One suspicious pattern."""

    kind: Literal["cash_out_ring", "fake_purchase"]
    """The rule that fired."""
    accounts: tuple[str, ...]
    """Ring: the path ``H, M, …, X``. Burst: the merchant, then the round payers sorted."""
    amounts: tuple[int, ...]
    """Ring: each transfer's amount along the path. Burst: each round spend, then ``R``."""
    tx_ids: tuple[str, ...]
    """The transfers' tx ids, in the order of ``amounts``."""
    seqs: tuple[int, ...]
    """The payers' history sequence numbers, in the order of ``amounts``."""
    time_ms: int
    """When the pattern started (the spend; the burst's first round spend)."""
    reason: str
    """Why, for a human."""


def find_cash_out_rings(
    transfers: Sequence[Transfer],
    *,
    window_ms: int = DEFAULT_WINDOW_MS,
    min_amount: int = DEFAULT_MIN_AMOUNT,
    ratio: Fraction = DEFAULT_RATIO,
    controlled: Mapping[str, Collection[str]] | None = None,
    max_hops: int = DEFAULT_MAX_HOPS,
    min_payers: int = DEFAULT_MIN_PAYERS,
    round_unit: int = DEFAULT_ROUND_UNIT,
    redeem_within_ms: int = DEFAULT_REDEEM_WITHIN_MS,
) -> list[Flag]:
    """Both rules over ``transfers``; flags sorted by ``(time_ms, kind, accounts, tx_ids)``."""
    ratio = Fraction(ratio)
    guards = (
        (window_ms >= 1, f"window_ms {window_ms} is not positive"),
        (min_amount >= 1, f"min_amount {min_amount} is not positive"),
        (0 < ratio <= 1, f"ratio {ratio} is not in (0, 1]"),
        (max_hops >= 1, f"max_hops {max_hops} is not positive"),
        (min_payers >= 1, f"min_payers {min_payers} is not positive"),
        (round_unit >= 1, f"round_unit {round_unit} is not positive"),
        (redeem_within_ms >= 0, f"redeem_within_ms {redeem_within_ms} is negative"),
    )
    for holds, message in guards:
        if not holds:
            raise FraudParameterError(message)
    ordered = sorted(transfers, key=lambda t: t.order)
    flags = [
        *_rings(ordered, window_ms, min_amount, ratio, controlled or {}, max_hops),
        *_bursts(ordered, window_ms, min_amount, ratio, min_payers, round_unit, redeem_within_ms),
    ]
    return sorted(flags, key=lambda f: (f.time_ms, f.kind, f.accounts, f.tx_ids))


def _at_least(amount: int, base: int, ratio: Fraction) -> bool:
    """``amount >= ratio * base`` in exact integer arithmetic."""
    return amount * ratio.denominator >= base * ratio.numerator


def _rings(
    ordered: list[Transfer],
    window_ms: int,
    min_amount: int,
    ratio: Fraction,
    controlled: Mapping[str, Collection[str]],
    max_hops: int,
) -> list[Flag]:
    outgoing: dict[str, list[Transfer]] = defaultdict(list)
    for transfer in ordered:
        if transfer.payee is not None:
            outgoing[transfer.payer].append(transfer)
    flags = []
    for spend in ordered:
        if spend.kind != "spend" or spend.amount < min_amount:
            continue
        targets = {spend.payer, *controlled.get(spend.payer, ())}
        path = _first_return(spend, targets, outgoing, spend.time_ms + window_ms, ratio, max_hops)
        if path is None:
            continue
        chain = [spend, *path]
        holder = spend.payer
        last = chain[-1].payee
        via = "the holder" if last == holder else f"{last} (controlled by the holder)"
        flags.append(
            Flag(
                kind="cash_out_ring",
                accounts=(holder, *(t.payee or "" for t in chain)),
                amounts=tuple(t.amount for t in chain),
                tx_ids=tuple(t.tx_id for t in chain),
                seqs=tuple(t.seq for t in chain),
                time_ms=spend.time_ms,
                reason=(
                    f"{holder} spent {spend.amount} at {spend.payee}; at least "
                    f"{min(t.amount for t in path)} came back to {via} in {len(path)} "
                    f"transfer(s) within {(chain[-1].time_ms - spend.time_ms) // 1000} s"
                ),
            )
        )
    return flags


def _first_return(
    spend: Transfer,
    targets: set[str],
    outgoing: Mapping[str, list[Transfer]],
    deadline_ms: int,
    ratio: Fraction,
    max_hops: int,
) -> list[Transfer] | None:
    """The chain from ``spend.payee`` back to ``targets`` that closes first, or ``None``."""
    best: list[Transfer] | None = None
    frontier: list[list[Transfer]] = [[spend]]
    for _ in range(max_hops):
        grown = []
        for path in frontier:
            last = path[-1]
            for hop in outgoing.get(last.payee or "", ()):
                if not last.before(hop) or hop.time_ms > deadline_ms:
                    continue
                if not _at_least(hop.amount, spend.amount, ratio) or hop in path:
                    continue
                chain = [*path[1:], hop]
                if hop.payee in targets:
                    key = ([t.order for t in reversed(chain)], len(chain))
                    if best is None or key < ([t.order for t in reversed(best)], len(best)):
                        best = chain
                    continue
                grown.append([*path, hop])
        frontier = grown
    return best


def _bursts(
    ordered: list[Transfer],
    window_ms: int,
    min_amount: int,
    ratio: Fraction,
    min_payers: int,
    round_unit: int,
    redeem_within_ms: int,
) -> list[Flag]:
    received: dict[str, list[Transfer]] = defaultdict(list)
    previous_redemption: dict[str, Transfer] = {}
    flags = []
    for transfer in ordered:
        if transfer.kind == "spend" and transfer.payee is not None:
            received[transfer.payee].append(transfer)
            continue
        if transfer.kind != "redeem":
            continue
        merchant, redemption = transfer.payer, transfer
        since = previous_redemption.get(merchant)
        previous_redemption[merchant] = redemption
        burst = [
            spend
            for spend in received.pop(merchant, [])
            if spend.time_ms >= redemption.time_ms - window_ms
            and spend.before(redemption)
            and (since is None or since.before(spend))
        ]
        round_spends = [s for s in burst if s.amount >= min_amount and s.amount % round_unit == 0]
        total = sum(s.amount for s in burst)
        payers = sorted({s.payer for s in round_spends})
        if len(payers) < min_payers:
            continue
        if not _at_least(sum(s.amount for s in round_spends), total, ratio):
            continue
        if redemption.time_ms - round_spends[-1].time_ms > redeem_within_ms:
            continue
        if not _at_least(redemption.amount, total, ratio):
            continue
        chain = [*round_spends, redemption]
        flags.append(
            Flag(
                kind="fake_purchase",
                accounts=(merchant, *payers),
                amounts=tuple(t.amount for t in chain),
                tx_ids=tuple(t.tx_id for t in chain),
                seqs=tuple(t.seq for t in chain),
                time_ms=round_spends[0].time_ms,
                reason=(
                    f"{len(round_spends)} round payments (multiples of {round_unit}, at least "
                    f"{min_amount}) from {len(payers)} holders to {merchant}, "
                    f"{sum(s.amount for s in round_spends)} of {total} received, then "
                    f"{redemption.amount} redeemed "
                    f"{(redemption.time_ms - round_spends[-1].time_ms) // 1000} s after the last"
                ),
            )
        )
    return flags
