"""The portal's public-works pages over a real served city.

The city ran the demo's public-works part (a stage paid to eight parties, wages to three
workers' own accounts) and, a month earlier in block time, a small contract whose stage was
claimed and flagged late six days later. The pages render in Korean and English with the
ledger's numbers: the contracts list, a contract with its escrow, split bars, approvals and
payouts per party, the late alert, the wage check by pseudonym or account reference, and 404s.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from portal_helpers import html_lang

from civicledger.api.server import BackgroundServer
from civicledger.city import NODE_KEY, AgencySpec, CityDir, Signer, create_city, load_key
from civicledger.demo_works import CONTRACT_ID, DemoWorks, run_works
from civicledger.node.chain import Chain
from civicledger.services.registry import city_registry
from civicledger.web import create_site
from civicledger.web.works import section as works_section
from civicledger.web.works import split_bars
from conftest import make_city
from served_city import served_city

DAY_MS = 86_400_000
LATE = "late-bridge"
REF = "ab" * 32


@dataclass
class Town:
    client: httpx.Client
    works: DemoWorks

    def page(self, path: str, lang: str = "ko", **params: str) -> str:
        answer = self.client.get(path, params={"lang": lang, **params})
        assert answer.status_code == 200, answer.text[:2000]
        assert html_lang(answer.text) == lang
        return answer.text


def _late_contract(layout: CityDir, start_ms: int) -> None:
    """A one-stage contract claimed at ``start_ms + 3 days`` and flagged late 6 days after."""
    keys = {
        name: load_key(layout.keystore, name, None)
        for name in ("late-dept", "late-bank", "late-prime", "late-sup", NODE_KEY)
    }
    chain = Chain(layout.data_path)
    try:
        steps: list[tuple[str, str, dict[str, Any]]] = [
            (
                "late-dept",
                "create_contract",
                {
                    "contract_id": LATE,
                    "title": {"ko": "늦은 다리", "en": "Late bridge"},
                    "prime": keys["late-prime"].public.did,
                    "prime_account_ref": REF,
                    "supervisor": keys["late-sup"].public.did,
                    "total": 1_000_000,
                    "stages": [1_000_000],
                    "deadline_days": 5,
                },
            ),
            (
                "late-bank",
                "deposit",
                {"contract_id": LATE, "amount": 1_000_000, "bank_reference": "cd" * 32},
            ),
            (
                "late-sup",
                "verify_work",
                {"contract_id": LATE, "stage": 1, "work_amount": 1_000_000},
            ),
            ("late-prime", "claim", {"contract_id": LATE, "stage": 1, "amount": 1_000_000}),
            ("late-sup", "flag_late", {"contract_id": LATE, "stage": 1}),
        ]
        for i, (signer, method, args) in enumerate(steps):
            when = start_ms + (i if method != "flag_late" else 9) * DAY_MS
            tx = Signer(signer, keys[signer], chain).sign("works", method, args)
            block = chain.produce_block([chain.prepare(tx)], when, keys[NODE_KEY])
            (included,) = block.included
            assert included.receipt.ok, included.receipt.reason
    finally:
        chain.close()


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Town]:
    month_ago = int(time.time() * 1000) - 30 * DAY_MS
    layout = create_city(
        tmp_path_factory.mktemp("works-portal") / "city",
        city="Testville",
        chain_id="testville-works",
        time_ms=month_ago,
        agencies=[
            AgencySpec("late-dept", "Bridge Department", ("works_orderer",)),
            AgencySpec("late-bank", "Bridge Bank", ("custodian_bank",)),
        ],
    )
    for name in ("late-prime", "late-sup"):
        layout.keystore.create(name)
    _late_contract(layout, month_ago + 1)
    works = run_works(layout)
    with served_city(layout, portal=True, domain="https://works.portal.example") as served:
        yield Town(served.http, works)


def text_of(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', page, re.S)
    assert match is not None, element_id
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def test_index_lists_contracts_in_both_languages(town: Town) -> None:
    ko = town.page("/works")
    assert "하도급 대금 직접지급" in ko
    assert f'data-contract="{CONTRACT_ID}"' in ko
    assert f'data-contract="{LATE}"' in ko
    # The late stage is flagged and, still unpaid, overdue.
    assert 'data-alerts="1" data-overdue="1"' in ko
    assert "마포로 도로 재포장 2026" in ko
    en = town.page("/works", "en")
    assert "Subcontract payment: direct payment on public works" in en
    assert "Mapo-ro repaving 2026" in en
    assert "120,000,000" in en


def test_contract_page_shows_escrow_split_approvals_and_payouts(town: Town) -> None:
    page = town.page(f"/works/contracts/{CONTRACT_ID}", "en")
    assert text_of(page, "deposited") == "50,000,000"
    assert text_of(page, "held") == "0"
    assert text_of(page, "paid") == "50,000,000"
    stage1 = page.split('id="stage-1"')[1].split('id="stage-2"')[0]
    assert 'data-status="paid"' in stage1
    assert stage1.count('class="approval approved"') == 2
    # The split bar: one segment per kind with a value, widths proportional to the stage.
    segments = dict(re.findall(r'data-kind="(\w+)" data-value="(\d+)"', stage1))
    assert segments == {
        "subcontract": "6000000",
        "materials": "21000000",
        "equipment": "4000000",
        "labour": "6400000",
        "prime": "12600000",
    }
    assert stage1.count('class="payout"') == 8
    assert stage1.count('data-status="paid"') >= 8
    assert 'data-line="w-02"' in stage1
    assert "200,000 \u00d7 12 days" in stage1
    # The parties table: each party's ordered and paid, and the workers' row.
    labour = page.split('data-party="labour"')[1].split("</tr>")[0]
    assert labour.count("6,400,000") == 2
    stage2 = page.split('id="stage-2"')[1]
    assert 'data-status="open"' in stage2
    assert stage2.count('class="approval missing"') == 2
    assert 'id="late-alerts"' not in page
    ko = town.page(f"/works/contracts/{CONTRACT_ID}")
    for term in ("감리", "노무", "발주부서", "하도급"):
        assert term in ko


def test_the_late_alert_is_on_the_contract_and_the_alerts_page(town: Town) -> None:
    page = town.page(f"/works/contracts/{LATE}", "en")
    assert 'id="late-alerts"' in page
    assert "Stage 1 was not paid by its deadline" in page
    alerts = town.page("/works/alerts")
    overdue = alerts.split('id="overdue"')[1].split("</table>")[0]
    assert overdue.count('class="overdue"') == 1
    assert f'data-contract="{LATE}" data-stage="1"' in alerts
    assert "지급 지연 경보" in alerts


def test_a_worker_checks_their_wage(town: Town) -> None:
    for ref in (town.works.worker_refs["w-01"], town.works.account_refs["w-01"]):
        page = town.page("/works/wage", "en", ref=ref)
        assert text_of(page, "ordered") == "2,200,000"
        assert text_of(page, "paid") == "2,200,000"
        assert page.count('class="payout"') == 1
    empty = town.page("/works/wage", "en", ref="0" * 64)
    assert text_of(empty, "ordered") == "0"
    assert "No payout orders." in empty
    bad = town.page("/works/wage", "ko", ref="kim-minsu")
    assert 'id="bad-ref"' in bad
    assert 'id="wage-result"' not in bad
    assert 'id="wage-form"' in town.page("/works/wage")


def test_unknown_and_bad_contract_ids_are_404(town: Town) -> None:
    for path in ("/works/contracts/no-such", "/works/contracts/BAD%21"):
        assert town.client.get(path).status_code == 404


def test_hostile_input_is_escaped(town: Town) -> None:
    page = town.page("/works/wage", "en", ref="<script>alert(1)</script>")
    assert "<script>alert(1)</script>" not in page


def test_split_bars_geometry() -> None:
    bars = split_bars({"labour": 25, "materials": 25, "prime": 50, "equipment": 0}, 100)
    assert [(b.kind, b.x, b.width) for b in bars] == [
        ("materials", 0.0, 150.0),
        ("labour", 150.0, 150.0),
        ("prime", 300.0, 300.0),
    ]
    assert split_bars({"labour": 1}, 0) == ()


def test_without_a_desk_every_page_says_so(tmp_path: Path) -> None:
    city = make_city(tmp_path / "bare", city_registry())
    with (
        city.open_node() as node,
        BackgroundServer(create_site(node, sections=[works_section()])) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        for path in ("/works", "/works/wage", "/works/alerts", f"/works/contracts/{CONTRACT_ID}"):
            answer = client.get(path, params={"lang": "en"})
            assert answer.status_code == 503, path
            assert "Public works payments are not available" in answer.text
