"""``civic currency`` end to end in one city directory, in-process through the real ``civic``
app: roles, define, reserve, enrol a holder's wallet account, register a merchant whose account
is its wallet's currency key, mint, a signed QR payment request paid from its image, balances,
redemption and settlement; and the refusals (insufficient funds, an expired or tampered request,
holder-to-holder without p2p)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Civic, assert_one_error_line, new_city, new_runner
from typer.testing import Result

from civicledger.crypto.encoding import b64url, canonical_json, from_b64url, parse_json
from civicledger.services.currency.payment_request import QR_SCHEME, PaymentRequest
from civicledger.services.identity.wallet import Wallet

CURRENCY = "help-coin"
DEFINITION = {
    "currency_id": CURRENCY,
    "name": {"ko": "도움코인", "en": "Help coin"},
    "symbol": "HELP",
    "kind": "general",
    "holder_credential": "ResidentCard",
    "spend_categories": ["grocery"],
    "spend_regions": ["sangdang"],
    "p2p": False,
    "lot_ttl_days": 90,
    "balance_cap": 1_000_000,
}


@pytest.fixture
def civic() -> Civic:
    return new_runner()


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def _balance(civic: Civic, base: tuple[Any, ...], wallet: Path) -> dict[str, Any]:
    shown = _ok(civic(*base, "currency", "balance", CURRENCY, "--wallet", wallet, "--json"))
    view: dict[str, Any] = json.loads(shown.stdout)
    return view


def _tampered(text: str) -> str:
    """The same request with its amount changed and the merchant's signature kept."""
    body = parse_json(from_b64url(text[len(QR_SCHEME) :]))
    body["amount"] = 1
    return QR_SCHEME + b64url(canonical_json(body))


