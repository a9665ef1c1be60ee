"""Shared by the donations tests: roles, a charity, a campaign, a help coin to fund.

Roles in ``testville``: archive is the ``custodian_bank`` (it attests donations and the help
coin's reserve), district-office the ``charity_registrar``, city-hall the help coin's
``treasury``, ``enroller`` and ``merchant_registrar``.
"""

from __future__ import annotations

from typing import Any

from civicledger.crypto.encoding import sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.receipt import Receipt
from civicledger.services.donations.trace import donor_commitment
from conftest import GENESIS_TIME_MS, City, Ledger, city_key, ok

DAY = 86_400_000
T0 = GENESIS_TIME_MS + 10 * DAY
COIN = "help-coin"
CAMPAIGN = "winter-2023"
CHARITY = "warm-hands"
CHARITY_KEY = city_key("charity/warm-hands")
OTHER_CHARITY_KEY = city_key("charity/other")
ROLES = {
    "custodian_bank": "archive",
    "charity_registrar": "district-office",
    "treasury": "city-hall",
    "enroller": "city-hall",
    "merchant_registrar": "city-hall",
}


def ref(label: str) -> str:
    """A hash of an off-ledger record called ``label``."""
    return sha256(b"donation-tests/" + label.encode()).hex()


def send(
    ledger: Ledger, key: PrivateKey, method: str, args: dict[str, Any], at: int | None = None
) -> Receipt:
    return ledger.send(key, "donations", method, args, time_ms=at)


def grant_roles(city: City, ledger: Ledger) -> None:
    for role, agency in ROLES.items():
        ok(ledger.send(city.root, "governance", "grant_role", {"agency": agency, "role": role}))


def charity_args(charity_id: str = CHARITY, key: PrivateKey = CHARITY_KEY) -> dict[str, Any]:
    return {
        "charity_id": charity_id,
        "name": {"ko": "따뜻한 손", "en": "Warm Hands"},
        "registration_number_hash": ref(f"reg/{charity_id}"),
        "keys": [key.public.did],
    }


def campaign_args(**change: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "campaign_id": CAMPAIGN,
        "charity_id": CHARITY,
        "title": {"ko": "겨울나기", "en": "Through the winter"},
        "purpose": {"ko": "난방비 지원", "en": "Heating for households in need"},
        "goal": 1_000_000,
        "starts_ms": T0,
        "ends_ms": T0 + 30 * DAY,
        "disburse_days": 30,
        "bank": "archive",
        "help_coin": COIN,
    }
    return {**args, **change}


def coin_definition() -> dict[str, Any]:
    return {
        "currency_id": COIN,
        "name": {"ko": "도움코인", "en": "Help coin"},
        "symbol": "HELP",
        "kind": "voucher",
        "holder_credential": "ResidentCard",
        "lot_ttl_days": 30,
    }


def donation(amount: int, label: str, secret: str | None = None, **change: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "campaign_id": CAMPAIGN,
        "amount": amount,
        "bank_reference": ref(f"bank/{label}"),
        "donor_commitment": None if secret is None else donor_commitment(secret),
    }
    return {**args, **change}


def disbursement(amount: int, label: str, kind: str = "cash", **change: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "campaign_id": CAMPAIGN,
        "amount": amount,
        "kind": kind,
        "purpose": {"ko": "난방유", "en": "Heating oil"},
        "receipt_hash": ref(f"receipt/{label}"),
        "beneficiary": None if kind == "help_coin" else ref(f"beneficiary/{label}"),
    }
    return {**args, **change}


def setup_world(city: City, ledger: Ledger) -> None:
    """Roles, the help coin, the charity and its open campaign (block time ``T0``)."""
    grant_roles(city, ledger)
    ok(ledger.send(city.clerk, "currency", "define", coin_definition(), time_ms=T0 - 2000))
    ok(send(ledger, city.district, "register_charity", charity_args(), at=T0 - 1000))
    ok(send(ledger, CHARITY_KEY, "open_campaign", campaign_args(), at=T0))
