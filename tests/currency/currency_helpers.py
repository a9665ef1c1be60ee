"""Shared by the currency tests: roles, keys, a definition, sending and the invariant check.

Roles in ``testville`` for these tests: city-hall is the ``treasury``, archive the
``custodian_bank``, district-office the ``merchant_registrar``, ``enroller`` and
``activity_attestor``.
"""

from __future__ import annotations

from typing import Any

from civicledger.crypto.encoding import sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.receipt import Receipt
from civicledger.node.chain import Chain
from conftest import City, Ledger, city_key

CUR = "help-coin"
ROLES = {
    "treasury": "city-hall",
    "custodian_bank": "archive",
    "merchant_registrar": "district-office",
    "enroller": "district-office",
    "activity_attestor": "district-office",
}


def grant_roles(city: City, ledger: Ledger) -> None:
    for role, agency in ROLES.items():
        assert ledger.send(
            city.root, "governance", "grant_role", {"agency": agency, "role": role}
        ).ok


def ref(label: str) -> str:
    """A reference or memo: the SHA-256 (hex) of an off-ledger record called ``label``."""
    return sha256(b"currency-tests/" + label.encode()).hex()


def holder(label: str) -> PrivateKey:
    return city_key(f"holder/{label}")


def merchant(label: str) -> PrivateKey:
    return city_key(f"merchant/{label}")


def definition(**change: Any) -> dict[str, Any]:
    """A general currency: food and books in two districts, 30-day lots, caps, 10% bonus."""
    args: dict[str, Any] = {
        "currency_id": CUR,
        "name": {"ko": "도움코인", "en": "Help coin"},
        "symbol": "HELP",
        "kind": "general",
        "holder_credential": "ResidentCard",
        "spend_categories": ["food", "books"],
        "spend_regions": ["north", "south"],
        "p2p": False,
        "lot_ttl_days": 30,
        "balance_cap": 2_000_000,
        "monthly_purchase_cap": 500_000,
        "purchase_bonus_bp": 1_000,
        "activity_rates": {"volunteer_hour": 700},
    }
    return {**args, **change}


def send(
    ledger: Ledger, key: PrivateKey, method: str, args: dict[str, Any], at: int | None = None
) -> Receipt:
    """One currency transaction in a block of its own (at block time ``at``); raises if dropped."""
    return ledger.send(key, "currency", method, args, time_ms=at)


def q(chain: Chain, method: str, **args: Any) -> Any:
    return chain.query("currency", method, {"currency_id": CUR, **args})


def balances(chain: Chain, cur: str = CUR) -> dict[str, int]:
    """Every account's balance, read page by page through the ``accounts`` query."""
    found: dict[str, int] = {}
    after = ""
    while True:
        page = chain.query(
            "currency", "accounts", {"currency_id": cur, "after": after, "limit": 50}
        )
        found.update({a["account"]: a["balance"] for a in page["accounts"]})
        if page["next"] is None:
            return found
        after = page["next"]


def check_invariants(chain: Chain, cur: str = CUR) -> dict[str, Any]:
    """Assert the currency's invariants on the committed state; return the totals."""
    totals = chain.query("currency", "totals", {"currency_id": cur})
    definition = chain.query("currency", "currency", {"currency_id": cur})
    assert totals["supply"] == totals["minted"] - totals["burned"] - totals["expired"]
    found = balances(chain, cur)
    assert sum(found.values()) == totals["supply"]
    assert all(balance >= 0 for balance in found.values())
    assert totals["reserve"] >= totals["supply"] + totals["pending_settlement"]
    assert totals["pending_settlement"] >= 0
    cap = definition["balance_cap"]
    for account, balance in found.items():
        info = chain.query(
            "currency", "balance", {"currency_id": cur, "account": account, "limit": 1000}
        )
        if info["kind"] != "holder":
            continue
        assert cap is None or balance <= cap
        assert len(info["lots"]) == info["lot_count"]
        assert sum(lot["remaining"] for lot in info["lots"]) == balance
        assert all(lot["remaining"] > 0 for lot in info["lots"])
        monthly = definition["monthly_purchase_cap"]
        assert monthly is None or info["purchased"] <= monthly
    return dict(totals)
