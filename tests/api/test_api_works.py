"""The works API over real HTTP on a demo city after its public-works part: the contract view,
stages, parties, payouts, a worker's payments by pseudonym or account reference, alerts, a
works transaction sent through ``POST /api/v1/tx`` by the client, and the refusals."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from api_helpers import assert_problem

from civicledger.city import CityDir, load_key
from civicledger.client import CivicClient, Wallet
from civicledger.demo import create_demo_city
from civicledger.demo_works import CONTRACT_ID, SUPERVISOR, DemoWorks, run_works
from served_city import served_city

BASE = "/api/v1/works"


@dataclass
class Site:
    layout: CityDir
    works: DemoWorks
    http: httpx.Client
    url: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    layout = create_demo_city(Path(tmp_path_factory.mktemp("works-api")) / "seoul")
    works = run_works(layout)
    with served_city(layout, domain="https://works.example") as served:
        yield Site(layout, works, served.http, served.url)


def test_contracts_and_the_contract_view(site: Site) -> None:
    listed = site.http.get(f"{BASE}/contracts").json()
    assert [c["contract_id"] for c in listed["contracts"]] == [CONTRACT_ID]
    view = site.http.get(f"{BASE}/contracts/{CONTRACT_ID}")
    assert view.status_code == 200, view.text
    body = view.json()
    assert body["contract"]["held"] == 0
    assert body["contract"]["paid"] == 50_000_000
    first, second = body["stages"]
    assert (first["status"], second["status"]) == ("paid", "open")
    assert set(first["approvals"]) == {"orderer", "supervisor"}
    assert sum(first["by_kind"].values()) == 50_000_000
    assert first["by_kind"]["labour"] == 6_400_000
    assert body["per_party"]["labour"] == {"ordered": 6_400_000, "paid": 6_400_000, "orders": 3}
    assert body["alerts"] == []


def test_stages_parties_payouts(site: Site) -> None:
    stages = site.http.get(f"{BASE}/contracts/{CONTRACT_ID}/stages").json()
    assert [s["amount"] for s in stages] == [50_000_000, 70_000_000]
    stage = site.http.get(f"{BASE}/contracts/{CONTRACT_ID}/stages/1").json()
    assert len(stage["split"]) == 7
    assert stage["verification"]["lines"]["w-03"] == 10
    parties = site.http.get(f"{BASE}/contracts/{CONTRACT_ID}/parties").json()
    assert [p["party_id"] for p in parties] == ["paving", "prime", "steel"]
    payouts = site.http.get(f"{BASE}/contracts/{CONTRACT_ID}/payouts").json()
    assert len(payouts) == 8
    assert all(o["status"] == "paid" and o["bank_reference"] for o in payouts)


def test_a_worker_checks_their_wage(site: Site) -> None:
    for ref in (site.works.worker_refs["w-01"], site.works.account_refs["w-01"]):
        found = site.http.get(f"{BASE}/payments/{ref}").json()
        assert (found["ordered"], found["paid"]) == (2_200_000, 2_200_000)
        (order,) = found["payouts"]
        assert order["kind"] == "labour"
    nobody = site.http.get(f"{BASE}/payments/{'0' * 64}").json()
    assert nobody["payouts"] == []
    assert_problem(site.http.get(f"{BASE}/payments/not-a-ref"), 422, "validation")


def test_refusals(site: Site) -> None:
    assert_problem(site.http.get(f"{BASE}/contracts/no-such"), 404, "unknown_works_contract")
    assert_problem(site.http.get(f"{BASE}/contracts/{CONTRACT_ID}/stages/9"), 404, "unknown_stage")
    assert_problem(site.http.get(f"{BASE}/contracts/BAD!"), 422, "validation")
    assert_problem(site.http.get(f"{BASE}/contracts", params={"limit": 0}), 422, "validation")


def test_a_works_transaction_through_post_tx(site: Site) -> None:
    """The supervisor's wallet signs ``flag_late`` for the open stage 2: refused (not claimed)
    with the contract's reason in the receipt; alerts and overdue stay empty."""
    key = load_key(site.layout.keystore, SUPERVISOR, None)
    with CivicClient(site.url, site.layout.genesis()) as client:
        receipt = Wallet(client, key).send(
            "works", "flag_late", {"contract_id": CONTRACT_ID, "stage": 2}
        )
    assert (receipt.status, receipt.reason) == ("failed", "not_claimed")
    assert site.http.get(f"{BASE}/alerts").json() == {"alerts": [], "next": None}
    assert site.http.get(f"{BASE}/overdue").json() == []
