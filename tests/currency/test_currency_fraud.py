"""Fraud flags: staged cash-out rings and fake-purchase bursts are flagged, shopping is not, and
every threshold holds exactly at its edge."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from currency_helpers import CUR, send
from test_currency_report import ALICE, BAKERY, BOB, DAY_A, MILL, did, pay, setup_day_a

from civicledger.agency.currency_report import fraud_flags, gather_transfers
from civicledger.node.chain import Chain
from civicledger.services.currency.fraud import (
    DEFAULT_WINDOW_MS,
    Flag,
    FraudParameterError,
    Transfer,
    TransferKind,
    find_cash_out_rings,
)
from civicledger.services.registry import city_registry
from conftest import City, Ledger, make_city
from conftest import ok as ok_result

HOUR = 3_600_000
T = 1_700_000_000_000


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city", city_registry())


class Script:
    """Builds transfers with increasing heights and unique tx ids."""

    def __init__(self) -> None:
        self.transfers: list[Transfer] = []

    def add(
        self, payer: str, payee: str | None, amount: int, at: int, kind: TransferKind = "spend"
    ) -> Transfer:
        n = len(self.transfers) + 1
        transfer = Transfer(payer, payee, amount, at, kind, f"tx{n:04d}", n, height=n)
        self.transfers.append(transfer)
        return transfer


def rings(transfers: list[Transfer], **options: Any) -> list[Flag]:
    return [f for f in find_cash_out_rings(transfers, **options) if f.kind == "cash_out_ring"]


def bursts(transfers: list[Transfer], **options: Any) -> list[Flag]:
    return [f for f in find_cash_out_rings(transfers, **options) if f.kind == "fake_purchase"]


# -- cash-out rings -----------------------------------------------------------------------------


def staged_ring(back: int = 95_000, after: int = HOUR, spend: int = 100_000) -> Script:
    """Holder h spends at merchant m; m pays ``back`` to merchant x (h's own shop)."""
    s = Script()
    s.add("h", "m", spend, T)
    s.add("m", "x", back, T + after, "b2b")
    return s


def test_a_staged_ring_is_flagged_with_its_accounts() -> None:
    s = staged_ring()
    s.add("other", "m", 60_000, T + 2 * HOUR)  # Ordinary, unrelated.
    (flag,) = rings(s.transfers, controlled={"h": ["x"]})
    assert flag.accounts == ("h", "m", "x")
    assert flag.amounts == (100_000, 95_000)
    assert flag.tx_ids == ("tx0001", "tx0002")
    assert flag.seqs == (1, 2)
    assert flag.time_ms == T
    assert "controlled by the holder" in flag.reason
    assert rings(s.transfers) == [], "x is not known to be the holder's"


def test_a_ring_back_to_the_holder_itself_over_two_hops() -> None:
    s = Script()
    s.add("h", "m", 200_000, T)
    s.add("m", "m2", 190_000, T + HOUR, "b2b")
    s.add("m2", "h", 185_000, T + 2 * HOUR, "p2p")
    (flag,) = rings(s.transfers)
    assert flag.accounts == ("h", "m", "m2", "h")
    assert flag.amounts == (200_000, 190_000, 185_000)
    assert "back to the holder" in flag.reason


def test_the_earliest_closing_chain_is_reported() -> None:
    s = Script()
    s.add("h", "m", 100_000, T)
    s.add("m", "m2", 99_000, T + HOUR, "b2b")
    s.add("m", "x", 95_000, T + 2 * HOUR, "b2b")
    s.add("m2", "x", 98_000, T + 3 * HOUR, "b2b")
    (flag,) = rings(s.transfers, controlled={"h": ["x"]})
    assert flag.accounts == ("h", "m", "x")


@pytest.mark.parametrize(
    ("script", "options", "flagged"),
    [
        (staged_ring(back=90_000), {}, True),  # Exactly 9/10 comes back.
        (staged_ring(back=89_999), {}, False),
        (staged_ring(back=80_000), {"ratio": Fraction(4, 5)}, True),
        (staged_ring(after=DEFAULT_WINDOW_MS), {}, True),  # At the window's edge.
        (staged_ring(after=DEFAULT_WINDOW_MS + 1), {}, False),
        (staged_ring(after=HOUR), {"window_ms": HOUR - 1}, False),
        (staged_ring(spend=50_000, back=50_000), {}, True),  # At min_amount.
        (staged_ring(spend=49_999, back=49_999), {}, False),
        (staged_ring(spend=49_999, back=49_999), {"min_amount": 49_999}, True),
        (staged_ring(after=-HOUR), {}, False),  # Paid before the spend.
    ],
)
def test_ring_thresholds_at_their_edges(
    script: Script, options: dict[str, Any], flagged: bool
) -> None:
    found = rings(script.transfers, controlled={"h": ["x"]}, **options)
    assert bool(found) is flagged


def test_transfers_of_one_block_never_chain() -> None:
    spend = Transfer("h", "m", 100_000, T, "spend", "tx1", 1, height=7)
    back = Transfer("m", "x", 95_000, T, "b2b", "tx2", 1, height=7)
    assert rings([spend, back], controlled={"h": ["x"]}) == []
    later = Transfer("m", "x", 95_000, T + 1, "b2b", "tx3", 2, height=8)
    assert len(rings([spend, back, later], controlled={"h": ["x"]})) == 1


def test_max_hops_is_respected() -> None:
    s = Script()
    s.add("h", "m", 100_000, T)
    for hop, (payer, payee) in enumerate((("m", "a"), ("a", "b"), ("b", "c"), ("c", "x"))):
        s.add(payer, payee, 95_000, T + (hop + 1) * HOUR, "b2b")
    assert rings(s.transfers, controlled={"h": ["x"]}) == []
    (flag,) = rings(s.transfers, controlled={"h": ["x"]}, max_hops=4)
    assert flag.accounts == ("h", "m", "a", "b", "c", "x")


# -- fake-purchase bursts -----------------------------------------------------------------------


def burst(payers: int = 10, amount: int = 100_000, redeem: int | None = None,
          delay: int = HOUR) -> Script:  # fmt: skip
    """``payers`` holders each pay ``amount`` to m within an hour; m then redeems."""
    s = Script()
    for i in range(payers):
        s.add(f"holder{i:02d}", "m", amount, T + i * 60_000)
    last = T + (payers - 1) * 60_000
    s.add("m", None, payers * amount if redeem is None else redeem, last + delay, "redeem")
    return s


def test_a_fake_purchase_burst_is_flagged() -> None:
    s = burst()
    (flag,) = bursts(s.transfers)
    assert flag.accounts == ("m", *(f"holder{i:02d}" for i in range(10)))
    assert flag.amounts == (*[100_000] * 10, 1_000_000)
    assert flag.tx_ids[-1] == "tx0011"
    assert flag.time_ms == T
    assert "10 round payments" in flag.reason


@pytest.mark.parametrize(
    ("script", "options", "flagged"),
    [
        (burst(payers=9), {}, False),  # One holder short of min_payers.
        (burst(payers=9), {"min_payers": 9}, True),
        (burst(redeem=900_000), {}, True),  # Exactly 9/10 redeemed.
        (burst(redeem=899_999), {}, False),
        (burst(delay=86_400_000), {}, True),  # Redeemed at redeem_within_ms.
        (burst(delay=86_400_001), {}, False),
        (burst(amount=105_000), {}, False),  # Not a multiple of 10,000.
        (burst(amount=105_000), {"round_unit": 5_000}, True),
        (burst(amount=40_000), {}, False),  # Below min_amount.
        (burst(amount=40_000), {"min_amount": 40_000}, True),
    ],
)
def test_burst_thresholds_at_their_edges(
    script: Script, options: dict[str, Any], flagged: bool
) -> None:
    assert bool(bursts(script.transfers, **options)) is flagged


def test_a_burst_diluted_by_ordinary_sales_is_not_flagged() -> None:
    s = burst()
    s.transfers.pop()
    for i in range(12):  # 120,012 of ordinary sales: the round share falls below 9/10.
        s.add(f"shopper{i}", "m", 10_001, T + HOUR + i)
    s.add("m", None, 1_120_012, T + 2 * HOUR, "redeem")
    assert bursts(s.transfers) == []


def test_only_receipts_since_the_previous_redemption_count() -> None:
    s = burst()
    s.add("m", None, 1, T + 30 * HOUR, "redeem")  # Nothing new since the first redemption.
    assert len(bursts(s.transfers)) == 1


def test_ordinary_shopping_by_many_holders_is_not_flagged() -> None:
    """Forty holders shop at two merchants for a week (some large, some round purchases); the
    merchants trade with each other and redeem everything every evening."""
    rng = random.Random(6)
    s = Script()
    for day in range(7):
        start = T + day * 86_400_000
        received = {"bakery": 0, "grocer": 0}
        for i in range(40):
            merchant = ("bakery", "grocer")[i % 2]
            amount = rng.randrange(3_000, 120_000)
            amount = amount - amount % 10_000 + 10_000 if i % 5 == 0 else amount
            s.add(f"holder{i:02d}", merchant, amount, start + i * 60_000)
            received[merchant] += amount
        s.add("bakery", "grocer", 20_000, start + 10 * HOUR, "b2b")
        received["bakery"] -= 20_000
        received["grocer"] += 20_000
        for merchant, amount in received.items():
            s.add(merchant, None, amount, start + 20 * HOUR, "redeem")
    assert sum(t.amount >= 50_000 for t in s.transfers if t.kind == "spend") > 50
    assert find_cash_out_rings(s.transfers) == []


def test_flags_come_out_in_one_order_whatever_the_input_order() -> None:
    s = burst()
    for t in staged_ring().transfers:
        s.add(t.payer, t.payee, t.amount, t.time_ms + 5 * HOUR, t.kind)
    first = find_cash_out_rings(s.transfers, controlled={"h": ["x"]})
    assert [f.kind for f in first] == ["fake_purchase", "cash_out_ring"]
    shuffled = list(s.transfers)
    random.Random(1).shuffle(shuffled)
    assert find_cash_out_rings(shuffled, controlled={"h": ["x"]}) == first


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window_ms": 0}, "window_ms"),
        ({"min_amount": 0}, "min_amount"),
        ({"ratio": Fraction(0)}, "ratio"),
        ({"ratio": Fraction(11, 10)}, "ratio"),
        ({"max_hops": 0}, "max_hops"),
        ({"min_payers": 0}, "min_payers"),
        ({"round_unit": 0}, "round_unit"),
        ({"redeem_within_ms": -1}, "redeem_within_ms"),
    ],
)
def test_bad_thresholds_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(FraudParameterError, match=message):
        find_cash_out_rings([], **options)


