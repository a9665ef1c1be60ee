"""The currency contract through a real Chain: every transaction, query and refusal reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from currency_helpers import (
    CUR,
    check_invariants,
    definition,
    grant_roles,
    holder,
    merchant,
    q,
    ref,
    send,
)

from civicledger.errors import TxRejected
from civicledger.node.chain import Chain
from civicledger.services.currency.contract import MAX_AMOUNT, MAX_BATCH, MAX_LOTS
from civicledger.services.registry import city_registry
from conftest import GENESIS_TIME_MS, City, Ledger, make_city, ok, refused

DAY = 86_400_000
T0 = GENESIS_TIME_MS + 10 * DAY
"""2023-11-24 22:13:20 UTC: blocks of a test run from here on."""
ALICE, BOB, CAROL = holder("alice"), holder("bob"), holder("carol")
BAKERY, BOOKSHOP, GARAGE, FARAWAY, MILL = (
    merchant(m) for m in ("bakery", "bookshop", "garage", "faraway", "mill")
)
MERCHANTS = {
    "bakery": (BAKERY, "food", "north"),
    "bookshop": (BOOKSHOP, "books", "south"),
    "garage": (GARAGE, "cars", "north"),
    "faraway": (FARAWAY, "food", "east"),
    "mill": (MILL, "food", "north"),
}


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city", city_registry())


@pytest.fixture
def roles(city: City, ledger: Ledger) -> Ledger:
    grant_roles(city, ledger)
    return ledger


@pytest.fixture
def world(city: City, roles: Ledger) -> Ledger:
    """A defined currency with 10,000,000 of reserve, alice and bob enrolled, five merchants."""
    ledger = roles
    ok(send(ledger, city.clerk, "define", definition(), at=T0))
    ok(send(ledger, city.archivist, "attest_reserve", reserve(10_000_000, "initial")))
    for key in (ALICE, BOB):
        ok(send(ledger, city.district, "enroll", enroll_args(key)))
    for merchant_id, (key, category, region) in MERCHANTS.items():
        ok(
            send(
                ledger,
                city.district,
                "register_merchant",
                merchant_args(merchant_id, key, category, region),
            )
        )
    return ledger


def reserve(amount: int, label: str) -> dict[str, Any]:
    return {"currency_id": CUR, "amount": amount, "reference": ref(label)}


def enroll_args(key: Any, region: str | None = "north") -> dict[str, Any]:
    return {"currency_id": CUR, "account": key.public.did, "region": region}


def merchant_args(merchant_id: str, key: Any, category: str, region: str) -> dict[str, Any]:
    return {
        "merchant_id": merchant_id,
        "business_number_hash": ref(f"brn/{merchant_id}"),
        "category": category,
        "region": region,
        "account": key.public.did,
    }


def mint_args(key: Any, amount: int, reason: str = "welfare") -> dict[str, Any]:
    return {"currency_id": CUR, "to": key.public.did, "amount": amount, "reason": reason}


def pay_args(to: Any, amount: int, cur: str = CUR) -> dict[str, Any]:
    return {"currency_id": cur, "to": to.public.did, "amount": amount, "memo_hash": ref("memo")}


def bal(chain: Chain, key: Any) -> Any:
    return q(chain, "balance", account=key.public.did)


def head(chain: Chain) -> int:
    return chain.head.header.time_ms


# -- define and reserve -------------------------------------------------------------------------


def test_define_and_refuse_a_second_definition(city: City, chain: Chain, roles: Ledger) -> None:
    record = ok(send(roles, city.clerk, "define", definition()))
    assert (record["currency_id"], record["activity_rates"]) == (CUR, {"volunteer_hour": 700})
    assert q(chain, "currency")["spend_categories"] == ["food", "books"]
    assert q(chain, "totals")["supply"] == 0
    refused(send(roles, city.clerk, "define", definition()), "currency_exists")
    assert chain.query("currency", "currency", {"currency_id": "no-such"}) is None


@pytest.mark.parametrize(
    "change",
    [
        {"purchase_bonus_bp": 10_001},
        {"spend_categories": ["food", "food"]},
        {"spend_regions": ["North"]},
        {"kind": "bond"},
        {"balance_cap": 0},
        {"balance_cap": MAX_AMOUNT + 1},
        {"activity_rates": {"volunteer_hour": 0}},
        {"activity_rates": {"Volunteer": 1}},
        {"lot_ttl_days": 0},
        {"currency_id": "X"},
    ],
)
def test_define_malformed_args_are_dropped(
    city: City, roles: Ledger, change: dict[str, Any]
) -> None:
    with pytest.raises(TxRejected) as e:
        send(roles, city.clerk, "define", definition(**change))
    assert e.value.reason == "invalid_args"


def test_attest_reserve_and_duplicate_reference(city: City, chain: Chain, world: Ledger) -> None:
    totals = ok(send(world, city.archivist, "attest_reserve", reserve(5, "more")))
    assert totals["reserve"] == 10_000_005
    refused(
        send(world, city.archivist, "attest_reserve", reserve(5, "more")), "duplicate_reference"
    )
    refused(
        send(world, city.archivist, "attest_reserve", {**reserve(5, "x"), "currency_id": "nope"}),
        "unknown_currency",
    )
    assert q(chain, "totals")["reserve"] == 10_000_005


# -- mint ---------------------------------------------------------------------------------------


def test_mint_creates_a_lot_and_history(city: City, chain: Chain, world: Ledger) -> None:
    receipt = send(world, city.clerk, "mint", mint_args(ALICE, 30_000))
    lot = ok(receipt)
    assert [(e.name, e.data["amount"]) for e in receipt.events] == [("minted", 30_000)]
    assert lot["amount"] == lot["remaining"] == 30_000
    assert lot["expires_ms"] == head(chain) + 30 * DAY
    info = bal(chain, ALICE)
    assert (info["balance"], info["spendable"], info["lot_count"]) == (30_000, 30_000, 1)
    assert [e["kind"] for e in q(chain, "history", account=ALICE.public.did)["entries"]] == [
        "minted"
    ]
    totals = check_invariants(chain)
    assert (totals["minted"], totals["supply"]) == (30_000, 30_000)


def test_mint_refusals(city: City, chain: Chain, world: Ledger) -> None:
    refused(send(world, city.clerk, "mint", mint_args(ALICE, 10_000_001)), "reserve_exceeded")
    refused(send(world, city.clerk, "mint", mint_args(CAROL, 1)), "not_enrolled")
    refused(send(world, city.clerk, "mint", mint_args(BAKERY, 1)), "not_enrolled")
    refused(send(world, city.clerk, "mint", mint_args(ALICE, 2_000_001)), "balance_cap")
    ok(send(world, city.clerk, "mint", mint_args(ALICE, 2_000_000)))
    refused(send(world, city.clerk, "mint", mint_args(ALICE, 1)), "balance_cap")
    refused(
        send(world, city.clerk, "mint", {**mint_args(ALICE, 1), "currency_id": "nope"}),
        "unknown_currency",
    )
    with pytest.raises(TxRejected):
        send(world, city.clerk, "mint", mint_args(ALICE, MAX_AMOUNT + 1))
    with pytest.raises(TxRejected):
        send(world, city.clerk, "mint", mint_args(ALICE, 0))
    assert check_invariants(chain)["supply"] == 2_000_000


def test_mint_batch_is_idempotent_and_all_or_nothing(
    city: City, chain: Chain, world: Ledger
) -> None:
    items = [{"to": ALICE.public.did, "amount": 100}, {"to": BOB.public.did, "amount": 200}]
    batch = {"currency_id": CUR, "items": items, "batch_id": "winter-2023"}
    record = ok(send(world, city.clerk, "mint_batch", batch))
    assert (record["items"], record["amount"]) == (2, 300)
    refused(send(world, city.clerk, "mint_batch", batch), "batch_done")
    assert check_invariants(chain)["minted"] == 300
    bad = {**batch, "batch_id": "spring", "items": [*items, {"to": CAROL.public.did, "amount": 1}]}
    refused(send(world, city.clerk, "mint_batch", bad), "not_enrolled")
    assert bal(chain, ALICE)["balance"] == 100
    too_much = {
        **batch,
        "batch_id": "summer",
        "items": [{"to": BOB.public.did, "amount": 9_999_701}],
    }
    refused(send(world, city.clerk, "mint_batch", too_much), "reserve_exceeded")
    with pytest.raises(TxRejected):
        send(world, city.clerk, "mint_batch", {**batch, "batch_id": "big", "items": items * 251})
    assert check_invariants(chain)["supply"] == 300


def test_too_many_lots(city: City, chain: Chain, world: Ledger) -> None:
    items = [{"to": ALICE.public.did, "amount": 1}] * MAX_BATCH
    for n in range(MAX_LOTS // MAX_BATCH):
        ok(
            send(
                world,
                city.clerk,
                "mint_batch",
                {"currency_id": CUR, "items": items, "batch_id": f"b{n}"},
            )
        )
    assert bal(chain, ALICE)["lot_count"] == MAX_LOTS
    refused(send(world, city.clerk, "mint", mint_args(ALICE, 1)), "too_many_lots")
    check_invariants(chain)


# -- enrolment and merchants --------------------------------------------------------------------


def test_enroll_refusals(city: City, chain: Chain, world: Ledger) -> None:
    refused(send(world, city.district, "enroll", enroll_args(ALICE)), "already_enrolled")
    refused(send(world, city.district, "enroll", enroll_args(BAKERY)), "account_is_merchant")
    refused(
        send(world, city.district, "enroll", {**enroll_args(CAROL), "currency_id": "nope"}),
        "unknown_currency",
    )
    assert ok(send(world, city.district, "enroll", enroll_args(CAROL, None)))["region"] is None
    assert q(chain, "totals")["holders"] == 3


def test_register_and_suspend_merchant(city: City, chain: Chain, world: Ledger) -> None:
    args = merchant_args("bakery", merchant("other"), "food", "north")
    refused(send(world, city.district, "register_merchant", args), "merchant_exists")
    args = merchant_args("bakery-2", BAKERY, "food", "north")
    refused(send(world, city.district, "register_merchant", args), "account_in_use")
    args = merchant_args("alice-shop", ALICE, "food", "north")
    refused(send(world, city.district, "register_merchant", args), "account_in_use")
    listed = chain.query("currency", "merchants", {"limit": 2})
    assert [m["merchant_id"] for m in listed["merchants"]] == ["bakery", "bookshop"]
    rest = chain.query("currency", "merchants", {"after": listed["next"]})
    assert [m["merchant_id"] for m in rest["merchants"]] == ["faraway", "garage", "mill"]
    record = ok(send(world, city.district, "suspend_merchant", {"merchant_id": "bakery"}))
    assert record["status"] == "suspended"
    refused(
        send(world, city.district, "suspend_merchant", {"merchant_id": "bakery"}),
        "merchant_suspended",
    )
    refused(
        send(world, city.district, "suspend_merchant", {"merchant_id": "nobody"}),
        "unknown_merchant",
    )


# -- purchase and activity ----------------------------------------------------------------------


def purchase_args(key: Any, amount: int, label: str) -> dict[str, Any]:
    return {
        "currency_id": CUR,
        "account": key.public.did,
        "amount": amount,
        "bank_reference": ref(label),
    }


def test_purchase_adds_a_funded_bonus(city: City, chain: Chain, world: Ledger) -> None:
    result = ok(send(world, city.archivist, "purchase", purchase_args(ALICE, 100_000, "p1")))
    assert (result["amount"], result["bonus"]) == (110_000, 10_000)
    totals = check_invariants(chain)
    assert (totals["reserve"], totals["bonus_funded"], totals["supply"]) == (
        10_110_000,
        10_000,
        110_000,
    )
    assert bal(chain, ALICE)["purchased"] == 100_000
    refused(
        send(world, city.archivist, "purchase", purchase_args(ALICE, 1, "p1")),
        "duplicate_reference",
    )
    refused(send(world, city.archivist, "purchase", purchase_args(CAROL, 1, "p2")), "not_enrolled")


def test_monthly_purchase_cap_resets_with_the_utc_month(
    city: City, chain: Chain, world: Ledger
) -> None:
    november = 1_701_129_600_000  # 2023-11-28 00:00 UTC
    december = 1_701_388_800_000  # 2023-12-01 00:00 UTC
    ok(send(world, city.archivist, "purchase", purchase_args(BOB, 400_000, "a"), at=november))
    refused(
        send(
            world, city.archivist, "purchase", purchase_args(BOB, 100_001, "b"), at=november + 1000
        ),
        "monthly_cap",
    )
    ok(
        send(
            world, city.archivist, "purchase", purchase_args(BOB, 100_000, "c"), at=november + 2000
        )
    )
    refused(
        send(world, city.archivist, "purchase", purchase_args(BOB, 1, "d"), at=december - 1),
        "monthly_cap",
    )
    ok(send(world, city.archivist, "purchase", purchase_args(BOB, 500_000, "e"), at=december))
    info = bal(chain, BOB)
    assert (info["month"], info["purchased"]) == ("2023-12", 500_000)
    check_invariants(chain)


def test_attest_activity_mints_points_at_the_rate(city: City, chain: Chain, world: Ledger) -> None:
    args = {
        "currency_id": CUR,
        "account": ALICE.public.did,
        "activity": "volunteer_hour",
        "quantity": 3,
        "reference": ref("volunteer/1"),
    }
    assert ok(send(world, city.district, "attest_activity", args))["amount"] == 2_100
    refused(send(world, city.district, "attest_activity", args), "duplicate_reference")
    other = {**args, "activity": "cycling_km", "reference": ref("volunteer/2")}
    refused(send(world, city.district, "attest_activity", other), "unknown_activity")
    huge = {**args, "quantity": 20_000, "reference": ref("volunteer/3")}
    refused(send(world, city.district, "attest_activity", huge), "reserve_exceeded")
    nobody = {**args, "account": CAROL.public.did, "reference": ref("volunteer/4")}
    refused(send(world, city.district, "attest_activity", nobody), "not_enrolled")
    assert check_invariants(chain)["minted"] == 2_100


# -- pay ----------------------------------------------------------------------------------------


def test_pay_a_merchant_and_the_daily_figures(city: City, chain: Chain, world: Ledger) -> None:
    ok(send(world, city.clerk, "mint", mint_args(ALICE, 50_000)))
    result = ok(send(world, ALICE, "pay", pay_args(BAKERY, 12_000)))
    assert (result["amount"], result["balance"]) == (12_000, 38_000)
    ok(send(world, ALICE, "pay", pay_args(BOOKSHOP, 3_000)))
    assert bal(chain, BAKERY)["balance"] == 12_000
    assert bal(chain, BAKERY)["kind"] == "merchant"
    (day,) = q(chain, "daily")
    assert (day["minted"], day["spent"], day["supply"], day["reserve"]) == (
        50_000,
        15_000,
        50_000,
        10_000_000,
    )
    assert day["spent_by_category"] == {"food": 12_000, "books": 3_000}
    assert day["spent_by_region"] == {"north": 12_000, "south": 3_000}
    assert q(chain, "daily", from_day=day["day"], to_day=day["day"]) == [day]
    assert q(chain, "daily", from_day="2000-01-01", to_day="2000-01-02") == []
    check_invariants(chain)


def test_pay_refusals(city: City, chain: Chain, world: Ledger) -> None:
    ok(send(world, city.clerk, "mint", mint_args(ALICE, 50_000)))
    refused(send(world, ALICE, "pay", pay_args(BAKERY, 50_001)), "insufficient_funds")
    refused(send(world, ALICE, "pay", pay_args(GARAGE, 1)), "merchant_not_allowed")
    refused(send(world, ALICE, "pay", pay_args(FARAWAY, 1)), "merchant_not_allowed")
    refused(send(world, ALICE, "pay", pay_args(BOB, 1)), "p2p_not_allowed")
    refused(send(world, ALICE, "pay", pay_args(ALICE, 1)), "self_payment")
    refused(send(world, CAROL, "pay", pay_args(BAKERY, 1)), "not_enrolled")
    ok(send(world, city.district, "suspend_merchant", {"merchant_id": "bakery"}))
    refused(send(world, ALICE, "pay", pay_args(BAKERY, 1)), "merchant_suspended")
    assert bal(chain, ALICE)["balance"] == 50_000
    check_invariants(chain)


def test_merchants_pay_merchants_only(city: City, chain: Chain, world: Ledger) -> None:
    ok(send(world, city.clerk, "mint", mint_args(ALICE, 50_000)))
    ok(send(world, ALICE, "pay", pay_args(BAKERY, 20_000)))
    ok(send(world, BAKERY, "pay", pay_args(GARAGE, 5_000)))
    assert (bal(chain, BAKERY)["balance"], bal(chain, GARAGE)["balance"]) == (15_000, 5_000)
    assert q(chain, "daily")[0]["b2b"] == 5_000
    refused(send(world, BAKERY, "pay", pay_args(ALICE, 1)), "merchant_not_allowed")
    refused(send(world, BAKERY, "pay", pay_args(MILL, 15_001)), "insufficient_funds")
    refused(send(world, MILL, "pay", pay_args(BAKERY, 1)), "insufficient_funds")
    ok(send(world, city.district, "suspend_merchant", {"merchant_id": "mill"}))
    refused(send(world, BAKERY, "pay", pay_args(MILL, 1)), "merchant_suspended")
    ok(send(world, city.district, "suspend_merchant", {"merchant_id": "bakery"}))
    refused(send(world, BAKERY, "pay", pay_args(GARAGE, 1)), "merchant_suspended")
    check_invariants(chain)


def test_p2p_keeps_lot_expiry_and_respects_the_cap(city: City, chain: Chain, world: Ledger) -> None:
    ok(
        send(
            world, city.clerk, "define", definition(currency_id="gift", p2p=True, balance_cap=1_000)
        )
    )
    ok(
        send(
            world,
            city.archivist,
            "attest_reserve",
            {**reserve(10_000, "gift"), "currency_id": "gift"},
        )
    )
    for key in (ALICE, BOB):
        ok(send(world, city.district, "enroll", {**enroll_args(key), "currency_id": "gift"}))
    minted = ok(send(world, city.clerk, "mint", {**mint_args(ALICE, 1_000), "currency_id": "gift"}))
    ok(
        send(world, BOB, "pay", pay_args(ALICE, 1, "gift"))
        if False
        else send(world, ALICE, "pay", pay_args(BOB, 400, "gift"))
    )
    lots = chain.query("currency", "balance", {"currency_id": "gift", "account": BOB.public.did})[
        "lots"
    ]
    assert [(lot["remaining"], lot["expires_ms"]) for lot in lots] == [(400, minted["expires_ms"])]
    ok(send(world, city.clerk, "mint", {**mint_args(BOB, 600), "currency_id": "gift"}))
    refused(send(world, ALICE, "pay", pay_args(BOB, 1, "gift")), "balance_cap")
    (day,) = chain.query("currency", "daily", {"currency_id": "gift"})
    assert (day["p2p"], day["spent"]) == (400, 0)
    check_invariants(chain, "gift")


# -- lots and expiry ----------------------------------------------------------------------------


def test_spending_takes_the_earliest_expiring_lot_first(
    city: City, chain: Chain, world: Ledger
) -> None:
    first = ok(send(world, city.clerk, "mint", mint_args(ALICE, 1_000), at=T0 + DAY))
    second = ok(send(world, city.clerk, "mint", mint_args(ALICE, 1_000), at=T0 + 11 * DAY))
    ok(send(world, ALICE, "pay", pay_args(BAKERY, 1_500), at=T0 + 12 * DAY))
    lots = bal(chain, ALICE)["lots"]
    assert [(lot["lot_id"], lot["remaining"]) for lot in lots] == [(second["lot_id"], 500)]
    assert first["expires_ms"] < second["expires_ms"]
    check_invariants(chain)


def test_expired_lots_return_to_the_issuer(city: City, chain: Chain, world: Ledger) -> None:
    first = ok(send(world, city.clerk, "mint", mint_args(ALICE, 1_000), at=T0 + DAY))
    ok(send(world, city.clerk, "mint", mint_args(ALICE, 700), at=T0 + 11 * DAY))
    after_first = first["expires_ms"]
    ok(send(world, city.clerk, "mint", mint_args(BOB, 10), at=after_first))
    info = bal(chain, ALICE)
    assert (info["balance"], info["spendable"], info["expired_pending"]) == (1_700, 700, 1_000)
    refused(
        send(world, ALICE, "pay", pay_args(BAKERY, 701), at=after_first + 1), "insufficient_funds"
    )
    result = ok(
        send(world, city.outsider, "expire", {"currency_id": CUR, "account": ALICE.public.did})
    )
    assert (result["expired"], result["lots"]) == (1_000, 1)
    totals = check_invariants(chain)
    assert (totals["expired"], totals["supply"]) == (1_000, 710)
    assert (
        ok(send(world, city.outsider, "expire", {"currency_id": CUR, "account": ALICE.public.did}))[
            "expired"
        ]
        == 0
    )
    assert q(chain, "daily")[-1]["expired"] == 1_000
    refused(
        send(world, city.outsider, "expire", {"currency_id": CUR, "account": CAROL.public.did}),
        "not_enrolled",
    )
    entries = q(chain, "history", account=ALICE.public.did)["entries"]
    assert [(e["kind"], e["change"]) for e in entries] == [
        ("minted", 1_000),
        ("minted", 700),
        ("expired", -1_000),
    ]


def test_paying_sweeps_expired_lots(city: City, chain: Chain, world: Ledger) -> None:
    first = ok(send(world, city.clerk, "mint", mint_args(ALICE, 1_000), at=T0 + DAY))
    ok(send(world, city.clerk, "mint", mint_args(ALICE, 700), at=T0 + 11 * DAY))
    ok(send(world, ALICE, "pay", pay_args(BAKERY, 200), at=first["expires_ms"]))
    info = bal(chain, ALICE)
    assert (info["balance"], info["lot_count"]) == (500, 1)
    assert check_invariants(chain)["expired"] == 1_000


# -- redeem and settle --------------------------------------------------------------------------


def test_redeem_then_settle_reduces_the_reserve(city: City, chain: Chain, world: Ledger) -> None:
    ok(send(world, city.clerk, "mint", mint_args(ALICE, 50_000)))
    ok(send(world, ALICE, "pay", pay_args(BAKERY, 30_000)))
    redeem = {"currency_id": CUR, "amount": 20_000, "payout_reference_hash": ref("payout/1")}
    order = ok(send(world, BAKERY, "redeem", redeem))
    assert (order["order_id"], order["status"], order["merchant"]) == (1, "pending", "bakery")
    totals = check_invariants(chain)
    assert (totals["burned"], totals["supply"], totals["pending_settlement"]) == (
        20_000,
        30_000,
        20_000,
    )
    refused(send(world, BAKERY, "redeem", {**redeem, "amount": 10_001}), "insufficient_funds")
    refused(send(world, ALICE, "redeem", {**redeem, "amount": 1}), "not_merchant")
    refused(send(world, MILL, "redeem", {**redeem, "amount": 1}), "insufficient_funds")
    assert q(chain, "orders", status="pending")["orders"] == [order]
    settle = {"currency_id": CUR, "order_id": 1, "bank_reference": ref("bank/1")}
    paid = ok(send(world, city.archivist, "settle", settle))
    assert paid["status"] == "paid"
    totals = check_invariants(chain)
    assert (totals["reserve"], totals["settled"], totals["pending_settlement"]) == (
        9_980_000,
        20_000,
        0,
    )
    refused(send(world, city.archivist, "settle", settle), "already_settled")
    refused(send(world, city.archivist, "settle", {**settle, "order_id": 2}), "unknown_order")
    assert q(chain, "orders", status="pending")["orders"] == []
    day = q(chain, "daily")[-1]
    assert (day["redeemed"], day["settled"], day["reserve"]) == (20_000, 20_000, 9_980_000)


def test_history_pages(city: City, chain: Chain, world: Ledger) -> None:
    for _ in range(5):
        ok(send(world, city.clerk, "mint", mint_args(ALICE, 10)))
    page = q(chain, "history", account=ALICE.public.did, limit=2)
    assert [e["seq"] for e in page["entries"]] == [1, 2]
    page = q(chain, "history", account=ALICE.public.did, after=page["next"], limit=3)
    assert ([e["seq"] for e in page["entries"]], page["next"]) == ([3, 4, 5], 5)
    assert q(chain, "history", account=ALICE.public.did, after=5)["entries"] == []
    with pytest.raises(Exception, match="limit"):
        q(chain, "history", account=ALICE.public.did, limit=1_001)


# -- authorisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "signer", "args"),
    [
        ("define", "archivist", lambda: definition(currency_id="other")),
        ("define", "outsider", lambda: definition(currency_id="other")),
        ("attest_reserve", "clerk", lambda: reserve(1, "x")),
        ("mint", "archivist", lambda: mint_args(ALICE, 1)),
        ("mint", "district", lambda: mint_args(ALICE, 1)),
        (
            "mint_batch",
            "outsider",
            lambda: {
                "currency_id": CUR,
                "items": [{"to": ALICE.public.did, "amount": 1}],
                "batch_id": "x",
            },
        ),
        ("enroll", "clerk", lambda: enroll_args(CAROL)),
        (
            "register_merchant",
            "clerk",
            lambda: merchant_args("new", merchant("new"), "food", "north"),
        ),
        ("suspend_merchant", "archivist", lambda: {"merchant_id": "bakery"}),
        ("purchase", "clerk", lambda: purchase_args(ALICE, 1, "x")),
        (
            "settle",
            "clerk",
            lambda: {"currency_id": CUR, "order_id": 1, "bank_reference": ref("x")},
        ),
        (
            "attest_activity",
            "archivist",
            lambda: {
                "currency_id": CUR,
                "account": ALICE.public.did,
                "activity": "volunteer_hour",
                "quantity": 1,
                "reference": ref("x"),
            },
        ),
    ],
)
def test_unauthorised_signers_are_dropped(
    city: City, chain: Chain, world: Ledger, method: str, signer: str, args: Any
) -> None:
    before = city.snapshot()
    with pytest.raises(TxRejected) as e:
        send(world, getattr(city, signer), method, args())
    assert e.value.reason == "unauthorized"
    assert city.snapshot() == before
