"""``civic donation``, in-process through the real ``civic`` app: register a charity, open a
campaign, donate (the donor's receipt secret printed), disburse cash and help coin, link the
funding, show, trace by receipt and by campaign, and the refusals as one error line each."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import Civic, assert_one_error_line, new_runner

from civicledger.agency.ledger import CityLedger
from civicledger.city import AgencySpec, CityDir, create_city
from civicledger.crypto.encoding import sha256
from civicledger.crypto.keys import PrivateKey

COIN = "help-coin"
HOLDER = PrivateKey.from_seed(sha256(b"cli-donation/holder"))
SHOP = PrivateKey.from_seed(sha256(b"cli-donation/shop"))


@pytest.fixture
def civic() -> Civic:
    return new_runner()


@pytest.fixture
def city(tmp_path: Path) -> CityDir:
    layout = create_city(
        tmp_path / "city",
        city="Testville",
        chain_id="testville-1",
        agencies=[
            AgencySpec(
                "treasury-office", "Treasury", ("treasury", "enroller", "merchant_registrar")
            ),
            AgencySpec("donation-bank", "Bank", ("custodian_bank",)),
            AgencySpec("donation-registrar", "Registrar", ("charity_registrar",)),
        ],
    )
    layout.keystore.create("warm-hands")
    ledger = CityLedger(layout)
    coin = {
        "currency_id": COIN,
        "name": {"ko": "도움코인", "en": "Help coin"},
        "symbol": "HELP",
        "kind": "voucher",
        "holder_credential": "ResidentCard",
        "lot_ttl_days": 30,
    }
    ledger.send("treasury-office", "currency", "define", coin)
    ledger.send(
        "treasury-office", "currency", "enroll", {"currency_id": COIN, "account": HOLDER.public.did}
    )
    shop = {
        "merchant_id": "bakery",
        "business_number_hash": sha256(b"bakery").hex(),
        "category": "food",
        "region": "mapo",
        "account": SHOP.public.did,
    }
    ledger.send("treasury-office", "currency", "register_merchant", shop)
    return layout


def _run(civic: Civic, city: CityDir, *args: str) -> str:
    result = civic("--dir", city.root, "donation", *args)
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def test_the_whole_story(civic: Civic, city: CityDir) -> None:
    _run(
        civic, city, "charity", "register", "warm-hands",
        "--name-ko", "따뜻한 손", "--name-en", "Warm Hands",
        "--registration-number", "123-82-00001", "--charity-key", "warm-hands",
        "--key", "donation-registrar",
    )  # fmt: skip
    _run(
        civic, city, "campaign", "open", "winter", "--charity", "warm-hands",
        "--title-ko", "겨울나기", "--title-en", "Winter", "--purpose-ko", "난방비",
        "--purpose-en", "Heating", "--goal", "1000000", "--bank", "donation-bank",
        "--help-coin", COIN, "--key", "warm-hands",
    )  # fmt: skip
    text = _run(
        civic,
        city,
        "donate",
        "winter",
        "50000",
        "--bank-reference",
        "tx-1",
        "--key",
        "donation-bank",
    )
    secret = re.search(r"receipt secret (\S+)", text)
    assert secret is not None
    _run(
        civic,
        city,
        "donate",
        "winter",
        "10000",
        "--bank-reference",
        "tx-2",
        "--anonymous",
        "--key",
        "donation-bank",
    )
    refused = civic(
        "--dir", city.root, "donation", "donate", "winter", "1", "--bank-reference", "tx-1",
        "--key", "donation-bank",
    )  # fmt: skip
    assert_one_error_line(refused, "duplicate_bank")
    cash = [
        "disburse", "winter", "--kind", "cash", "--purpose-ko", "난방유", "--purpose-en", "Oil",
        "--beneficiary", "household 17", "--key", "warm-hands",
    ]  # fmt: skip
    _run(civic, city, *cash[:2], "20000", *cash[2:], "--receipt", "invoice 1")
    too_much = civic(
        "--dir", city.root, "donation", *cash[:2], "40001", *cash[2:], "--receipt", "invoice 2"
    )
    assert_one_error_line(too_much, "insufficient_campaign_balance")
    text = _run(
        civic, city, "disburse", "winter", "30000", "--kind", "help_coin",
        "--purpose-ko", "도움코인", "--purpose-en", "Help coin", "--receipt", "coin order 1",
        "--key", "warm-hands",
    )  # fmt: skip
    reference = re.search(r"reserve reference ([0-9a-f]{64})", text)
    assert reference is not None
    ledger = CityLedger(city)
    deposit = {"currency_id": COIN, "amount": 30_000, "reference": reference.group(1)}
    ledger.send("donation-bank", "currency", "attest_reserve", deposit)
    batch = {
        "currency_id": COIN,
        "items": [{"to": HOLDER.public.did, "amount": 30_000}],
        "batch_id": "w1",
    }
    ledger.send("treasury-office", "currency", "mint_batch", batch)
    ledger.send_as(
        HOLDER, "currency", "pay", {"currency_id": COIN, "to": SHOP.public.did, "amount": 12_000}
    )
    _run(
        civic,
        city,
        "link",
        "winter",
        "2",
        "--batch",
        "w1",
        "--account",
        HOLDER.public.did,
        "--key",
        "warm-hands",
    )

    shown = json.loads(_run(civic, city, "show", "winter"))
    assert [d["amount"] for d in shown["donations"]] == [50_000, 10_000]
    assert shown["campaign"]["balance"] == 10_000
    assert shown["disbursements"][0]["beneficiary"] != "household 17"
    assert "household" not in json.dumps(shown)
    assert len(json.loads(_run(civic, city, "show"))["campaigns"]) == 1

    tree = _run(civic, city, "trace", "--receipt", secret.group(1))
    assert "donation 1 to winter: 50,000 KRW" in tree
    assert "spent at food: 12,000 KRW" in tree
    as_json = json.loads(_run(civic, city, "trace", "--receipt", secret.group(1), "--json"))
    assert [b["share"] for b in as_json["branches"]] == [20_000, 30_000]
    whole = _run(civic, city, "trace", "--campaign", "winter")
    assert "help coin 30,000 KRW to 1 holders (exact)" in whole
    assert "unspent: 18,000 KRW" in whole


def test_refusals(civic: Civic, city: CityDir) -> None:
    unknown = civic("--dir", city.root, "donation", "trace", "--receipt", "nope")
    assert_one_error_line(unknown, "unknown_donor")
    missing = civic("--dir", city.root, "donation", "show", "nowhere")
    assert_one_error_line(missing, "unknown_campaign")
    wrong = civic(
        "--dir", city.root, "donation", "donate", "nowhere", "5", "--bank-reference", "x",
        "--key", "donation-bank",
    )  # fmt: skip
    assert_one_error_line(wrong, "unknown_campaign")
    both = civic("--dir", city.root, "donation", "trace", "--receipt", "a", "--campaign", "b")
    assert both.exit_code == 2
