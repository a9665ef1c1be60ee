"""The used-car pages over real HTTP: look up a VIN, the report (owner count, rollback flag,
SVG chart, QR code, PDF link) in Korean and English, verifying a report (authentic, newer
events, forged, malformed), the 404s, and the pure chart geometry."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from civicledger.agency.ledger import NodeLedger
from civicledger.services.vehicles.report import MileagePoint
from civicledger.web.vehicles import CHART_SIZE, mileage_chart
from served_city import served_city
from vehicle_samples import (
    CLEAN,
    FIRST,
    LIENED,
    ROLLED,
    SECOND,
    populate,
    vehicle_city,
)


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, NodeLedger]]:
    layout = vehicle_city(tmp_path_factory.mktemp("vehicles-portal") / "city")
    with served_city(
        layout, portal=True, domain="https://cars.testville.example", prepare=populate
    ) as served:
        yield served.http, served.ledger


def test_lookup_redirects_to_the_report(http: tuple[httpx.Client, NodeLedger]) -> None:
    client, _ = http
    page = client.get("/vehicles", params={"lang": "en"})
    assert page.status_code == 200
    assert 'id="lookup-form"' in page.text
    found = client.get("/vehicles", params={"vin": ROLLED.lower()}, follow_redirects=False)
    assert found.status_code == 303
    assert found.headers["location"].endswith(f"/vehicles/{ROLLED}")
    bad = client.get("/vehicles", params={"vin": "12345"})
    assert 'id="bad-vin"' in bad.text


def test_the_report_page(http: tuple[httpx.Client, NodeLedger]) -> None:
    client, _ = http
    page = client.get(f"/vehicles/{ROLLED}", params={"lang": "ko"})
    assert page.status_code == 200
    html = page.text
    assert re.search(r'id="owner-count">2<', html)
    assert 'data-flag="odometer_discrepancy"' in html
    assert "주행거리 조작 의심" in html
    assert "중고차 이력 보고서" in html
    circles = re.findall(r'<circle class="reading[^"]*"[^>]*data-flags="([^"]*)"', html)
    assert circles == ["", "", "rollback"]
    assert re.search(r'id="last-day">\d{4}-\d{2}-\d{2}<', html)
    assert 'class="qr"' in html
    assert 'id="print-button"' in html
    assert f"/api/v1/vehicles/{ROLLED}/report.pdf" in html
    for person in (FIRST, SECOND):
        assert person.public.did not in html
    english = client.get(f"/vehicles/{ROLLED}", params={"lang": "en"}).text
    assert "odometer rollback" in english
    assert "Used-car history report" in english
    liened = client.get(f"/vehicles/{LIENED}", params={"lang": "en"}).text
    assert 'id="open-encumbrances"' in liened
    assert "capital-1" in liened


def _payload(html: str) -> str:
    found = re.search(r'id="qr-payload">([^<]+)<', html)
    assert found is not None
    return found.group(1)


def test_verify_a_report(http: tuple[httpx.Client, NodeLedger]) -> None:
    client, ledger = http
    html = client.get(f"/vehicles/{CLEAN}", params={"lang": "en"}).text
    payload = _payload(html)
    link = re.search(r'id="verify-link" href="([^"]+)"', html)
    assert link is not None
    assert parse_qs(urlparse(link.group(1).replace("&amp;", "&")).query)["payload"] == [payload]
    page = client.get("/vehicles/verify", params={"payload": payload, "lang": "en"}).text
    assert 'data-authentic="true"' in page
    assert 'id="current"' in page
    repair = {"vin": CLEAN, "work_hash": "e" * 64, "parts": ["tyre"]}
    ledger.send("vehicle-station", "vehicles", "repair", repair)
    page = client.get("/vehicles/verify", params={"payload": payload, "lang": "ko"}).text
    assert 'data-newer="1"' in page
    assert "이후 1건의 기록이 추가되었습니다" in page
    flipped = payload[:-1] + ("1" if payload.endswith("0") else "0")
    forged = client.get("/vehicles/verify", params={"payload": flipped}).text
    assert 'data-reason="report_not_authentic"' in forged
    junk = client.get("/vehicles/verify", params={"payload": "<b>hello</b>"}).text
    assert 'data-reason="bad_report_payload"' in junk
    assert "<b>hello</b>" not in junk
    assert 'id="verdict"' not in client.get("/vehicles/verify").text


def test_unknown_and_malformed_vins_are_404(http: tuple[httpx.Client, NodeLedger]) -> None:
    client, _ = http
    assert client.get("/vehicles/KMHSAMPLE00000099").status_code == 404
    assert client.get("/vehicles/not-a-vin").status_code == 404


def test_the_chart_geometry_is_pure() -> None:
    points = [
        MileagePoint(1, 0, 0, 0, "registration", ()),
        MileagePoint(2, 1000, 50_000, 50_000, "inspection", ()),
        MileagePoint(3, 2000, 10_000, 10_000, "inspection", ("rollback",)),
        MileagePoint(3, 2000, 0, 10_000, "cluster_replacement", ("cluster_replacement",)),
    ]
    chart = mileage_chart(points)
    left, right = CHART_SIZE["left"], CHART_SIZE["width"] - CHART_SIZE["right"]
    bottom, top = CHART_SIZE["height"] - CHART_SIZE["bottom"], CHART_SIZE["top"]
    xs = [p.x for p in chart.points]
    assert xs[0] == left
    assert xs == sorted(xs)
    assert len(set(xs)) == 4
    assert max(xs) <= right
    assert chart.points[1].y == top
    assert chart.points[0].y == bottom
    assert chart.y_max == 50_000
    assert mileage_chart([]).points == ()
    assert mileage_chart(points[:1]).points[0].x == (left + right) / 2
    assert Path
