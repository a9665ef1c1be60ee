"""The demo city's used-car part on a fresh demo city, and a scan of the whole ledger for the
owners' names and resident numbers, the lender and the bank slips (only keys and digests may be
there)."""

from __future__ import annotations

import pytest

from civicledger.agency.ledger import CityLedger
from civicledger.city import CityDir
from civicledger.demo_vehicles import (
    CAR_A,
    CAR_B,
    DEPOSIT_SLIP,
    LENDER,
    PAYOUT_SLIP,
    PEOPLE,
    PRICE,
    DemoVehicles,
    run_vehicles,
)
from conftest import DemoCityTemplate
from ledger_scan import found, ledger_blobs

EXPECTED = [
    ("root registers the vehicle office, station, garage, insurer and bank", "ok", None),
    ("the office registers two used cars", "ok", None),
    ("the station inspects car A at 87,200 km; the office records its sale", "ok", None),
    ("the station reads car A at 31,000 km (a rollback)", "ok", None),
    ("the insurer records car B's collision; the garage replaces its cluster", "ok", None),
    ("the station records car B's performance inspection (성능·상태점검기록부)", "ok", None),
    ("a lender's lien is recorded on car B", "ok", None),
    ("the owner offers car B while the lien is open", "refused", "vehicle_encumbered"),
    ("the lien is released; the owner offers car B with its inspection record", "ok", None),
    ("the buyer accepts; the bank holds the payment", "ok", None),
    ("the office records the transfer; the payment goes to the seller", "ok", None),
    ("the bank confirms the payout", "ok", None),
    ("car A's owner offers it with car B's inspection record", "refused", "disclosure_mismatch"),
    ("a buyer's report of car A, verified by its QR code", "ok", None),
]


@pytest.fixture(scope="module")
def demo(
    demo_city_template: DemoCityTemplate, tmp_path_factory: pytest.TempPathFactory
) -> tuple[CityDir, DemoVehicles]:
    """The vehicles part runs where the demo runs it: on the demo city after the help coin."""
    layout = demo_city_template.fresh(tmp_path_factory.mktemp("demo") / "seoul")
    return layout, run_vehicles(layout)


def test_vehicle_steps(demo: tuple[CityDir, DemoVehicles]) -> None:
    layout, vehicles = demo
    assert [(s.title, s.outcome, s.reason) for s in vehicles.steps] == EXPECTED
    report = vehicles.report
    assert report is not None
    assert (report.vin, report.owner_count) == (CAR_A, 2)
    assert report.flags == ("odometer_discrepancy",)
    assert [p.km for p in report.discrepancies] == [31_000]
    assert vehicles.sale["status"] == "settled"
    assert vehicles.escrow["deposited"] == PRICE
    assert (vehicles.escrow["held"], vehicles.escrow["paid"]) == (0, PRICE)
    ledger = CityLedger(layout)
    car_b = ledger.query("vehicles", "vehicle", {"vin": CAR_B})
    assert car_b["owner"] == vehicles.owners["buyer"]
    assert (car_b["owner_count"], car_b["discrepancy_count"], car_b["encumbrances"]) == (2, 0, {})
    assert ledger.query("vehicles", "vehicle", {"vin": CAR_A})["discrepancy_count"] == 1


def test_no_personal_data_on_the_ledger(demo: tuple[CityDir, DemoVehicles]) -> None:
    layout, vehicles = demo
    blobs = ledger_blobs(layout)
    haystack = b"\x00".join(blobs)
    secrets = [part for person in PEOPLE.values() for part in person]
    secrets += [person[1].replace("-", "") for person in PEOPLE.values()]
    secrets += [LENDER, DEPOSIT_SLIP, PAYOUT_SLIP, "110-482-339271", "302-118-004512"]
    assert found(secrets, blobs) == []
    # The scan does see what is meant to be there: the owners' keys, and the register's keys
    # are exactly those keys (the link to a person stays with the office).
    for did in vehicles.owners.values():
        assert did.encode() in haystack
    assert set(vehicles.register) == set(vehicles.owners.values())
    # The buyer's report names no one, not even by key.
    text = str(vehicles.report.to_json() if vehicles.report else "")
    assert all(did not in text for did in vehicles.owners.values())
