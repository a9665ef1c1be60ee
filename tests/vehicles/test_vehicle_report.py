"""The history report: built from a real chain's events, its digest, verification by its QR
payload (authentic, tampered, newer events, another chain), and the printable PDF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from vehicle_helpers import DAY, T0, VIN, grant_roles, inspect, owner, ref, register, send

from civicledger.agency.vehicle_desk import VehicleDesk, VehicleDeskError
from civicledger.agency.vehicle_report import HANGUL_FONT, report_lines, report_pdf
from civicledger.crypto.keys import PrivateKey
from civicledger.node.chain import Chain
from civicledger.services.identity.qr_image import decode_qr_image
from civicledger.services.registry import city_registry
from civicledger.services.vehicles.report import (
    ReportError,
    build_report,
    check_report,
    parse_payload,
    report_digest,
)
from conftest import City, Ledger, make_city, ok

KIM, LEE, PARK = owner("kim"), owner("lee"), owner("park")


class ChainReader:
    """The desk's ``LedgerAccess`` over a test chain: reads only (nothing here signs)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def query(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        return self.chain.query(contract, method, args)

    def send_as(self, key: PrivateKey, contract: str, method: str, args: dict[str, Any]) -> Any:
        raise AssertionError("the report never writes")


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city", city_registry())


@pytest.fixture
def desk(city: City, ledger: Ledger, chain: Chain) -> VehicleDesk:
    """A car with two owners after KIM, a rollback, a cluster replacement, a flood and an open
    lien."""
    grant_roles(city, ledger)
    register(city, ledger, VIN, KIM, T0, km=5)
    inspect(city, ledger, VIN, 60_000, "i1", T0 + 300 * DAY)
    for new in (LEE, PARK):
        ok(send(ledger, city.clerk, "transfer", {"vin": VIN, "new_owner": new.public.did}))
    inspect(city, ledger, VIN, 20_000, "i2", T0 + 400 * DAY)
    cluster = {"vin": VIN, "work_hash": ref("c"), "before_km": 25_000, "after_km": 0}
    ok(send(ledger, city.district, "replace_cluster", cluster, at=T0 + 420 * DAY))
    flood = {"vin": VIN, "kind": "flood", "claim_hash": ref("f"), "paid_krw": 3_000_000}
    ok(send(ledger, city.district, "accident", flood))
    lien = {"vin": VIN, "encumbrance_id": "capital-9", "holder_hash": ref("capital")}
    ok(send(ledger, city.clerk, "lien", lien))
    return VehicleDesk(ChainReader(chain), city.chain_id)


def test_the_report_counts_owners_flags_the_rollback_and_never_names(desk: VehicleDesk) -> None:
    report = desk.report(VIN)
    assert report.count == 8
    assert report.owner_count == 3
    assert [p.km for p in report.mileage] == [5, 60_000, 20_000, 25_000, 0]
    assert [p.total_km for p in report.mileage][-1] == 25_000
    (rollback,) = report.discrepancies
    assert (rollback.km, rollback.seq) == (20_000, 5)
    assert report.flags == ("flood", "odometer_discrepancy")
    assert report.mileage[-1].flags == ("cluster_replacement",)
    assert report.open_encumbrances == ("capital-9",)
    assert [a["accident"] for a in report.accidents] == ["flood"]
    text = str(report.to_json())
    for person in (KIM, LEE, PARK):
        assert person.public.did not in text


def test_a_report_verifies_and_learns_of_newer_events(
    city: City, ledger: Ledger, desk: VehicleDesk
) -> None:
    report = desk.report(VIN)
    check = desk.verify(report.qr_payload)
    assert (check.claim.digest, check.newer_events) == (report.digest, 0)
    ok(send(ledger, city.clerk, "release", {"vin": VIN, "encumbrance_id": "capital-9"}))
    check = desk.verify(report.qr_payload)
    assert check.newer_events == 1
    # An older snapshot still verifies, and rebuilding it gives the same digest.
    old = desk.report(VIN, count=2)
    assert desk.verify(old.qr_payload).newer_events == 7
    assert old.owner_count == 1
    assert desk.report(VIN, count=2).digest == old.digest


