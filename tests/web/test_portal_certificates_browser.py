"""The certificate verify page in Chromium: a good PDF gives three green verdicts, an altered
PDF fails integrity, a revoked certificate's PDF shows status revoked with its reason. The
files are uploaded through the page's own form. Screenshots go to
test-artifacts/screenshots/certificates-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_helpers import chromium, new_page, screenshot
from playwright.sync_api import Browser, FilePayload, Page, expect
from test_portal_certificates import CertCity, served_certificate_city

pytestmark = pytest.mark.browser

GREEN = "rgb(23, 107, 58)"
"""The portal's ``--ok`` colour (#176b3a)."""
RED = "rgb(179, 38, 30)"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CertCity]:
    with served_certificate_city(tmp_path_factory.mktemp("cert-browser")) as served:
        yield served


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with new_page(browser) as opened:
        yield opened


def _upload(page: Page, city: CertCity, name: str, data: bytes) -> None:
    page.goto(f"{city.url}/certificates")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    payload: FilePayload = {"name": name, "mimeType": "application/pdf", "buffer": data}
    page.set_input_files("#cert-file", files=[payload])
    page.click("#verify-button")
    expect(page.locator("#report")).to_be_visible()


def _outcome(page: Page, verdict: str) -> str:
    return page.locator(f"#verdict-{verdict}").get_attribute("data-outcome") or ""


def test_a_good_pdf_gives_three_green_verdicts(page: Page, city: CertCity) -> None:
    _upload(page, city, "residence.pdf", city.pdfs["good"])
    for verdict in ("integrity", "authority", "status"):
        card = page.locator(f"#verdict-{verdict}")
        expect(card).to_have_attribute("data-outcome", "pass")
        expect(card.locator(".outcome")).to_have_text("확인됨")
        color = card.locator(".outcome").evaluate("e => getComputedStyle(e).color")
        border = card.evaluate("e => getComputedStyle(e).borderTopColor")
        assert (color, border) == (GREEN, GREEN)
    expect(page.locator("#report")).to_have_attribute("data-ok", "true")
    expect(page.locator("#status-state")).to_have_text("유효")
    expect(page.locator('dd.field[data-field="name"]')).to_have_text("홍길동")
    screenshot(page, "certificates-good-ko")


def test_an_altered_pdf_fails_integrity(page: Page, city: CertCity) -> None:
    _upload(page, city, "altered.pdf", city.altered())
    integrity = page.locator("#verdict-integrity")
    expect(integrity).to_have_attribute("data-outcome", "fail")
    expect(integrity).to_have_attribute("data-reason", "pdf_altered")
    expect(integrity.locator(".outcome")).to_have_text("확인 실패")
    expect(integrity.locator(".explanation")).to_contain_text("위·변조")
    color = integrity.locator(".outcome").evaluate("e => getComputedStyle(e).color")
    assert color == RED
    expect(page.locator("#report")).to_have_attribute("data-ok", "false")
    screenshot(page, "certificates-altered-ko")


def test_a_revoked_pdf_shows_status_revoked_with_its_reason(page: Page, city: CertCity) -> None:
    _upload(page, city, "revoked.pdf", city.pdfs["revoked"])
    assert (_outcome(page, "integrity"), _outcome(page, "authority")) == ("pass", "pass")
    status = page.locator("#verdict-status")
    expect(status).to_have_attribute("data-outcome", "fail")
    expect(status).to_have_attribute("data-reason", "revoked")
    expect(page.locator("#status-state")).to_have_text("취소됨")
    expect(page.locator("#status-reason")).to_have_text("address_changed")
    screenshot(page, "certificates-revoked-ko")
    page.goto(f"{city.url}/certificates?lang=en")
    revoked: FilePayload = {
        "name": "r.pdf",
        "mimeType": "application/pdf",
        "buffer": city.pdfs["revoked"],
    }
    page.set_input_files("#cert-file", files=[revoked])
    page.click("#verify-button")
    expect(page.locator("#verdict-status .explanation")).to_have_text(
        "The issuer revoked this certificate."
    )
