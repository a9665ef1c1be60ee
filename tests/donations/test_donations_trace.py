"""Tracing: the pure replay of a holder's lots, proportional parts, and the desk end to end
over a real chain (donation → FIFO shares → help-coin holders → merchant categories)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from donation_helpers import (
    CAMPAIGN,
    CHARITY_KEY,
    COIN,
    DAY,
    disbursement,
    donation,
    ref,
    send,
    setup_world,
)
from hypothesis import given
from hypothesis import strategies as st

from civicledger.agency.donation_desk import DonationDesk, DonationDeskError
from civicledger.node.chain import Chain
from civicledger.services.donations.trace import CoinFlow, donor_commitment, follow_lot, scale_flow
from civicledger.services.registry import city_registry
from conftest import City, Ledger, city_key, make_city, ok

SHOP = "did:key:shop"


def entry(seq: int, kind: str, change: int, day: float, to: str | None = None) -> dict[str, Any]:
    return {
        "seq": seq,
        "kind": kind,
        "change": change,
        "time_ms": int(day * DAY),
        "counterparty": to,
    }


def test_replay_takes_earliest_expiry_first() -> None:
    history = [
        entry(1, "minted", 10_000, 0),
        entry(2, "minted", 20_000, 1),
        entry(3, "paid", -15_000, 2, SHOP),
    ]
    flow = follow_lot(history, 2, 30, {SHOP: "food"}, now_ms=3 * DAY)
    assert flow.as_dict() == {
        "minted": 20_000,
        "spent": {"food": 5_000},
        "spent_total": 5_000,
        "unspent": 15_000,
        "expired": 0,
        "holders": 1,
        "exact": True,
    }
    older = follow_lot(history, 1, 30, {SHOP: "food"}, now_ms=3 * DAY)
    assert (older.spent, older.unspent) == ({"food": 10_000}, 0)


def test_replay_counts_expiry_swept_or_not() -> None:
    history = [entry(1, "minted", 20_000, 0), entry(2, "paid", -5_000, 1, "did:key:friend")]
    unswept = follow_lot(history, 1, 30, {}, now_ms=31 * DAY)
    assert (unswept.spent, unswept.expired, unswept.unspent) == ({"p2p": 5_000}, 15_000, 0)
    swept = follow_lot([*history, entry(3, "expired", -15_000, 31)], 1, 30, {}, now_ms=40 * DAY)
    assert (swept.expired, swept.unspent) == (15_000, 0)


def test_received_coin_makes_the_replay_inexact() -> None:
    history = [entry(1, "received", 1_000, 0, "did:key:friend"), entry(2, "minted", 5_000, 1)]
    assert not follow_lot(history, 2, 30, {}, now_ms=2 * DAY).exact
    assert follow_lot(history[1:], 2, None, {}, now_ms=2 * DAY).exact


@given(
    spent=st.dictionaries(st.sampled_from(["food", "market", "p2p"]), st.integers(0, 10**6)),
    unspent=st.integers(0, 10**6),
    expired=st.integers(0, 10**6),
    data=st.data(),
)
def test_scaled_parts_add_up(spent: dict[str, int], unspent: int, expired: int, data: Any) -> None:
    minted = sum(spent.values()) + unspent + expired
    if minted == 0:
        return
    flow = CoinFlow(minted=minted, spent=spent, unspent=unspent, expired=expired)
    part = data.draw(st.integers(0, minted))
    scaled = scale_flow(flow, part, minted)
    assert scaled.accounted == scaled.minted == part
    rest = scale_flow(flow, minted - part, minted)
    for category, amount in spent.items():
        got = scaled.spent.get(category, 0) + rest.spent.get(category, 0)
        assert abs(got - amount) <= 1
    with pytest.raises(ValueError, match="share"):
        scale_flow(flow, minted + 1, minted)


def test_donor_commitment_is_domain_separated() -> None:
    assert donor_commitment("secret") == donor_commitment("secret")
    assert donor_commitment("secret") != donor_commitment("secret2")
    assert len(donor_commitment("x")) == 64


# -- end to end over a real chain --

HOLDERS = [city_key(f"trace/holder/{n}") for n in range(3)]
SHOPS = {"bakery": ("food", city_key("trace/bakery")), "stall": ("market", city_key("trace/stall"))}


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city", city_registry())


@pytest.fixture
def funded(city: City, ledger: Ledger) -> Ledger:
    """Donations A (40,000) and B (80,000); a cash disbursement (20,000) and a help-coin one
    (60,000 = 20,000 of A + 40,000 of B) minted to three holders, linked; holders shop."""
    setup_world(city, ledger)
    ok(send(ledger, city.archivist, "donate", donation(40_000, "a", "secret-a")))
    ok(send(ledger, city.archivist, "donate", donation(80_000, "b", "secret-b")))
    ok(send(ledger, CHARITY_KEY, "disburse", disbursement(20_000, "cash")))
    record = ok(send(ledger, CHARITY_KEY, "disburse", disbursement(60_000, "coin", "help_coin")))
    for key in HOLDERS:
        ok(
            ledger.send(
                city.clerk, "currency", "enroll", {"currency_id": COIN, "account": key.public.did}
            )
        )
    for merchant_id, (category, key) in SHOPS.items():
        args = {
            "merchant_id": merchant_id,
            "business_number_hash": ref(merchant_id),
            "category": category,
            "region": "mapo",
            "account": key.public.did,
        }
        ok(ledger.send(city.clerk, "currency", "register_merchant", args))
    deposit = {"currency_id": COIN, "amount": 60_000, "reference": record["reserve_reference"]}
    ok(ledger.send(city.archivist, "currency", "attest_reserve", deposit))
    items = [{"to": key.public.did, "amount": 20_000} for key in HOLDERS]
    batch = {"currency_id": COIN, "items": items, "batch_id": "winter-1"}
    ok(ledger.send(city.clerk, "currency", "mint_batch", batch))
    mints = []
    for key in HOLDERS:
        args = {"currency_id": COIN, "account": key.public.did}
        (minted,) = ledger.chain.query("currency", "history", args)["entries"]
        mints.append({"account": key.public.did, "seq": minted["seq"]})
    link = {"campaign_id": CAMPAIGN, "seq": 2, "batch_id": "winter-1", "mints": mints}
    ok(send(ledger, CHARITY_KEY, "link_funding", link))
    bakery, stall = (key.public.did for _, key in SHOPS.values())
    for payer, to, amount in ((0, bakery, 5_000), (0, stall, 3_000), (1, bakery, 20_000)):
        args = {"currency_id": COIN, "to": to, "amount": amount}
        ok(ledger.send(HOLDERS[payer], "currency", "pay", args))
    return ledger


def test_campaign_trace_reaches_merchant_categories(funded: Ledger, chain: Chain) -> None:
    trace = DonationDesk(chain).trace_campaign(CAMPAIGN)
    cash, coin = trace["disbursements"]
    assert cash["coin"] is None
    assert coin["coin"] == {
        "minted": 60_000,
        "spent": {"food": 25_000, "market": 3_000},
        "spent_total": 28_000,
        "unspent": 32_000,
        "expired": 0,
        "holders": 3,
        "exact": True,
    }
    assert "mints" not in coin["disbursement"]
    assert trace["coin"]["minted"] == 60_000


def test_donor_traces_own_donation(funded: Ledger, chain: Chain) -> None:
    desk = DonationDesk(chain)
    tree = desk.trace_donor("secret-a")
    assert tree["donation"]["seq"] == 1
    assert tree["unallocated"] == 0
    cash, coin = tree["branches"]
    assert (cash["share"], cash["disbursement"]["kind"], cash["coin"]) == (20_000, "cash", None)
    assert coin["share"] == 20_000
    assert coin["coin"]["spent"] == {"food": 8_333, "market": 1_000}
    assert coin["coin"]["unspent"] == 10_667
    assert coin["coin"]["exact"] is False
    b = desk.trace_donor(donor_commitment("secret-b"))
    assert b["unallocated"] == 40_000
    assert [branch["share"] for branch in b["branches"]] == [40_000]
    with pytest.raises(DonationDeskError) as caught:
        desk.trace_donor("not-a-receipt")
    assert caught.value.reason == "unknown_donor"


def test_desk_reads_and_unknowns(funded: Ledger, chain: Chain) -> None:
    desk = DonationDesk(chain)
    book = desk.ledger_of(CAMPAIGN)
    assert [d["amount"] for d in book["donations"]] == [40_000, 80_000]
    assert [d["kind"] for d in book["disbursements"]] == ["cash", "help_coin"]
    assert [c["campaign_id"] for c in desk.campaigns()] == [CAMPAIGN]
    cases = [
        (lambda: desk.campaign("nowhere"), "unknown_campaign"),
        (lambda: desk.charity("nobody"), "unknown_charity"),
        (lambda: desk.donation(CAMPAIGN, 9), "unknown_donation"),
        (lambda: desk.disbursement(CAMPAIGN, 9), "unknown_disbursement"),
    ]
    for call, reason in cases:
        with pytest.raises(DonationDeskError) as caught:
            call()
        assert caught.value.reason == reason
