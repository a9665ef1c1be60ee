"""Donations over real HTTP: charities, campaigns, a campaign's ledger, one donation and
disbursement, the campaign trace and a donor's trace by receipt secret (posted, never in a URL),
a refused disbursement above the balance sent through ``POST /api/v1/tx`` by the charity's
client, and the 404/422 problems."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_helpers import assert_problem

from civicledger.agency.ledger import TxFailed
from civicledger.agency.remote import ClientLedger
from civicledger.city import load_key
from civicledger.client import CivicClient
from civicledger.services.donations.trace import donor_commitment
from donation_samples import CAMPAIGN, CHARITY, CHARITY_KEY_NAME, donation_city, fund_campaign, ref
from served_city import ServedCity, served_city

BASE = "/api/v1/donations"


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedCity]:
    layout = donation_city(tmp_path_factory.mktemp("donations") / "city")
    with served_city(layout, prepare=fund_campaign) as served:
        yield served


def test_charities_and_campaigns(town: ServedCity) -> None:
    charities = town.http.get(f"{BASE}/charities").json()["charities"]
    assert [c["charity_id"] for c in charities] == [CHARITY]
    assert town.http.get(f"{BASE}/charities/{CHARITY}").json()["status"] == "active"
    (campaign,) = town.http.get(f"{BASE}/campaigns").json()["campaigns"]
    assert (campaign["donated"], campaign["disbursed"], campaign["balance"]) == (
        120_000,
        80_000,
        40_000,
    )


def test_campaign_ledger_and_records(town: ServedCity) -> None:
    book = town.http.get(f"{BASE}/campaigns/{CAMPAIGN}").json()
    assert [d["amount"] for d in book["donations"]] == [40_000, 80_000]
    assert [d["kind"] for d in book["disbursements"]] == ["cash", "help_coin"]
    one = town.http.get(f"{BASE}/campaigns/{CAMPAIGN}/donations/1").json()
    assert one["shares"] == [
        {"disbursement": 1, "amount": 20_000},
        {"disbursement": 2, "amount": 20_000},
    ]
    coin = town.http.get(f"{BASE}/campaigns/{CAMPAIGN}/disbursements/2").json()
    assert coin["funding"]["batch_id"] == "winter-1"
    assert len(coin["mints"]) == 3


def test_traces(town: ServedCity) -> None:
    trace = town.http.get(f"{BASE}/campaigns/{CAMPAIGN}/trace").json()
    assert trace["coin"]["spent"] == {"food": 25_000, "market": 3_000}
    assert trace["coin"]["unspent"] == 32_000
    assert trace["coin"]["exact"] is True
    mine = town.http.post(f"{BASE}/trace", json={"receipt": "secret-b"})
    assert mine.status_code == 200, mine.text
    tree = mine.json()
    assert tree["donation"]["seq"] == 2
    assert tree["unallocated"] == 40_000
    (branch,) = tree["branches"]
    assert branch["share"] == 40_000
    assert branch["coin"]["spent"] == {"food": 16_667, "market": 2_000}
    same = town.http.get(f"{BASE}/donors/{donor_commitment('secret-b')}/trace").json()
    assert same == tree
    by_seq = town.http.get(f"{BASE}/campaigns/{CAMPAIGN}/donations/2/trace").json()
    assert by_seq == tree


def test_problems(town: ServedCity) -> None:
    cases = [
        (town.http.get(f"{BASE}/campaigns/nowhere"), 404, "unknown_campaign"),
        (town.http.get(f"{BASE}/charities/nobody"), 404, "unknown_charity"),
        (town.http.get(f"{BASE}/campaigns/{CAMPAIGN}/donations/9"), 404, "unknown_donation"),
        (
            town.http.get(f"{BASE}/campaigns/{CAMPAIGN}/disbursements/9"),
            404,
            "unknown_disbursement",
        ),
        (town.http.post(f"{BASE}/trace", json={"receipt": "wrong"}), 404, "unknown_donor"),
        (town.http.get(f"{BASE}/campaigns/BAD!"), 422, "validation"),
        (town.http.post(f"{BASE}/trace", json={"receipt": "x", "more": 1}), 422, "validation"),
    ]
    for response, status, reason in cases:
        assert_problem(response, status, reason)


def test_disbursement_above_balance_is_refused_over_http(town: ServedCity) -> None:
    key = load_key(town.layout.keystore, CHARITY_KEY_NAME, None)
    with CivicClient(town.url, town.layout.genesis()) as client:
        remote = ClientLedger(client)
        args = {
            "campaign_id": CAMPAIGN,
            "amount": 40_001,
            "kind": "cash",
            "purpose": {"ko": "과다 지출", "en": "Too much"},
            "receipt_hash": ref("receipt/too-much"),
            "beneficiary": ref("beneficiary/2"),
        }
        with pytest.raises(TxFailed) as caught:
            remote.send_as(key, "donations", "disburse", args)
        assert caught.value.reason == "insufficient_campaign_balance"
    campaign = town.http.get(f"{BASE}/campaigns/{CAMPAIGN}").json()["campaign"]
    assert campaign["balance"] == 40_000
