"""The vehicle report in Chromium: a car with an odometer rollback shows its discrepancy flag,
its red reading on the mileage chart and its owner count; the language switch turns the page
English; the QR code on the page (read from a screenshot of it) opens the verify page, which
says the report is authentic, then that a newer event exists. Screenshots go to
test-artifacts/screenshots/vehicles-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import chromium, new_page, screenshot
from playwright.sync_api import Browser, Page, expect

from civicledger.services.identity.qr_image import decode_qr_image
from served_city import ServedCity, served_city
from vehicle_samples import ROLLED, STATION, digest, populate, vehicle_city

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedCity]:
    with served_city(
        vehicle_city(tmp_path / "city"),
        portal=True,
        domain="https://cars.testville.example",
        prepare=populate,
    ) as city:
        yield city


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with new_page(browser) as opened:
        yield opened


def test_the_report_of_a_rolled_back_car(page: Page, served: ServedCity) -> None:
    page.goto(f"{served.url}/vehicles")
    page.fill("#vin", ROLLED)
    page.click("#lookup-form button[type=submit]")
    expect(page.locator("#vin")).to_have_text(ROLLED)
    expect(page.locator("#owner-count")).to_have_text("2")
    flag = page.locator('#warnings [data-flag="odometer_discrepancy"]')
    expect(flag).to_have_text("주행거리 불일치")
    expect(page.locator("#mileage-chart circle.flagged-rollback")).to_have_count(1)
    expect(page.locator("#readings tr.flagged")).to_have_count(1)
    expect(page.locator("#readings tr.flagged")).to_contain_text("주행거리 조작 의심")
    expect(page.locator("#print-button")).to_be_visible()
    screenshot(page, "vehicles-report-ko")
    # The print view keeps the report and its QR code and drops the site's chrome and buttons.
    page.emulate_media(media="print")
    expect(page.locator("nav.site-nav")).to_be_hidden()
    expect(page.locator("#print-button")).to_be_hidden()
    expect(page.locator("#report-qr svg")).to_be_visible()
    expect(page.locator("#mileage-chart")).to_be_visible()
    page.emulate_media(media="screen")

    page.click('.lang-switch a[data-lang="en"]')
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator('#warnings [data-flag="odometer_discrepancy"]')).to_have_text(
        "odometer discrepancy"
    )
    expect(page.locator("#owner-count")).to_have_text("2")
    expect(page.locator("h1")).to_have_text("Used-car history report")
    screenshot(page, "vehicles-report-en")

    # The printed QR code: read it from the page as a camera would, and open it.
    qr = page.locator("#report-qr svg").screenshot()
    url = decode_qr_image(qr)
    payload = page.locator("#qr-payload").inner_text()
    assert url.startswith(f"{served.url}/vehicles/verify?payload=")
    page.goto(url)
    expect(page.locator("#verdict")).to_have_attribute("data-authentic", "true")
    expect(page.locator("#current")).to_be_visible()
    expect(page.locator("#payload")).to_have_value(payload)
    screenshot(page, "vehicles-verify")

    # A newer event does not make the report false; the page says it is no longer current.
    args = {"vin": ROLLED, "work_hash": digest("late-repair"), "parts": ["clutch"]}
    served.ledger.send(STATION, "vehicles", "repair", args)
    page.reload()
    expect(page.locator("#verdict")).to_have_attribute("data-newer", "1")
    expect(page.locator("#newer")).to_contain_text("1")

    # A forged code is refused with its reason.
    page.fill("#payload", payload[:-4] + ("0000" if not payload.endswith("0000") else "1111"))
    page.click("#verify-form button[type=submit]")
    expect(page.locator("#verdict")).to_have_attribute("data-reason", "report_not_authentic")