def test_a_tampered_report_is_not_authentic(desk: VehicleDesk, city: City) -> None:
    report = desk.report(VIN)
    claim = parse_payload(report.qr_payload)
    forged = report.qr_payload.replace(f":{report.count}:", f":{report.count - 1}:")
    with pytest.raises(ReportError) as raised:
        desk.verify(forged)
    assert raised.value.reason == "report_not_authentic"
    events = desk.first_events(VIN, report.count)
    doctored = [dict(e) for e in events]
    doctored[4]["tx_id"] = "00" * 32
    with pytest.raises(ReportError) as raised:
        check_report(claim, city.chain_id, doctored, report.count)
    assert raised.value.reason == "report_not_authentic"
    with pytest.raises(ReportError) as raised:
        check_report(claim, "otherville", events, report.count)
    assert raised.value.reason == "wrong_chain"
    too_many = report.qr_payload.replace(f":{report.count}:", ":99:")
    with pytest.raises(ReportError) as raised:
        desk.verify(too_many)
    assert raised.value.reason == "report_not_authentic"


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "civic-vehicle-report:2:testville:KMHXX00XXXX000001:1:1:" + "0" * 64,
        "civic-vehicle-report:1:testville:KMHXX00XXXX00000O:1:1:" + "0" * 64,
        "civic-vehicle-report:1:testville:KMHXX00XXXX000001:0:1:" + "0" * 64,
        "civic-vehicle-report:1:testville:KMHXX00XXXX000001:1:1:" + "0" * 63,
        "https://example.org/",
    ],
)
def test_malformed_payloads_are_refused(payload: str) -> None:
    with pytest.raises(ReportError) as raised:
        parse_payload(payload)
    assert raised.value.reason == "bad_report_payload"


def test_unknown_vehicles_and_gaps(desk: VehicleDesk, city: City) -> None:
    with pytest.raises(VehicleDeskError) as raised:
        desk.report("KMHXX00XXXX000999")
    assert raised.value.reason == "unknown_vehicle"
    with pytest.raises(VehicleDeskError):
        desk.report("not a vin")
    events = desk.first_events(VIN, 3)
    with pytest.raises(ReportError):
        build_report(city.chain_id, desk.vehicle(VIN), [events[0], events[2]])
    with pytest.raises(ReportError):
        report_digest(city.chain_id, VIN, [])


def test_the_pdf_carries_the_report_and_a_qr_that_verifies(
    desk: VehicleDesk, tmp_path: Path
) -> None:
    report = desk.report(VIN)
    english = report_pdf(report, report.qr_payload, font=tmp_path / "no-such-font.ttf")
    (tmp_path / "r.pdf").write_bytes(english)
    page = PdfReader(tmp_path / "r.pdf").pages[0]
    text = page.extract_text()
    assert VIN in text
    assert "odometer rollback" in text
    assert "Owners: 3" in text
    (image,) = page.images
    assert decode_qr_image(image.data) == report.qr_payload
    assert desk.verify(decode_qr_image(image.data)).newer_events == 0


def test_report_lines_in_korean(desk: VehicleDesk) -> None:
    lines = report_lines(desk.report(VIN), "ko")
    assert "소유자 수: 3" in lines
    assert any("주행거리 조작 의심" in line for line in lines)


@pytest.mark.skipif(not HANGUL_FONT.is_file(), reason="no Hangul font on this machine")
def test_the_pdf_is_korean_when_the_font_exists(desk: VehicleDesk, tmp_path: Path) -> None:
    report = desk.report(VIN)
    (tmp_path / "ko.pdf").write_bytes(report_pdf(report, report.qr_payload))
    page = PdfReader(tmp_path / "ko.pdf").pages[0]
    assert "소유자 수: 3" in page.extract_text()
    (image,) = page.images
    assert decode_qr_image(image.data) == report.qr_payload
