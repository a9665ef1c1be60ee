"""The daily reconciliation report: a scripted day through a real Chain, its CSV, its checks."""

from __future__ import annotations

import csv
import io
import json
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

from civicledger.agency.currency_report import daily_report
from civicledger.errors import CivicError
from civicledger.node.chain import Chain
from civicledger.services.currency.report import (
    ReconciliationFailed,
    ReportError,
    reconciliation,
)
from civicledger.services.registry import city_registry
from conftest import GENESIS_TIME_MS, City, Ledger, make_city
from conftest import ok as ok_result

DAY = 86_400_000
DAY_A = GENESIS_TIME_MS - GENESIS_TIME_MS % DAY + 10 * DAY
"""2023-11-24 00:00 UTC: the currency starts."""
DAY_B = DAY_A + 31 * DAY
"""2023-12-25 00:00 UTC: the scripted day, after day A's 30-day lots expired."""
ALICE, BOB = holder("alice"), holder("bob")
BAKERY, BOOKSHOP, MILL = merchant("bakery"), merchant("bookshop"), merchant("mill")


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city", city_registry())


def did(key: Any) -> str:
    return str(key.public.did)


def setup_day_a(city: City, ledger: Ledger) -> None:
    grant_roles(city, ledger)
    at = DAY_A + 3_600_000
    ok_result(send(ledger, city.clerk, "define", definition(), at=at))
    ok_result(send(ledger, city.archivist, "attest_reserve", {"currency_id": CUR,
              "amount": 10_000_000, "reference": ref("initial")}))  # fmt: skip
    for key in (ALICE, BOB):
        args = {"currency_id": CUR, "account": did(key), "region": "north"}
        ok_result(send(ledger, city.district, "enroll", args))
    for merchant_id, key, category, region in (
        ("bakery", BAKERY, "food", "north"),
        ("bookshop", BOOKSHOP, "books", "south"),
        ("mill", MILL, "food", "north"),
    ):
        args = {"merchant_id": merchant_id, "business_number_hash": ref(merchant_id),
                "category": category, "region": region, "account": did(key)}  # fmt: skip
        ok_result(send(ledger, city.district, "register_merchant", args))
    ok_result(send(ledger, city.clerk, "mint", mint(ALICE, 100_000)))
    ok_result(send(ledger, city.clerk, "mint", mint(BOB, 50_000)))


def mint(key: Any, amount: int) -> dict[str, Any]:
    return {"currency_id": CUR, "to": did(key), "amount": amount, "reason": "welfare"}


def pay(to: Any, amount: int) -> dict[str, Any]:
    return {"currency_id": CUR, "to": did(to), "amount": amount}


def run_day_b(city: City, ledger: Ledger) -> None:
    """Mint, purchase (with its 10% bonus), expire, pay, B2B, redeem and settle, on day B."""
    at = DAY_B + 8 * 3_600_000
    ok_result(send(ledger, city.clerk, "mint", mint(ALICE, 200_000), at=at))
    purchase = {"currency_id": CUR, "account": did(BOB), "amount": 100_000,
                "bank_reference": ref("purchase")}  # fmt: skip
    ok_result(send(ledger, city.archivist, "purchase", purchase))
    ok_result(send(ledger, city.district, "expire", {"currency_id": CUR, "account": did(BOB)}))
    ok_result(send(ledger, ALICE, "pay", pay(BAKERY, 30_000)))  # Sweeps alice's expired lot.
    ok_result(send(ledger, BOB, "pay", pay(BOOKSHOP, 20_000)))
    ok_result(send(ledger, BAKERY, "pay", pay(MILL, 5_000)))
    redeem = {"currency_id": CUR, "amount": 20_000, "payout_reference_hash": ref("payout")}
    order = ok_result(send(ledger, BAKERY, "redeem", redeem))
    settle = {"currency_id": CUR, "order_id": order["order_id"], "bank_reference": ref("paid")}
    ok_result(send(ledger, city.archivist, "settle", settle))


def test_the_report_of_a_scripted_day_matches_the_totals(
    city: City, chain: Chain, ledger: Ledger
) -> None:
    setup_day_a(city, ledger)
    before = q(chain, "totals")
    run_day_b(city, ledger)
    after = check_invariants(chain)

    report = daily_report(chain, CUR, "2023-12-25")

    assert report.ok, report.checks
    report.require_ok()
    assert (report.minted, report.spent, report.b2b, report.p2p) == (310_000, 50_000, 5_000, 0)
    assert (report.redeemed, report.settled, report.expired) == (20_000, 20_000, 150_000)
    assert report.spent_by_category == (("books", 20_000), ("food", 30_000))
    assert report.spent_by_region == (("north", 30_000), ("south", 20_000))
    assert report.minted == after["minted"] - before["minted"]
    assert report.redeemed == after["burned"] - before["burned"]
    assert report.expired == after["expired"] - before["expired"]
    assert report.settled == after["settled"] - before["settled"]
    assert (report.supply, report.reserve) == (after["supply"], after["reserve"])
    assert dict(report.totals) == {name: after[name] for name in dict(report.totals)}
    assert [check.name for check in report.checks] == [
        "supply_identity",
        "reserve_backing",
        "day_spent_by_category",
        "day_spent_by_region",
        "day_backing",
    ]
    data = json.loads(report.to_json())
    assert (data["day"], data["minted"], data["ok"]) == ("2023-12-25", 310_000, True)

    # Day A is reported too; a quiet day between keeps day A's closing balances.
    day_a = daily_report(chain, CUR, "2023-11-24")
    assert (day_a.minted, day_a.spent, day_a.expired) == (150_000, 0, 0)
    quiet = daily_report(chain, CUR, "2023-12-01")
    assert (quiet.minted, quiet.spent, quiet.supply) == (0, 0, day_a.supply)
    assert quiet.reserve == day_a.reserve == 10_000_000