def test_currency_from_the_command_line(civic: Civic, tmp_path: Path) -> None:
    city = new_city(civic, tmp_path / "city")
    base = ("--dir", city)
    for role in ("treasury", "custodian_bank", "merchant_registrar", "enroller"):
        _ok(civic(*base, "tx", "send", "governance", "grant_role", "--key", "root",
                  "--args", json.dumps({"agency": "city-hall", "role": role})))  # fmt: skip
    definition = tmp_path / "help-coin.json"
    definition.write_text(json.dumps(DEFINITION), encoding="utf-8")
    _ok(civic(*base, "currency", "define", definition, "--key", "city-hall"))
    _ok(civic(*base, "currency", "reserve", CURRENCY, "1000000",
              "--reference", "deposit 2026-001", "--key", "city-hall"))  # fmt: skip

    holder, other, shop = tmp_path / "holder", tmp_path / "other", tmp_path / "shop"
    accounts = {}
    for wallet in (holder, other, shop):
        _ok(civic("wallet", "create", "--wallet", wallet))
        shown = _ok(civic("currency", "account", CURRENCY, "--wallet", wallet)).stdout.strip()
        assert shown == Wallet.open(wallet).currency_key(CURRENCY).public.did
        accounts[wallet] = shown
    for wallet in (holder, other):
        _ok(civic(*base, "currency", "enroll", CURRENCY, accounts[wallet],
                  "--key", "city-hall", "--region", "sangdang"))  # fmt: skip
    _ok(civic(*base, "currency", "merchant", "register", "shop-1",
              "--business-number", "123-45-67890", "--category", "grocery",
              "--region", "sangdang", "--account", accounts[shop],
              "--key", "city-hall"))  # fmt: skip
    _ok(civic(*base, "currency", "mint", CURRENCY, accounts[holder], "50000",
              "--key", "city-hall"))  # fmt: skip

    # The merchant shows a signed request as a QR code; the holder pays from the image.
    qr = tmp_path / "request.png"
    asked = _ok(civic(*base, "currency", "request", CURRENCY, "--merchant-id", "shop-1",
                      "--wallet", shop, "--amount", "12000", "--memo", "table 4",
                      "--qr", qr))  # fmt: skip
    text = asked.stdout.strip()
    assert text.startswith(QR_SCHEME)
    assert qr.read_bytes().startswith(b"\x89PNG")
    paid = _ok(civic(*base, "currency", "pay", CURRENCY, "--request-image", qr,
                     "--wallet", holder))  # fmt: skip
    assert "table 4" in paid.stdout

    mine = _balance(civic, base, holder)
    assert (mine["account"], mine["spendable"], mine["balance"]) == (
        accounts[holder],
        38_000,
        38_000,
    )
    assert [lot["remaining"] for lot in mine["lots"]] == [38_000]
    assert [e["change"] for e in mine["history"]] == [50_000, -12_000]
    assert _balance(civic, base, shop)["balance"] == 12_000
    human = _ok(civic(*base, "currency", "balance", CURRENCY, "--wallet", holder))
    assert "38,000" in human.stdout
    assert "-12,000" in human.stdout

    # Refusals: more than the balance, an expired request, a tampered one, p2p when it is off.
    big = _ok(civic(*base, "currency", "request", CURRENCY, "--merchant-id", "shop-1",
                    "--wallet", shop, "--amount", "100000")).stdout.strip()  # fmt: skip
    refused = civic(*base, "currency", "pay", CURRENCY, "--request", big, "--wallet", holder)
    assert_one_error_line(refused, "insufficient_funds")

    shop_key = Wallet.open(shop).currency_key(CURRENCY)
    expired = PaymentRequest(
        currency_id=CURRENCY,
        merchant_id="shop-1",
        account=shop_key.public.did,
        amount=1_000,
        memo="",
        expires_ms=int(time.time() * 1000) - 1_000,
        chain_id="testville-1",
    ).signed(shop_key)
    refused = civic(*base, "currency", "pay", CURRENCY,
                    "--request", expired.to_qr_payload(), "--wallet", holder)  # fmt: skip
    assert_one_error_line(refused, "expired_request")

    refused = civic(*base, "currency", "pay", CURRENCY, "--request", _tampered(text),
                    "--wallet", holder)  # fmt: skip
    assert_one_error_line(refused, "bad_signature")

    unsigned = replace(expired, expires_ms=int(time.time() * 1000) + 60_000, signature=None)
    refused = civic(*base, "currency", "pay", CURRENCY, "--request", unsigned.to_qr_payload(),
                    "--wallet", holder)  # fmt: skip
    assert_one_error_line(refused, "bad_signature")

    refused = civic(*base, "currency", "pay-to", CURRENCY, accounts[other], "1000",
                    "--wallet", holder)  # fmt: skip
    assert_one_error_line(refused, "p2p_not_allowed")
    assert _balance(civic, base, holder)["spendable"] == 38_000

    # The merchant redeems; the bank settles the order.
    redeemed = _ok(civic(*base, "currency", "redeem", CURRENCY, "12000", "--wallet", shop,
                         "--payout-reference", "KB 123-456-789"))  # fmt: skip
    assert "order" in redeemed.stdout
    view = json.loads(_ok(civic(*base, "currency", "merchant", "show", CURRENCY, "shop-1")).stdout)
    assert view["balance"] == 0
    [order] = view["pending_orders"]["orders"]
    assert order["amount"] == 12_000
    _ok(civic(*base, "currency", "settle", CURRENCY, str(order["order_id"]),
              "--reference", "payout 2026-001", "--key", "city-hall"))  # fmt: skip
    totals = json.loads(_ok(civic(*base, "currency", "show", CURRENCY)).stdout)["totals"]
    assert (totals["minted"], totals["burned"], totals["supply"]) == (50_000, 12_000, 38_000)
    assert totals["reserve"] == 1_000_000 - 12_000
    assert totals["pending_settlement"] == 0
    view = json.loads(_ok(civic(*base, "currency", "merchant", "show", CURRENCY, "shop-1")).stdout)
    assert view["pending_orders"]["orders"] == []


def test_request_refused_for_another_wallet(civic: Civic, tmp_path: Path) -> None:
    city = new_city(civic, tmp_path / "city")
    _ok(civic("wallet", "create", "--wallet", tmp_path / "w"))
    refused = civic("--dir", city, "currency", "request", CURRENCY, "--merchant-id", "shop-1",
                    "--wallet", tmp_path / "w")  # fmt: skip
    assert_one_error_line(refused, "unknown_merchant")
