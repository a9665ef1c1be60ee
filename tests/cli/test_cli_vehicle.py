"""``civic vehicle`` end to end in one city directory, in-process through the real ``civic``
app: register, inspect (from the record file), a rollback and its mark, repair, cluster
replacement, accident, a lien blocking an offer, an escrowed sale settled by the transfer, the
payout confirmed, the report (text, JSON, PDF with a QR that verifies) and the refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Civic, assert_one_error_line, new_runner
from pypdf import PdfReader
from typer.testing import Result

from civicledger.agency.ledger import NodeLedger
from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer
from civicledger.city import NODE_KEY, load_key
from civicledger.crypto.encoding import sha256
from civicledger.node.embedded import EmbeddedNode
from vehicle_samples import BANK, REGISTRY, ROLLED, STATION, populate, vehicle_city

VIN = "KMHCL10000000000A"


@pytest.fixture
def civic() -> Civic:
    return new_runner()


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def _json(result: Result) -> Any:
    return json.loads(_ok(result).stdout)


def test_a_car_from_registration_to_sale_and_report(civic: Civic, tmp_path: Path) -> None:
    layout = vehicle_city(tmp_path / "city")
    seller = layout.keystore.create("seller").did
    buyer = layout.keystore.create("buyer").did
    base = ("--dir", layout.root, "vehicle")
    record = tmp_path / "inspection.pdf"
    record.write_bytes(b"performance and condition record #1")

    car = _json(
        civic(
            *base,
            "register",
            VIN,
            "--owner",
            seller,
            "--make",
            "kia",
            "--year",
            "2017",
            "--km",
            "40000",
            "--key",
            REGISTRY,
        )
    )
    assert car["owner_count"] == 1
    event = _json(
        civic(*base, "inspect", VIN, "--km", "40100", "--record", record, "--key", STATION)
    )
    assert event["record_hash"] == sha256(record.read_bytes()).hex()
    rolled = _json(
        civic(
            *base,
            "inspect",
            VIN,
            "--km",
            "12000",
            "--record",
            "a" * 64,
            "--kind",
            "periodic",
            "--key",
            STATION,
        )
    )
    assert rolled["flags"] == ["rollback"]
    _ok(civic(*base, "repair", VIN, "--work", "b" * 64, "--part", "bumper", "--key", STATION))
    cluster = _json(
        civic(
            *base,
            "cluster",
            VIN,
            "--before",
            "12050",
            "--after",
            "0",
            "--work",
            "c" * 64,
            "--key",
            STATION,
        )
    )
    assert cluster["flags"] == ["cluster_replacement"]
    _ok(
        civic(
            *base,
            "accident",
            VIN,
            "--kind",
            "collision",
            "--claim",
            "d" * 64,
            "--paid",
            "700000",
            "--key",
            STATION,
        )
    )

    # A lien blocks the offer; released, the sale goes through escrow.
    _ok(
        civic(*base, "lien", VIN, "capital-1", "--holder", "Capital Co. loan 77", "--key", REGISTRY)
    )
    offer = (
        *base,
        "offer",
        VIN,
        "--buyer",
        buyer,
        "--price",
        "9500000",
        "--disclosure",
        record,
        "--key",
        "seller",
    )
    assert_one_error_line(civic(*offer), "vehicle_encumbered")
    _ok(civic(*base, "release", VIN, "capital-1", "--key", REGISTRY))
    sale = _json(civic(*offer))
    sale_id = str(sale["sale_id"])
    assert_one_error_line(civic(*base, "accept", sale_id, "--key", "seller"), "not_buyer")
    _ok(civic(*base, "accept", sale_id, "--key", "buyer"))
    _ok(
        civic(*base, "deposit", sale_id, "--amount", "9500000", "--bank-ref", "TX-1", "--key", BANK)
    )
    _ok(civic(*base, "transfer", VIN, "--to", buyer, "--sale", sale_id, "--key", REGISTRY))
    paid = _json(civic(*base, "confirm", "1", "--bank-ref", "TX-2", "--key", BANK))
    assert (paid["status"], paid["to"], paid["amount"]) == ("paid", seller, 9_500_000)

    shown = _json(civic(*base, "show", VIN))
    assert (shown["owner"], shown["owner_count"], shown["discrepancy_count"]) == (buyer, 2, 1)
    history = _json(civic(*base, "history", VIN, "--after", "7", "--limit", "5"))
    assert [e["kind"] for e in history["events"]] == ["release", "transfer"]

    text = _ok(civic(*base, "report", VIN)).stdout
    assert "Owners: 2" in text
    assert "odometer rollback" in text
    assert seller not in text
    pdf = tmp_path / "report.pdf"
    report = _json(civic(*base, "report", VIN, "--json", "--pdf", pdf))
    assert report["owner_count"] == 2
    assert VIN in PdfReader(pdf).pages[0].extract_text()
    page = tmp_path / "report.html"
    _ok(civic(*base, "report", VIN, "--html", page, "--lang", "ko"))
    printable = page.read_text(encoding="utf-8")
    assert "주행거리 조작 의심" in printable
    assert "@media print" in printable
    assert report["qr_payload"] in printable
    assert seller not in printable
    qr = tmp_path / "qr.png"
    qr.write_bytes(PdfReader(pdf).pages[0].images[0].data)
    verified = _ok(civic(*base, "verify-report", "--qr", qr)).stdout
    assert "authentic" in verified
    assert "0 newer" in verified


def test_refusals_are_one_error_line(civic: Civic, tmp_path: Path) -> None:
    layout = vehicle_city(tmp_path / "city")
    owner = layout.keystore.create("owner").did
    base = ("--dir", layout.root, "vehicle")
    register = (*base, "register", VIN, "--owner", owner, "--make", "kia", "--year", "2017")
    _ok(civic(*register, "--key", REGISTRY))
    assert_one_error_line(civic(*register, "--key", REGISTRY), "vehicle_exists")
    assert_one_error_line(civic(*base, "show", "KMHCL10000000000B"), "unknown_vehicle")
    assert_one_error_line(
        civic(*base, "inspect", VIN, "--km", "1", "--record", "no-such-file", "--key", STATION),
        "bad_digest",
    )
    assert_one_error_line(
        civic(*base, "verify-report", "civic-vehicle-report:x"), "bad_report_payload"
    )
    assert_one_error_line(civic(*base, "verify-report"), "bad_request")
    report = _json(civic(*base, "report", VIN, "--json"))
    forged = report["qr_payload"][:-64] + "f" * 64
    assert_one_error_line(civic(*base, "verify-report", forged), "report_not_authentic")


def test_against_a_running_node(civic: Civic, tmp_path: Path) -> None:
    layout = vehicle_city(tmp_path / "city")
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        populate(NodeLedger(layout, node))
        with BackgroundServer(create_app(node)) as server:
            base = ("--dir", layout.root, "vehicle", "--node", server.url)
            report = _json(civic(*base, "report", ROLLED, "--json"))
            assert (report["owner_count"], report["flags"]) == (2, ["odometer_discrepancy"])
            lien = (*base, "lien", ROLLED, "tax-9", "--holder", "tax office case 9", "--key")
            event = _json(civic(*lien, REGISTRY))
            assert event["kind"] == "lien"
            assert_one_error_line(civic(*lien, REGISTRY), "encumbrance_exists")
            verified = _ok(civic(*base, "verify-report", report["qr_payload"])).stdout
            assert "1 newer" in verified
            assert _json(civic(*base, "show", ROLLED))["encumbrances"] == {
                "tax-9": {"kind": "lien", "seq": 6}
            }
