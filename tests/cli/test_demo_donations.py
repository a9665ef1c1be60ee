"""The demo city's donations part on a fresh demo city (after the help coin), and a scan of the
whole ledger for the donors' names, bank accounts and receipt secrets and the household's id
(only hashes, commitments and pseudonyms may be there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from civicledger.city import CityDir
from civicledger.demo import create_demo_city
from civicledger.demo_donations import BENEFICIARY, DONORS, DemoDonations, run_donations
from civicledger.errors import CivicError
from civicledger.services.donations.trace import donor_commitment
from conftest import DemoCityTemplate
from ledger_scan import found, ledger_blobs

EXPECTED = [
    ("root registers the charity registry", "ok", None),
    ("the registry registers the charity Warm Hands", "ok", None),
    ("Warm Hands opens a winter campaign (may fund the help coin)", "ok", None),
    ("the bank records a 300,000 KRW donation (with a receipt secret)", "ok", None),
    ("the bank records a 200,000 KRW donation (anonymous)", "ok", None),
    ("the bank records a 500,000 KRW donation (with a receipt secret)", "ok", None),
    ("the bank records the same transfer twice", "refused", "duplicate_bank"),
    ("Warm Hands gives 150,000 KRW of heating oil to a household", "ok", None),
    (
        "Warm Hands tries to disburse 2,000,000 KRW (above the campaign's balance)",
        "refused",
        "insufficient_campaign_balance",
    ),
    ("Warm Hands funds 300,000 KRW of help coin", "ok", None),
    ("the bank attests the reserve deposit; city hall mints it", "ok", None),
    ("Warm Hands links the disbursement to the mint batch", "ok", None),
    ("residents shop with the coin", "ok", None),
    ("a donor traces their donation by the receipt secret", "ok", None),
]


@pytest.fixture(scope="module")
def demo(
    demo_city_template: DemoCityTemplate, tmp_path_factory: pytest.TempPathFactory
) -> tuple[CityDir, DemoDonations]:
    """The donations part runs on a copy of the demo city after its help-coin part."""
    layout = demo_city_template.fresh(tmp_path_factory.mktemp("demo") / "seoul")
    return layout, run_donations(layout)


def test_donation_steps(demo: tuple[CityDir, DemoDonations]) -> None:
    _, donations = demo
    assert [(s.title, s.outcome, s.reason) for s in donations.steps] == EXPECTED
    campaign = donations.campaign
    assert (campaign["donated"], campaign["disbursed"], campaign["balance"]) == (
        1_000_000,
        450_000,
        550_000,
    )
    # voter-1 spent its older distribution lot (88,000 left) first, so 12,000 of the donated
    # coin reached the bakery; voter-3 (70,000 left) 20,000 at the market.
    assert donations.coin["spent"] == {"food": 12_000, "market": 20_000}
    assert donations.coin["unspent"] == 268_000
    assert donations.coin["exact"] is True


def test_the_donor_trace(demo: tuple[CityDir, DemoDonations]) -> None:
    _, donations = demo
    tree = donations.trace
    assert tree["donation"]["seq"] == 1
    assert tree["donation"]["donor_commitment"] == donor_commitment(str(DONORS[0][3]))
    # FIFO: the goods (150,000) and the help coin (300,000) both drew on donation 1 first.
    assert [(b["disbursement"]["kind"], b["share"]) for b in tree["branches"]] == [
        ("goods", 150_000),
        ("help_coin", 150_000),
    ]
    coin = tree["branches"][1]["coin"]
    assert coin["spent"] == {"food": 6_000, "market": 10_000}
    assert coin["spent_total"] + coin["unspent"] + coin["expired"] == 150_000


def test_no_personal_data_on_the_ledger(demo: tuple[CityDir, DemoDonations]) -> None:
    layout, _ = demo
    blobs = ledger_blobs(layout)
    haystack = b"\x00".join(blobs)
    secrets = [BENEFICIARY, "화곡동"]
    for name, account, _, receipt in DONORS:
        secrets += [name, account, account.replace("-", "")]
        if receipt is not None:
            secrets.append(receipt)
    assert found(secrets, blobs) == []
    # The scan sees what is there: the campaign, and the donor's commitment.
    assert b"donation-winter-2026" in haystack
    assert donor_commitment(str(DONORS[0][3])).encode() in haystack


def test_demo_needs_the_help_coin_part(tmp_path: Path) -> None:
    layout = create_demo_city(tmp_path / "seoul")
    with pytest.raises(CivicError, match="help-coin demo") as caught:
        run_donations(layout)
    assert caught.value.reason == "demo_error"
