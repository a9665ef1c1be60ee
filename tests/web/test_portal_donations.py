"""The portal's donations pages over a real served city with a funded campaign.

The campaign list shows raised and disbursed bars, the campaign page its donations and
disbursements with FIFO shares and where its help coin went by merchant category, and the trace
page follows a donor's own donation from the receipt secret (posted, not in the URL) down to
help-coin spending; in Korean and English; unknown things are 404 or a refusal with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from portal_helpers import html_lang

from civicledger.web.donations.pages import BAR_WIDTH, progress
from donation_samples import CAMPAIGN, donation_city, fund_campaign
from served_city import served_city


@dataclass
class Town:
    client: httpx.Client

    def page(self, path: str, lang: str = "ko", status: int = 200) -> str:
        answer = self.client.get(path, params={"lang": lang})
        assert answer.status_code == status, answer.text[:2000]
        assert html_lang(answer.text) == lang
        return answer.text

    def trace(self, receipt: str, lang: str = "ko") -> str:
        answer = self.client.post(
            "/donations/trace", params={"lang": lang}, data={"receipt": receipt}
        )
        assert answer.status_code == 200, answer.text[:2000]
        return answer.text


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Town]:
    layout = donation_city(tmp_path_factory.mktemp("donations-portal") / "city")
    with served_city(layout, portal=True, prepare=fund_campaign) as served:
        yield Town(served.http)


def test_progress_geometry() -> None:
    half = progress(250, 100, 500)
    assert (half.raised_width, half.disbursed_width, half.percent) == (BAR_WIDTH / 2, 40.0, 50)
    over = progress(800, 800, 400)
    assert (over.raised_width, over.percent) == (BAR_WIDTH, 200)
    assert progress(0, 0, 1).raised_width == 0


def test_index_lists_campaigns_with_bars(town: Town) -> None:
    page = town.page("/donations")
    assert "기부금 관리" in page
    assert "겨울나기 난방비" in page
    assert 'data-raised="120000" data-disbursed="80000"' in page
    widths = re.findall(r'<rect class="(raised|disbursed)" x="0" y="\d+" width="([\d.]+)"', page)
    assert widths == [("raised", "48.0"), ("disbursed", "32.0")]
    english = town.page("/donations", "en")
    assert "Heating through the winter" in english
    assert "Trace my donation" in english


def test_campaign_page_shows_flows_and_help_coin(town: Town) -> None:
    page = town.page(f"/donations/campaigns/{CAMPAIGN}", "en")
    assert re.search(r'id="balance"><span class="won" data-value="40000"', page)
    assert page.count('<tr data-seq="') == 2
    assert 'data-kind="cash"' in page
    assert 'data-kind="help_coin"' in page
    assert "linked to mint batch winter-1 of help-coin" in page
    spent = dict(re.findall(r'data-category="(\w+)" data-amount="(\d+)"', page))
    assert spent == {"food": "25000", "market": "3000"}
    assert 'data-exact="true"' in page
    korean = town.page(f"/donations/campaigns/{CAMPAIGN}")
    assert "집행 내역" in korean
    assert "food 업종 가맹점 사용: 25,000원" in korean


def test_trace_my_donation(town: Town) -> None:
    form = town.page("/donations/trace")
    assert 'method="post"' in form
    page = town.trace("secret-a", "en")
    assert "Donation #1 to winter: 40,000 won" in page
    shares = re.findall(r'data-disbursement="(\d+)" data-share="(\d+)"', page)
    assert shares == [("1", "20000"), ("2", "20000")]
    spent = dict(re.findall(r'data-category="(\w+)" data-amount="(\d+)"', page))
    assert spent == {"food": "8333", "market": "1000"}
    assert "proportional" in page
    assert "secret-a" not in page
    second = town.trace("secret-b")
    assert 'data-amount="40000">아직 집행되지 않음' in second


def test_refusals_and_not_found(town: Town) -> None:
    wrong = town.trace("not my receipt", "en")
    assert 'data-reason="unknown_donor"' in wrong
    assert "No donation carries this receipt" in wrong
    empty = town.trace("", "en")
    assert 'data-reason="bad_request"' in empty
    town.page("/donations/campaigns/nowhere", "en", status=404)
    town.page("/donations/campaigns/BAD!", "en", status=404)
