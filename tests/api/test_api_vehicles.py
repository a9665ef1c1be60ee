"""The vehicles API over real HTTP: a car's record, events and history report (JSON, PDF, QR),
verifying a report by its QR payload, and a whole sale signed by the parties' wallets through
``POST /api/v1/tx`` (``civicledger.client``), with the refusals on the way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import assert_problem

from civicledger.client import CivicClient, Wallet
from civicledger.services.identity.qr_image import decode_qr_image
from served_city import ServedCity, served_city
from vehicle_samples import (
    BANK,
    BUYER,
    CLEAN,
    FIRST,
    LIENED,
    REGISTRY,
    ROLLED,
    SECOND,
    digest,
    populate,
    vehicle_city,
)

PRICE = 12_000_000


@pytest.fixture
def lot(tmp_path: Path) -> Iterator[ServedCity]:
    with served_city(
        vehicle_city(tmp_path / "city"), domain="https://cars.testville.example", prepare=populate
    ) as served:
        yield served


def test_record_events_and_report(lot: ServedCity) -> None:
    car = lot.http.get(f"/api/v1/vehicles/{ROLLED}").json()
    assert (car["owner_count"], car["discrepancy_count"], car["events"]) == (2, 1, 5)
    page = lot.http.get(f"/api/v1/vehicles/{ROLLED}/events", params={"limit": 2}).json()
    assert [e["kind"] for e in page["events"]] == ["registration", "inspection"]
    assert page["next"] == 2
    report = lot.http.get(f"/api/v1/vehicles/{ROLLED}/report").json()
    assert report["owner_count"] == 2
    assert report["flags"] == ["odometer_discrepancy"]
    assert [p["flags"] for p in report["mileage"]] == [[], [], ["rollback"]]
    assert FIRST.public.did not in str(report)
    assert SECOND.public.did not in str(report)

    png = lot.http.get(f"/api/v1/vehicles/{ROLLED}/report/qr.png")
    assert png.headers["content-type"] == "image/png"
    payload = decode_qr_image(png.content)
    assert payload == report["qr_payload"]
    verdict = lot.http.get("/api/v1/vehicles/reports/verify", params={"payload": payload}).json()
    assert (verdict["authentic"], verdict["newer_events"]) == (True, 0)

    pdf = lot.http.get(f"/api/v1/vehicles/{ROLLED}/report.pdf", params={"count": 3})
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def test_verify_answers_and_problems(lot: ServedCity) -> None:
    report = lot.http.get(f"/api/v1/vehicles/{CLEAN}/report", params={"count": 1}).json()
    verify = "/api/v1/vehicles/reports/verify"
    verdict = lot.http.get(verify, params={"payload": report["qr_payload"]}).json()
    assert (verdict["authentic"], verdict["newer_events"], verdict["current_count"]) == (
        True,
        1,
        2,
    )
    forged = report["qr_payload"][:-64] + "0" * 64
    verdict = lot.http.get(verify, params={"payload": forged}).json()
    assert (verdict["authentic"], verdict["reason"]) == (False, "report_not_authentic")
    assert_problem(lot.http.get(verify, params={"payload": "hello"}), 400, "bad_report_payload")
    unknown = report["qr_payload"].replace(CLEAN, "KMHSAMPLE00000099")
    assert_problem(lot.http.get(verify, params={"payload": unknown}), 404, "unknown_vehicle")
    assert_problem(lot.http.get("/api/v1/vehicles/KMHSAMPLE00000099"), 404, "unknown_vehicle")
    assert lot.http.get("/api/v1/vehicles/not-a-vin").status_code == 422
    assert_problem(lot.http.get("/api/v1/vehicles/sales/77"), 404, "unknown_sale")
    missing = f"/api/v1/vehicles/records/{digest('nothing')}"
    assert_problem(lot.http.get(missing), 404, "unknown_record")


def test_a_sale_through_the_api(lot: ServedCity) -> None:
    record = lot.http.get(f"/api/v1/vehicles/records/{digest('clean-disclosure')}").json()
    assert record["vin"] == CLEAN
    offer = {
        "vin": CLEAN,
        "buyer": BUYER.public.did,
        "price": PRICE,
        "disclosure_hash": digest("clean-disclosure"),
    }
    with CivicClient(lot.url, lot.layout.genesis()) as client:
        seller, buyer = Wallet(client, FIRST), Wallet(client, BUYER)
        refused = Wallet(client, SECOND).send("vehicles", "offer", {**offer, "vin": LIENED})
        assert (refused.status, refused.reason) == ("failed", "vehicle_encumbered")
        sale = seller.send("vehicles", "offer", offer)
        assert sale.status == "ok", sale.message
        sale_id = sale.result["sale_id"]
        assert buyer.send("vehicles", "accept", {"sale_id": sale_id}).status == "ok"
    deposit = {"sale_id": sale_id, "amount": PRICE, "bank_reference": digest("deposit")}
    lot.ledger.send(BANK, "vehicles", "deposit", deposit)
    transfer = {"vin": CLEAN, "new_owner": BUYER.public.did, "sale_id": sale_id}
    lot.ledger.send(REGISTRY, "vehicles", "transfer", transfer)
    assert lot.http.get(f"/api/v1/vehicles/sales/{sale_id}").json()["status"] == "settled"
    escrow = lot.http.get("/api/v1/vehicles/escrow").json()
    assert (escrow["deposited"], escrow["held"], escrow["released"]) == (PRICE, 0, PRICE)
    car = lot.http.get(f"/api/v1/vehicles/{CLEAN}").json()
    assert (car["owner"], car["owner_count"]) == (BUYER.public.did, 2)
