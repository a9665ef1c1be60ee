"""A served test city with one currency, for the currency API and portal suites.

Not a conftest.py: imported by its unique name (``tests/`` is on the path through conftest).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from civicledger.agency.ledger import CityLedger, NodeLedger
from civicledger.city import CityDir
from civicledger.crypto.encoding import sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.services.currency.payment_request import PaymentRequest
from identity_samples import issuing_city

CUR = "help-coin"
BANK = "city-bank"
DISTRICT = "district-office"
ROLES = {
    "treasury": "city-hall",
    "custodian_bank": BANK,
    "merchant_registrar": DISTRICT,
    "enroller": DISTRICT,
}


def reference(label: str) -> str:
    """The hash a bank or registrar record is known by on the ledger."""
    return sha256(b"currency-samples/" + label.encode()).hex()


def merchant_args(merchant_id: str, key: PrivateKey) -> dict[str, Any]:
    return {
        "merchant_id": merchant_id,
        "business_number_hash": reference(merchant_id),
        "category": "food",
        "region": "north",
        "account": key.public.did,
    }


def currency_city(root: Path) -> CityDir:
    """A new city whose agencies hold the money roles (``ROLES``); call before serving it."""
    layout = issuing_city(root, more_agencies=[BANK, DISTRICT])
    setup = CityLedger(layout)
    for role, agency in ROLES.items():
        setup.send("root", "governance", "grant_role", {"agency": agency, "role": role})
    return layout


def open_help_coin(
    ledger: NodeLedger, holder: PrivateKey, bakery: PrivateKey, **definition: Any
) -> None:
    """Define ``CUR`` (food, 30-day lots), attest 100,000 of reserve, enrol ``holder``,
    register ``bakery`` and mint the holder 20,000."""
    args = {
        "currency_id": CUR,
        "name": {"ko": "도움코인", "en": "Help coin"},
        "symbol": "HELP",
        "kind": "general",
        "holder_credential": "ResidentCard",
        "spend_categories": ["food"],
        "lot_ttl_days": 30,
        **definition,
    }
    ledger.send("city-hall", "currency", "define", args)
    reserve = {"currency_id": CUR, "amount": 100_000, "reference": reference("deposit")}
    ledger.send(BANK, "currency", "attest_reserve", reserve)
    enroll = {"currency_id": CUR, "account": holder.public.did, "region": "north"}
    ledger.send(DISTRICT, "currency", "enroll", enroll)
    ledger.send(DISTRICT, "currency", "register_merchant", merchant_args("bakery", bakery))
    mint = {"currency_id": CUR, "to": holder.public.did, "amount": 20_000, "reason": "welcome"}
    ledger.send("city-hall", "currency", "mint", mint)


def bakery_request(
    home_chain: str, bakery: PrivateKey, key: PrivateKey | None = None, /, **change: Any
) -> PaymentRequest:
    """The bakery's payment request on ``home_chain`` (``change`` overrides any field),
    signed by ``key`` (default: the bakery's own key)."""
    fields: dict[str, Any] = {
        "currency_id": CUR,
        "merchant_id": "bakery",
        "account": bakery.public.did,
        "amount": 4_500,
        "memo": "order 12",
        "expires_ms": int(time.time() * 1000) + 600_000,
        "chain_id": home_chain,
    }
    return PaymentRequest(**{**fields, **change}).signed(key or bakery)
