"""A test city with a funded donation campaign, for the donations API, CLI and portal suites.

Not a conftest.py: imported by its unique name (``tests/`` is on the path through conftest).
``donation_city`` builds the city (call before serving it); ``fund_campaign`` runs the whole
story through any ledger with ``send``/``send_as``: a charity, a campaign, two donations (A with
receipt secret ``secret-a``, B with ``secret-b``), a cash disbursement and a
help-coin one minted to three holders and linked, and the holders' shopping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from civicledger.agency.donation_desk import link_funding
from civicledger.agency.ledger import AgencyLedger, CityLedger
from civicledger.city import CityDir
from civicledger.crypto.encoding import sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.services.donations.trace import donor_commitment
from identity_samples import issuing_city

COIN = "help-coin"
BANK = "city-bank"
REGISTRAR = "district-office"
CHARITY = "warm-hands"
CHARITY_KEY_NAME = "charity-warm-hands"
CAMPAIGN = "winter"
DAY = 86_400_000
ROLES = {
    "treasury": "city-hall",
    "enroller": "city-hall",
    "merchant_registrar": "city-hall",
    "custodian_bank": BANK,
    "charity_registrar": REGISTRAR,
}
HOLDERS = [PrivateKey.from_seed(sha256(f"donation-samples/holder/{n}".encode())) for n in range(3)]
SHOPS = {
    "bakery": ("food", PrivateKey.from_seed(sha256(b"donation-samples/bakery"))),
    "stall": ("market", PrivateKey.from_seed(sha256(b"donation-samples/stall"))),
}


def ref(label: str) -> str:
    return sha256(b"donation-samples/" + label.encode()).hex()


def donation_city(root: Path) -> CityDir:
    """A new city whose agencies hold the roles (``ROLES``) and a charity key in its keystore."""
    layout = issuing_city(root, more_agencies=[BANK, REGISTRAR])
    setup = CityLedger(layout)
    for role, agency in ROLES.items():
        setup.send("root", "governance", "grant_role", {"agency": agency, "role": role})
    layout.keystore.create(CHARITY_KEY_NAME, seed=sha256(b"donation-samples/charity"))
    return layout


def open_campaign(ledger: AgencyLedger) -> None:
    """The help coin, the charity and its campaign (donations for 30 days from now)."""
    coin = {
        "currency_id": COIN,
        "name": {"ko": "도움코인", "en": "Help coin"},
        "symbol": "HELP",
        "kind": "voucher",
        "holder_credential": "ResidentCard",
        "lot_ttl_days": 30,
    }
    ledger.send("city-hall", "currency", "define", coin)
    charity_key = ledger.key(CHARITY_KEY_NAME)
    charity = {
        "charity_id": CHARITY,
        "name": {"ko": "따뜻한 손", "en": "Warm Hands"},
        "registration_number_hash": ref("registration"),
        "keys": [charity_key.public.did],
    }
    ledger.send(REGISTRAR, "donations", "register_charity", charity)
    now = ledger.head_time_ms()
    campaign = {
        "campaign_id": CAMPAIGN,
        "charity_id": CHARITY,
        "title": {"ko": "겨울나기 난방비", "en": "Heating through the winter"},
        "purpose": {"ko": "어려운 가구의 난방비", "en": "Heating for households in need"},
        "goal": 500_000,
        "starts_ms": now - DAY,
        "ends_ms": now + 30 * DAY,
        "bank": BANK,
        "help_coin": COIN,
    }
    ledger.send_as(charity_key, "donations", "open_campaign", campaign)


def fund_campaign(ledger: AgencyLedger) -> dict[str, Any]:
    """``open_campaign``, then donations A (40,000) and B (80,000), a cash disbursement
    (20,000) and a help-coin one (60,000) minted to ``HOLDERS``, linked; holder 0 spends
    5,000 at the bakery (food) and 3,000 at the stall (market), holder 1 20,000 at the bakery."""
    open_campaign(ledger)
    charity_key = ledger.key(CHARITY_KEY_NAME)
    for label, amount in (("a", 40_000), ("b", 80_000)):
        args = {
            "campaign_id": CAMPAIGN,
            "amount": amount,
            "bank_reference": ref(f"bank/{label}"),
            "donor_commitment": donor_commitment(f"secret-{label}"),
        }
        ledger.send(BANK, "donations", "donate", args)
    cash = {
        "campaign_id": CAMPAIGN,
        "amount": 20_000,
        "kind": "cash",
        "purpose": {"ko": "난방유 구입", "en": "Heating oil"},
        "receipt_hash": ref("receipt/oil"),
        "beneficiary": ref("beneficiary/1"),
    }
    ledger.send_as(charity_key, "donations", "disburse", cash)
    coin = {
        "campaign_id": CAMPAIGN,
        "amount": 60_000,
        "kind": "help_coin",
        "purpose": {"ko": "도움코인 지원", "en": "Help coin for households"},
        "receipt_hash": ref("receipt/coin"),
    }
    record = ledger.send_as(charity_key, "donations", "disburse", coin)
    for key in HOLDERS:
        ledger.send(
            "city-hall", "currency", "enroll", {"currency_id": COIN, "account": key.public.did}
        )
    for merchant_id, (category, key) in SHOPS.items():
        args = {
            "merchant_id": merchant_id,
            "business_number_hash": ref(merchant_id),
            "category": category,
            "region": "mapo",
            "account": key.public.did,
        }
        ledger.send("city-hall", "currency", "register_merchant", args)
    deposit = {"currency_id": COIN, "amount": 60_000, "reference": record["reserve_reference"]}
    ledger.send(BANK, "currency", "attest_reserve", deposit)
    items = [{"to": key.public.did, "amount": 20_000} for key in HOLDERS]
    ledger.send(
        "city-hall",
        "currency",
        "mint_batch",
        {"currency_id": COIN, "items": items, "batch_id": "winter-1"},
    )
    accounts = [key.public.did for key in HOLDERS]
    link_funding(ledger, charity_key, CAMPAIGN, record["seq"], "winter-1", accounts)
    bakery, stall = (key.public.did for _, key in SHOPS.values())
    for payer, to, amount in ((0, bakery, 5_000), (0, stall, 3_000), (1, bakery, 20_000)):
        args = {"currency_id": COIN, "to": to, "amount": amount}
        ledger.send_as(HOLDERS[payer], "currency", "pay", args)
    return dict(record)
