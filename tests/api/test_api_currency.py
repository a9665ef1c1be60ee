"""The local currency over real HTTP: the treasury and wallet views, a merchant's signed
payment-request QR checked through the API and paid by the holder's wallet through
``POST /api/v1/tx`` (``civicledger.client``), the merchant view after, and the refusals."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import assert_problem

from civicledger.agency.ledger import NodeLedger
from civicledger.city import CityDir
from civicledger.client import CivicClient, Wallet
from civicledger.crypto.encoding import b64url, canonical_json, from_b64url, sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.currency.payment_request import (
    QR_SCHEME,
    PaymentRequest,
    payment_args,
)
from currency_samples import (
    CUR,
    DISTRICT,
    bakery_request,
    currency_city,
    merchant_args,
    open_help_coin,
    reference,
)
from served_city import served_city

DOMAIN = "https://pay.testville.example"
HOLDER = PrivateKey.from_seed(sha256(b"api-currency/holder"))
BAKERY = PrivateKey.from_seed(sha256(b"api-currency/bakery"))
MILL = PrivateKey.from_seed(sha256(b"api-currency/mill"))


@dataclass
class Town:
    layout: CityDir
    node: EmbeddedNode
    ledger: NodeLedger
    http: httpx.Client
    url: str

    def currency(self, method: str, signer: str, args: dict[str, Any]) -> Any:
        return self.ledger.send(signer, "currency", method, args)

    def request(self, key: PrivateKey = BAKERY, **change: Any) -> PaymentRequest:
        return bakery_request(self.node.chain.chain_id, BAKERY, key, **change)

    def check(self, text: str) -> httpx.Response:
        return self.http.post("/api/v1/currencies/payment-requests/check", json={"text": text})


def _tampered(text: str) -> str:
    """The signed QR text with its amount lowered and the signature kept."""
    value = json.loads(from_b64url(text.removeprefix(QR_SCHEME)))
    value["amount"] = 45
    return QR_SCHEME + b64url(canonical_json(value))


@pytest.fixture
def town(tmp_path: Path) -> Iterator[Town]:
    layout = currency_city(tmp_path / "city")
    with served_city(
        layout, domain=DOMAIN, prepare=lambda ledger: open_help_coin(ledger, HOLDER, BAKERY)
    ) as served:
        yield Town(served.layout, served.node, served.ledger, served.http, served.url)


def test_views_pay_by_qr_and_merchant_view(town: Town) -> None:
    treasury = town.http.get(f"/api/v1/currencies/{CUR}")
    assert treasury.status_code == 200, treasury.text
    assert treasury.json()["currency"]["symbol"] == "HELP"
    assert treasury.json()["totals"]["supply"] == 20_000
    assert treasury.json()["totals"]["reserve"] == 100_000

    holder = f"/api/v1/currencies/{CUR}/accounts/{HOLDER.public.did}"
    wallet_view = town.http.get(holder).json()
    assert (wallet_view["balance"], wallet_view["spendable"]) == (20_000, 20_000)
    assert [lot["remaining"] for lot in wallet_view["lots"]] == [20_000]

    # The merchant shows a signed QR; the payer's wallet checks it through the API.
    text = town.request().to_qr_payload()
    png = town.http.get("/api/v1/currencies/payment-requests/qr.png", params={"text": text})
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    checked = town.check(text)
    assert checked.status_code == 200, checked.text
    answer = checked.json()
    assert answer["signed"] is True
    assert answer["merchant"]["merchant_id"] == "bakery"
    assert answer["request"]["amount"] == 4_500
    assert answer["pay"] == payment_args(town.request())

    # The holder signs the payment and sends it to POST /api/v1/tx with the client.
    with CivicClient(town.url, town.layout.genesis()) as client:
        receipt = Wallet(client, HOLDER).send("currency", "pay", answer["pay"])
    assert receipt.status == "ok", (receipt.reason, receipt.message)

    after = town.http.get(holder).json()
    assert after["balance"] == 15_500
    entries = town.http.get(f"{holder}/history").json()["entries"]
    assert [(e["kind"], e["change"]) for e in entries][-1] == ("paid", -4_500)
    page = town.http.get(f"{holder}/history", params={"limit": 1}).json()
    assert len(page["entries"]) == 1
    assert page["next"] is not None

    # The merchant redeems part of it; its view shows the balance and the pending order.
    town.ledger.send_as(
        BAKERY,
        "currency",
        "redeem",
        {"currency_id": CUR, "amount": 1_000, "payout_reference_hash": reference("payout")},
    )
    view = town.http.get(f"/api/v1/currencies/{CUR}/merchants/bakery").json()
    assert view["merchant"]["account"] == BAKERY.public.did
    assert view["balance"] == 3_500
    assert [o["amount"] for o in view["pending_orders"]["orders"]] == [1_000]
    listed = town.http.get(f"/api/v1/currencies/{CUR}/merchants").json()
    assert [m["merchant_id"] for m in listed["merchants"]] == ["bakery"]

    today = datetime.now(UTC).date().isoformat()
    day = town.http.get(f"/api/v1/currencies/{CUR}/daily/{today}")
    assert day.status_code == 200, day.text
    assert day.json()["spent_by_category"] == {"food": 4_500}
    assert town.http.get(f"/api/v1/currencies/{CUR}").json()["totals"]["supply"] == 19_000


def test_open_amount_request_is_paid_with_the_typed_amount(town: Town) -> None:
    text = town.request(amount=None, memo="").to_qr_payload()
    answer = town.check(text).json()
    assert answer["pay"] is None
    assert answer["request"]["amount"] is None
    assert answer["request"]["memo_hash"] is None


def test_payment_request_refusals(town: Town) -> None:
    now = int(time.time() * 1000)
    expired = town.request(expires_ms=now - 1).to_qr_payload()
    assert_problem(town.check(expired), 400, "expired_request")
    other_chain = town.request(chain_id="othertown-1").to_qr_payload()
    assert_problem(town.check(other_chain), 400, "wrong_chain")
    assert_problem(town.check(_tampered(town.request().to_qr_payload())), 400, "bad_signature")
    assert_problem(town.check("civic-pay:xyz"), 400, "bad_payment_request")
    assert_problem(town.check("https://evil.example/pay"), 400, "bad_payment_request")
    # Signed by another key than the account's: a valid-looking QR that is not the merchant's.
    forged = town.request(MILL, account=MILL.public.did)
    assert_problem(town.check(forged.to_qr_payload()), 409, "account_mismatch")
    assert_problem(
        town.check(town.request(currency_id="no-coin").to_qr_payload()), 404, "unknown_currency"
    )
    assert_problem(
        town.check(town.request(merchant_id="nobody").to_qr_payload()), 404, "unknown_merchant"
    )

    town.ledger.send(DISTRICT, "currency", "register_merchant", merchant_args("mill", MILL))
    town.ledger.send(DISTRICT, "currency", "suspend_merchant", {"merchant_id": "mill"})
    suspended = town.request(MILL, merchant_id="mill", account=MILL.public.did)
    assert_problem(town.check(suspended.to_qr_payload()), 409, "merchant_suspended")
    assert_problem(town.http.get("/api/v1/currencies/no-coin"), 404, "unknown_currency")
    assert_problem(
        town.http.get(f"/api/v1/currencies/{CUR}/merchants/nobody"), 404, "unknown_merchant"
    )
    stranger = PrivateKey.from_seed(sha256(b"api-currency/stranger")).public.did
    assert_problem(
        town.http.get(f"/api/v1/currencies/{CUR}/accounts/{stranger}"), 404, "unknown_account"
    )
    assert_problem(town.http.get(f"/api/v1/currencies/{CUR}/daily/2001-01-01"), 404, "not_found")
    assert_problem(town.http.get(f"/api/v1/currencies/{CUR}/daily/2001-02-30"), 422, "validation")
    assert_problem(
        town.http.get("/api/v1/currencies/payment-requests/qr.png", params={"text": "hello"}),
        422,
        "validation",
    )