@pytest.mark.parametrize(
    ("payee", "amount", "kind", "message"),
    [
        ("m", 1, "loan", "unknown transfer kind"),
        ("m", 0, "spend", "not positive"),
        ("m", 5, "redeem", "only a redemption"),
        (None, 5, "spend", "only a redemption"),
    ],
)
def test_bad_transfers_are_refused(payee: str | None, amount: int, kind: Any, message: str) -> None:
    with pytest.raises(FraudParameterError, match=message):
        Transfer("h", payee, amount, T, kind, "tx", 1)


# -- through a real chain -----------------------------------------------------------------------


def test_a_ring_staged_on_the_ledger_is_flagged(city: City, chain: Chain, ledger: Ledger) -> None:
    setup_day_a(city, ledger)
    ok_result(send(ledger, BOB, "pay", pay(BAKERY, 12_345)))
    ok_result(send(ledger, ALICE, "pay", pay(BAKERY, 100_000)))
    ok_result(send(ledger, BAKERY, "pay", pay(MILL, 95_000)))

    transfers = gather_transfers(chain, CUR, DAY_A)
    assert sorted((t.kind, t.amount) for t in transfers) == [
        ("b2b", 95_000), ("spend", 12_345), ("spend", 100_000)
    ]  # fmt: skip
    (flag,) = fraud_flags(chain, CUR, DAY_A, controlled={did(ALICE): [did(MILL)]})
    assert flag.kind == "cash_out_ring"
    assert flag.accounts == (did(ALICE), did(BAKERY), did(MILL))
    assert flag.amounts == (100_000, 95_000)
    assert fraud_flags(chain, CUR, DAY_A) == []
    later = chain.head.header.time_ms + 1
    assert gather_transfers(chain, CUR, later) == []