def test_the_csv_round_trips_every_number(city: City, chain: Chain, ledger: Ledger) -> None:
    setup_day_a(city, ledger)
    run_day_b(city, ledger)
    report = daily_report(chain, CUR, "2023-12-25")
    rows = list(csv.reader(io.StringIO(report.to_csv())))
    assert rows[0] == ["section", "key", "value"]
    parsed = [(section, key, int(value)) for section, key, value in rows[1:]]
    assert parsed == report.rows()
    found = {(section, key): value for section, key, value in parsed}
    assert found["day", "minted"] == report.minted == 310_000
    assert found["spent_by_category", "food"] == 30_000
    assert found["spent_by_region", "south"] == 20_000
    assert found["totals", "supply"] == report.supply
    assert found["check", "supply_identity"] == 1
    assert all(value.lstrip("-").isdigit() for _, _, value in rows[1:])


# -- pure: checks fail on tampered figures, bad figures are refused ------------------------------


def figures(**change: Any) -> dict[str, Any]:
    day = {
        "day": "2023-12-25",
        "minted": 300,
        "spent": 50,
        "spent_by_category": {"food": 30, "books": 20},
        "spent_by_region": {"north": 30, "south": 20},
        "b2b": 5,
        "p2p": 0,
        "redeemed": 20,
        "settled": 20,
        "expired": 10,
        "supply": 270,
        "reserve": 1_000,
    }
    return {**day, **change}


def totals(**change: Any) -> dict[str, Any]:
    running = {
        "minted": 300,
        "burned": 20,
        "expired": 10,
        "supply": 270,
        "reserve": 1_000,
        "pending_settlement": 0,
        "settled": 20,
    }
    return {**running, **change}


def test_untampered_figures_pass() -> None:
    report = reconciliation(CUR, "2023-12-25", figures(), totals())
    assert report.ok
    report.require_ok()


@pytest.mark.parametrize(
    ("day", "running", "failed"),
    [
        ({}, {"supply": 271, "reserve": 1_000}, "supply_identity"),
        ({}, {"burned": 21}, "supply_identity"),
        ({}, {"reserve": 269}, "reserve_backing"),
        ({}, {"pending_settlement": 731}, "reserve_backing"),
        ({"spent_by_category": {"food": 31, "books": 20}}, {}, "day_spent_by_category"),
        ({"spent": 49}, {}, "day_spent_by_category"),
        ({"spent_by_region": {"north": 30}}, {}, "day_spent_by_region"),
        ({"reserve": 269}, {}, "day_backing"),
    ],
)
def test_a_tampered_figure_fails_its_check(
    day: dict[str, Any], running: dict[str, Any], failed: str
) -> None:
    report = reconciliation(CUR, "2023-12-25", figures(**day), totals(**running))
    assert not report.ok
    assert failed in [check.name for check in report.checks if not check.ok]
    with pytest.raises(ReconciliationFailed, match=failed) as raised:
        report.require_ok()
    assert raised.value.reason == "reconciliation_failed"
    assert ("check", failed, 0) in report.rows()


@pytest.mark.parametrize(
    ("day", "running", "message"),
    [
        ({"minted": 1.5}, {}, "minted of 2023-12-25"),
        ({"minted": True}, {}, "not an integer"),
        ({"spent": -1}, {}, "negative"),
        ({"spent_by_region": [30]}, {}, "not a mapping"),
        ({"spent_by_category": {"food": "30"}}, {}, "not an integer"),
        ({"day": "2023-12-24"}, {}, "not of '2023-12-25'"),
        ({}, {"reserve": None}, "reserve of totals"),
        ({}, {"pending_settlement": -5}, "negative"),
    ],
)
def test_malformed_figures_are_refused(
    day: dict[str, Any], running: dict[str, Any], message: str
) -> None:
    with pytest.raises(ReportError, match=message) as raised:
        reconciliation(CUR, "2023-12-25", figures(**day), totals(**running))
    assert raised.value.reason == "bad_figures"


def test_an_unknown_currency_is_refused(city: City, chain: Chain, ledger: Ledger) -> None:
    with pytest.raises(CivicError) as raised:
        daily_report(chain, "no-such-coin", "2023-12-25")
    assert raised.value.reason == "unknown_currency"
