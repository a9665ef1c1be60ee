"""A poll's dashboard in Chromium, updated live: a vote cast through the HTTP API (a transaction
signed by a registered voter's key, posted with ``civicledger.client``) reaches the page's
turnout, chart, district bars and tally within 2 seconds, without a reload. Screenshots go to
test-artifacts/screenshots/polls-*.png.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import chromium, new_page, screenshot
from playwright.sync_api import Browser, Page, expect
from test_portal_polls import OPEN_POLL, SECRET_POLL, PollCity, served_poll_city

from civicledger.client import CivicClient, Wallet

pytestmark = pytest.mark.browser

LIVE_LIMIT_MS = 2000
"""The issue's promise: a vote appears on the dashboard within 2 seconds."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def city(tmp_path: Path) -> Iterator[PollCity]:
    with served_poll_city(tmp_path) as served:
        yield served


@pytest.fixture
def page(browser: Browser, city: PollCity) -> Iterator[Page]:
    with new_page(browser) as opened:
        yield opened


def _cast(client: CivicClient, city: PollCity, label: str, choices: list[int]) -> float:
    """Sign as the voter's key, POST /api/v1/tx (waiting for the block); the seconds it took."""
    started = time.monotonic()
    receipt = Wallet(client, city.voters[label]).send(
        "polls", "cast", {"poll_id": OPEN_POLL, "choices": choices}, verify=False
    )
    assert receipt.status == "ok", (receipt.reason, receipt.message)
    return time.monotonic() - started


def _tally(page: Page, option: int) -> str:
    return page.locator(f'#tally-rows tr[data-option="{option}"] .count').inner_text()


def test_a_vote_cast_through_the_api_appears_within_two_seconds(page: Page, city: PollCity) -> None:
    genesis = city.served.layout.genesis()
    page.goto(f"{city.url}/polls/{OPEN_POLL}")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.locator("h1")).to_have_text("어느 공원을 먼저 정비할까요?")
    expect(page.locator("#live-status")).to_have_attribute("data-live", "on")
    expect(page.locator("#live-status")).to_contain_text("실시간")
    voted = page.locator("#turnout-voted")
    points = page.locator("#chart-points circle.point")
    expect(voted).to_have_text("3")
    expect(points).to_have_count(3)
    assert (_tally(page, 0), _tally(page, 1)) == ("2", "1")
    screenshot(page, "polls-dashboard-before-ko")

    with CivicClient(city.url, genesis) as client:
        started = time.monotonic()
        posted_s = _cast(client, city, "dee", [0])
        expect(voted).to_have_text("4", timeout=LIVE_LIMIT_MS)
        elapsed_ms = (time.monotonic() - started) * 1000
        posted_ms = posted_s * 1000
        print(f"cast -> page turnout: {elapsed_ms:.0f} ms (POST and block {posted_ms:.0f} ms)")
        assert elapsed_ms < LIVE_LIMIT_MS
        # The chart gained a point; the districts, the rate and the tally followed.
        expect(points).to_have_count(4, timeout=LIVE_LIMIT_MS)
        expect(page.locator("#turnout-chart")).to_have_attribute("data-count", "4")
        expect(page.locator("#series-rows tr")).to_have_count(4)
        expect(page.locator("#turnout-percent")).to_have_text("100.0")
        hillside = page.locator('#district-rows tr[data-district="hillside"]')
        expect(hillside.locator(".voted")).to_have_text("2")
        expect(hillside.locator(".bar-fill")).to_have_attribute("width", "100.0")
        expect(page.locator('#tally-rows tr[data-option="0"] .count')).to_have_text("3")
        assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
        screenshot(page, "polls-dashboard-ko")

        page.locator('.lang-switch a[data-lang="en"]').click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("h1")).to_have_text("Which park is renewed first?")
        expect(page.locator(".site-nav")).to_contain_text("Polls")
        expect(page.locator("#live-status")).to_have_attribute("data-live", "on")
        expect(page.locator("#live-status")).to_contain_text("Live")
        expect(voted).to_have_text("4")
        expect(points).to_have_count(4)

        # A changed vote: turnout stays, the tally moves (only the last vote counts).
        _cast(client, city, "ana", [1])
        row = page.locator('#tally-rows tr[data-option="1"]')
        expect(row.locator(".count")).to_have_text("2", timeout=LIVE_LIMIT_MS)
        expect(page.locator('#tally-rows tr[data-option="0"] .count')).to_have_text("2")
        expect(row.locator(".percent")).to_have_text("50.0%")
        expect(voted).to_have_text("4")
        expect(points).to_have_count(4)
    screenshot(page, "polls-dashboard-en")


def test_list_and_secret_poll_in_english(page: Page, city: PollCity) -> None:
    page.goto(f"{city.url}/polls?lang=en")
    expect(page.locator("h1")).to_have_text("Polls")
    expect(page.locator("#polls tbody tr")).to_have_count(2)
    expect(page.locator(f'tr[data-poll-id="{OPEN_POLL}"] .voted')).to_have_text("3")
    screenshot(page, "polls-list-en")
    page.locator(f'a[href="/polls/{SECRET_POLL}"]').click()
    expect(page.locator("h1")).to_have_text("Which project gets the budget?")
    expect(page.locator("#result-pending")).to_be_visible()
    expect(page.locator("#tally-table")).to_be_hidden()
    expect(page.locator("#trustees tbody tr")).to_have_count(3)
    expect(page.locator("#live-status")).to_have_attribute("data-live", "on")
    screenshot(page, "polls-secret-en")
