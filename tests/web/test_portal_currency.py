"""The portal's currency pages over a real served city with a currency desk.

A city with a currency (``help-coin``), an enrolled holder, a registered merchant, a payment of
4,500 from the holder to the merchant and a redemption of 1,000 by the merchant: the treasury,
wallet and merchant views render in Korean and English with the ledger's numbers, the charts
have one bar per day and series, unknown things are 404, and the pay page checks a pasted or
uploaded merchant request (refusing a tampered one with its reason).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from portal_helpers import html_lang

from civicledger.crypto.encoding import b64url, canonical_json, from_b64url, sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.currency.payment_request import QR_SCHEME, PaymentRequest, payment_args
from civicledger.services.identity.qr_image import qr_png
from civicledger.web.currency import CHART_DAYS, PAY_BODY_LIMIT, PAY_PATH, bar_chart, pay_command
from civicledger.web.currency import section as currency_section
from currency_samples import (
    CUR,
    bakery_request,
    currency_city,
    open_help_coin,
    reference,
)
from served_city import served_city

DOMAIN = "https://pay.portal.example"
HOLDER = PrivateKey.from_seed(sha256(b"portal-currency/holder"))
BAKERY = PrivateKey.from_seed(sha256(b"portal-currency/bakery"))
STRANGER = PrivateKey.from_seed(sha256(b"portal-currency/stranger"))


@dataclass
class Town:
    node: EmbeddedNode
    client: httpx.Client

    def request(self, key: PrivateKey = BAKERY, **change: Any) -> PaymentRequest:
        fields = {"amount": 2_500, "memo": "table 7", **change}
        return bakery_request(self.node.chain.chain_id, BAKERY, key, **fields)

    def get(self, path: str, lang: str = "ko") -> httpx.Response:
        return self.client.get(path, params={"lang": lang})

    def page(self, path: str, lang: str = "ko") -> str:
        answer = self.get(path, lang)
        assert answer.status_code == 200, answer.text[:2000]
        assert html_lang(answer.text) == lang
        return answer.text

    def pay(self, text: str = "", image: bytes | None = None, lang: str = "en") -> str:
        files = {"qr_image": ("qr.png", image or b"", "image/png")} if image else None
        data = {"text": text}
        answer = self.client.post(PAY_PATH, params={"lang": lang}, data=data, files=files)
        assert answer.status_code == 200, answer.text[:2000]
        return answer.text


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Town]:
    root = tmp_path_factory.mktemp("currency-portal")
    layout = currency_city(root / "city")
    with served_city(
        layout,
        portal=True,
        domain=DOMAIN,
        prepare=lambda ledger: open_help_coin(ledger, HOLDER, BAKERY, balance_cap=500_000),
    ) as served:
        town = Town(served.node, served.http)
        first = town.request(amount=4_500, memo="order 12")
        served.ledger.send_as(HOLDER, "currency", "pay", payment_args(first))
        redeem = {
            "currency_id": CUR,
            "amount": 1_000,
            "payout_reference_hash": reference("payout"),
        }
        served.ledger.send_as(BAKERY, "currency", "redeem", redeem)
        yield town


def value(page: str, element_id: str) -> int:
    found = re.search(rf'id="{element_id}"[^>]*>\s*<span class="won" data-value="(\d+)"', page)
    assert found is not None, element_id
    return int(found.group(1))


def bars(page: str, chart_id: str) -> list[tuple[str, str, int]]:
    start = page.index(f'id="{chart_id}"')
    svg = page[start : page.index("</svg>", start)]
    return [
        (day, series, int(amount))
        for day, series, amount in re.findall(
            r'<rect class="bar [^"]*"[^>]*data-day="([^"]+)" data-series="([^"]+)" '
            r'data-value="(\d+)"',
            svg,
        )
    ]


# -- treasury ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_treasury_view(town: Town, lang: str) -> None:
    page = town.page(f"/currency/{CUR}", lang)
    assert ("도움코인" if lang == "ko" else "Help coin") in page
    assert ("지역화폐" if lang == "ko" else "Local currency") in page
    totals = {
        "minted": 20_000,
        "burned": 1_000,
        "expired": 0,
        "supply": 19_000,
        "reserve": 100_000,
        "pending_settlement": 1_000,
        "settled": 0,
    }
    for name, expected in totals.items():
        assert value(page, f"total-{name}") == expected, name
    checks = dict(re.findall(r'data-check="([a-z_]+)" data-ok="(true|false)"', page))
    assert checks["supply_identity"] == "true"
    assert checks["reserve_backing"] == "true"
    assert set(checks.values()) == {"true"}
    assert "supply 19000 == minted - burned - expired 19000" in html.unescape(page)
    assert "reserve 100000 &gt;= supply + pending_settlement 20000" in page
    assert '<code class="symbol">HELP</code>' in page
    assert "<code>food</code>" in page
    assert ("30일" if lang == "ko" else "30 days") in page
    assert "500,000" in page


def test_treasury_charts_have_one_bar_per_day_and_series(town: Town) -> None:
    page = town.page(f"/currency/{CUR}", "en")
    today = datetime.now(UTC).date().isoformat()
    category = bars(page, "chart-category")
    assert len(category) == CHART_DAYS
    assert {series for _, series, _ in category} == {"food"}
    assert len({day for day, _, _ in category}) == CHART_DAYS
    assert [v for d, _, v in category if d == today] == [4_500]
    assert sum(v for _, _, v in category) == 4_500
    region = bars(page, "chart-region")
    assert len(region) == CHART_DAYS
    assert [v for d, _, v in region if d == today] == [4_500]
    flows = bars(page, "chart-flows")
    assert len(flows) == 3 * CHART_DAYS
    todays = {s: v for d, s, v in flows if d == today}
    assert todays == {"minted": 20_000, "redeemed": 1_000, "expired": 0}
    # The table fallback has the same figures, one row a day.
    table = page[page.index('id="chart-category"') :]
    table = table[: table.index("</table>")]
    assert len(re.findall(r"<tr data-day=", table)) == CHART_DAYS
    # No inline styles or scripts: the CSP holds.
    assert "style=" not in page
    assert "<script>" not in page


def test_bar_chart_geometry() -> None:
    chart = bar_chart(["2025-01-01", "2025-01-02"], {"a": [0, 10], "b": [5, 0]})
    assert len(chart.bars) == 4
    tallest = max(chart.bars, key=lambda b: b.height)
    assert (tallest.day, tallest.series, tallest.value) == ("2025-01-02", "a", 10)
    assert tallest.y == chart.size["top"]
    assert [b.height for b in chart.bars if b.value == 0] == [0, 0]
    assert chart.rows == (("2025-01-01", (0, 5)), ("2025-01-02", (10, 0)))


# -- wallet and merchant -----------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_wallet_view(town: Town, lang: str) -> None:
    page = town.page(f"/currency/{CUR}/accounts/{HOLDER.public.did}", lang)
    assert value(page, "balance") == 15_500
    assert value(page, "spendable") == 15_500
    assert ("지갑" if lang == "ko" else "Wallet") in page
    lots = re.findall(r'data-lot="\d+"[^>]*>.*?data-value="(\d+)"', page)
    assert [int(v) for v in lots] == [15_500]
    kinds = re.findall(r'data-seq="\d+" data-kind="([a-z_]+)"', page)
    assert len(kinds) == 2
    assert "-4,500" in page
    assert "+20,000" in page


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_merchant_view(town: Town, lang: str) -> None:
    page = town.page(f"/currency/{CUR}/merchants/bakery", lang)
    assert value(page, "balance") == 3_500
    assert value(page, "pending-total") == 1_000
    assert re.findall(r'data-order="(\d+)"', page) == ["1"]
    assert BAKERY.public.did in page
    assert ("영업 중" if lang == "ko" else "Active") in page


def test_unknown_things_are_404(town: Town) -> None:
    for path in (
        "/currency/no-such-coin",
        "/currency/NOT_AN_ID",
        f"/currency/{CUR}/merchants/no-such-shop",
        "/currency/no-such-coin/merchants/bakery",
        f"/currency/{CUR}/accounts/{STRANGER.public.did}",
        f"/currency/{CUR}/accounts/did:key:nonsense",
    ):
        answer = town.client.get(path, headers={"accept": "text/html"})
        assert answer.status_code == 404, path
        assert "text/html" in answer.headers["content-type"]


def test_index_opens_a_currency(town: Town) -> None:
    page = town.page("/currency", "en")
    assert 'href="/currency/pay"' in page
    answer = town.client.get("/currency", params={"currency_id": CUR}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].endswith(f"/currency/{CUR}")


# -- pay by QR ---------------------------------------------------------------------------------


def _call(page: str) -> dict[str, Any]:
    found = re.search(r'<pre class="json" id="pay-call">(.*?)</pre>', page, re.S)
    assert found is not None
    parsed: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return parsed


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_pay_page_checks_a_pasted_request(town: Town, lang: str) -> None:
    assert "pay-form" in town.page(PAY_PATH, lang)
    request = town.request()
    page = town.pay(request.to_qr_payload(), lang=lang)
    assert 'id="checked"' in page
    assert 'data-signed="true"' in page
    assert '<code id="checked-merchant">bakery</code>' in page
    assert 'data-value="2500"' in page
    assert "table 7" in page
    call = _call(page)
    assert call == {"contract": "currency", "method": "pay", "args": payment_args(request)}
    assert call["args"]["to"] == BAKERY.public.did
    command = re.search(r'<pre class="command" id="pay-command">(.*?)</pre>', page, re.S)
    assert command is not None
    assert html.unescape(command.group(1)) == pay_command(
        request.currency_id, request.to_qr_payload(), request.amount
    )
    assert "civic currency pay " in page


def test_pay_page_reads_an_uploaded_qr(town: Town) -> None:
    request = town.request(amount=1_200, memo="")
    page = town.pay(image=qr_png(request.to_qr_payload()))
    assert 'id="checked"' in page
    assert "Read from the QR image." in page
    assert _call(page)["args"] == payment_args(request)


def test_pay_page_open_amount_request(town: Town) -> None:
    page = town.pay(town.request(amount=None, memo="").to_qr_payload())
    assert 'id="open-amount"' in page
    assert 'id="pay-call"' not in page


def _tampered(text: str) -> str:
    raw = json.loads(from_b64url(text.removeprefix(QR_SCHEME)))
    raw["amount"] = 25
    return QR_SCHEME + b64url(canonical_json(raw))


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_pay_page_refuses_a_tampered_request(town: Town, lang: str) -> None:
    tampered = _tampered(town.request().to_qr_payload())
    for page in (town.pay(tampered, lang=lang), town.pay(image=qr_png(tampered), lang=lang)):
        assert 'data-reason="bad_signature"' in page
        assert 'id="pay-call"' not in page
        assert ("결제하지 마세요" if lang == "ko" else "Do not pay it") in page


def test_pay_page_refusals(town: Town) -> None:
    cases = {
        "bad_payment_request": town.pay("civic-pay:nonsense"),
        "expired_request": town.pay(town.request(expires_ms=1).to_qr_payload()),
        "account_mismatch": town.pay(
            town.request(STRANGER, account=STRANGER.public.did).to_qr_payload()
        ),
        "unknown_merchant": town.pay(town.request(merchant_id="no-shop").to_qr_payload()),
        "bad_qr_image": town.pay(image=b"\x89PNG not really"),
        "bad_request": town.pay(""),
    }
    for reason, page in cases.items():
        assert f'data-reason="{reason}"' in page, reason


def test_pay_page_takes_photos_over_the_api_body_limit(town: Town) -> None:
    # Over the API's default 64 KiB: only the site's extra path limit lets it through.
    page = town.pay(image=b"\x89PNG" + bytes(200 * 1024))
    assert 'data-reason="bad_qr_image"' in page


def test_pay_body_limit_and_section() -> None:
    assert PAY_PATH == "/currency/pay"
    assert PAY_BODY_LIMIT > 5 * 1024 * 1024
    section = currency_section()
    assert section.slug == "currency"
    assert section.messages["ko"]["currency.nav"] == "지역화폐"
    assert section.messages["en"]["currency.nav"] == "Local currency"
    assert set(section.messages["ko"]) == set(section.messages["en"])
