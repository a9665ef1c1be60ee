"""The identity pages in Chromium: a verifier asks for a presentation, the holder answers from
their wallet (in Python: the portal never sees the holder's key), and the verifier uploads a
photo of the answer's QR code through the verify page's file input. Screenshots go to
test-artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from browser_helpers import chromium, new_page, screenshot
from playwright.sync_api import Browser, Page, expect
from test_portal_identity import RESIDENT, ServedCity, served_identity_city

from civicledger.agency.desk import IdentityDesk
from civicledger.agency.ledger import NodeLedger
from civicledger.services.identity.qr_image import qr_png

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def city(tmp_path: Path) -> Iterator[ServedCity]:
    with served_identity_city(tmp_path) as served:
        yield served


@pytest.fixture
def page(browser: Browser, city: ServedCity) -> Iterator[Page]:
    with new_page(browser) as opened:
        yield opened


def _card_in_wallet(city: ServedCity) -> str:
    """A resident card issued by city hall's desk, received by the holder's wallet."""
    desk = IdentityDesk(NodeLedger(city.layout, city.node), domain="unused")
    issued = desk.issue("city-hall", "ResidentCard", city.wallet.holder, RESIDENT)
    return city.wallet.receive(issued.credential, now=datetime.now(UTC)).id


def test_presentation_photo_verifies_in_the_browser(
    page: Page, city: ServedCity, tmp_path: Path
) -> None:
    card_id = _card_in_wallet(city)
    page.goto(city.url + "/identity/present")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.locator("#challenge-qr svg")).to_be_visible()
    challenge = page.locator("#challenge").get_attribute("data-challenge")
    domain = page.locator("#domain").get_attribute("data-domain")
    assert challenge
    assert domain
    expect(page.locator("#holder-command")).to_contain_text(f"--challenge {challenge}")
    screenshot(page, "identity-present-ko")

    shown = city.wallet.present(
        card_id,
        challenge=challenge,
        domain=domain,
        now=datetime.now(UTC),
        disclose=["district", "age_over_19"],
    )
    assert isinstance(shown, str)
    photo = tmp_path / "presentation.png"
    photo.write_bytes(qr_png(shown))

    page.locator("#qr-image").set_input_files(str(photo))
    page.locator("#verify-button").click()
    verdict = page.locator("#verified")
    expect(verdict).to_be_visible()
    expect(verdict.locator('.claim[data-claim="district"]')).to_have_text("Riverside")
    expect(verdict.locator('.claim[data-claim="age_over_19"]')).to_have_text("true")
    expect(verdict).to_contain_text("did:civic:city-hall")
    expect(verdict).to_contain_text("검증됨")
    screenshot(page, "identity-verified-ko")

    # The same photo again: the challenge is used up.
    page.goto(city.url + "/identity/verify")
    page.locator("#qr-image").set_input_files(str(photo))
    page.locator("#verify-button").click()
    expect(page.locator("#refusal")).to_have_attribute("data-reason", "replayed_challenge")

    page.locator('.lang-switch a[data-lang="en"]').click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Verify a presentation")
    expect(page.locator('label[for="qr-image"]')).to_have_text("Or an image of the QR code")
    expect(page.locator("#verify-button")).to_have_text("Verify")
    expect(page.locator(".site-nav")).to_contain_text("Identity")
    screenshot(page, "identity-verify-en")


def test_issue_form_shows_only_the_chosen_types_claims(page: Page, city: ServedCity) -> None:
    page.goto(city.url + "/identity/issue?lang=en")
    resident = page.locator('fieldset.claims-set[data-type="ResidentCard"]')
    visitor = page.locator('fieldset.claims-set[data-type="VisitorPass"]')
    expect(resident).to_be_visible()
    expect(visitor).to_be_hidden()
    page.locator("#credential-type").select_option("VisitorPass")
    expect(visitor).to_be_visible()
    expect(resident).to_be_hidden()

    page.locator("#credential-type").select_option("ResidentCard")
    page.locator("#token").fill(city.hall_token)
    page.locator("#holder").fill(city.wallet.holder)
    for name, value in RESIDENT.items():
        page.locator(f"#claim-ResidentCard-{name}").fill(value)
    page.locator("#issue-button").click()
    expect(page.locator("#issued")).to_be_visible()
    expect(page.locator("#credential-qr svg")).to_be_visible()
    expect(page.locator("#token")).to_have_value("")
    assert city.hall_token not in page.content()
    screenshot(page, "identity-issued-en")
