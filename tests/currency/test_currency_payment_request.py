"""The merchant's payment-request QR: round trip, signature, and a table of refusals."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from civicledger.crypto.encoding import b64url, canonical_json, from_b64url, sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import CivicError, SignatureError
from civicledger.services.currency.contract import MAX_AMOUNT, Pay
from civicledger.services.currency.payment_request import (
    MAX_MEMO,
    MAX_QR_TEXT,
    QR_SCHEME,
    PaymentRequest,
    PaymentRequestError,
    from_qr_payload,
    payment_args,
)

CHAIN = "testville-1"
NOW = 1_790_000_000_000
MERCHANT = PrivateKey.from_seed(sha256(b"payment-request-tests/merchant"))
OTHER = PrivateKey.from_seed(sha256(b"payment-request-tests/other"))


def request(**change: Any) -> PaymentRequest:
    fields: dict[str, Any] = {
        "currency_id": "help-coin",
        "merchant_id": "bakery-7",
        "account": MERCHANT.public.did,
        "amount": 4_500,
        "memo": "주문 #12 (bread)",
        "expires_ms": NOW + 600_000,
        "chain_id": CHAIN,
    }
    return PaymentRequest(**{**fields, **change})


def encode(body: Any) -> str:
    return QR_SCHEME + b64url(canonical_json(body))


def read(text: str, now_ms: int = NOW) -> PaymentRequest:
    return from_qr_payload(text, chain_id=CHAIN, now_ms=now_ms)


def test_round_trip_signed_and_unsigned() -> None:
    for made in (request(), request(amount=None, memo=""), request().signed(MERCHANT)):
        text = made.to_qr_payload()
        assert text.startswith(QR_SCHEME)
        assert len(text) <= MAX_QR_TEXT
        assert read(text) == made
    signed = request().signed(MERCHANT)
    signed.verify_signature()
    assert read(signed.to_qr_payload()).signature == signed.signature


@given(
    amount=st.none() | st.integers(1, MAX_AMOUNT),
    memo=st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn", "Zs")),
        max_size=MAX_MEMO,
    ),
    ttl=st.integers(1, 10**9),
)
def test_round_trip_property(amount: int | None, memo: str, ttl: int) -> None:
    made = request(amount=amount, memo=memo, expires_ms=NOW + ttl).signed(MERCHANT)
    assert read(made.to_qr_payload()) == made


def test_only_the_account_key_signs() -> None:
    with pytest.raises(PaymentRequestError):
        request().signed(OTHER)
    with pytest.raises(SignatureError):
        request().verify_signature()  # unsigned


def test_payment_args_are_valid_pay_args() -> None:
    fixed = request()
    args = payment_args(fixed)
    assert args == {
        "currency_id": "help-coin",
        "to": MERCHANT.public.did,
        "amount": 4_500,
        "memo_hash": sha256("주문 #12 (bread)".encode()).hex(),
    }
    Pay.model_validate(args)  # what the contract will parse
    assert payment_args(fixed, 4_500) == args
    open_amount = request(amount=None, memo="")
    assert payment_args(open_amount, 1_200) == {
        "currency_id": "help-coin",
        "to": MERCHANT.public.did,
        "amount": 1_200,
    }


@pytest.mark.parametrize(
    ("made", "amount", "reason"),
    [
        (request(), 4_400, "amount_mismatch"),
        (request(amount=None), None, "amount_required"),
        (request(amount=None), 0, "amount_mismatch"),
        (request(amount=None), MAX_AMOUNT + 1, "amount_mismatch"),
    ],
)
def test_payment_args_refusals(made: PaymentRequest, amount: int | None, reason: str) -> None:
    with pytest.raises(PaymentRequestError) as caught:
        payment_args(made, amount)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "change",
    [
        {"currency_id": "Help Coin"},
        {"merchant_id": ""},
        {"account": "did:key:zNotAKey"},
        {"amount": 0},
        {"amount": MAX_AMOUNT + 1},
        {"amount": True},
        {"memo": "x" * (MAX_MEMO + 1)},
        {"memo": "line\nbreak"},
        {"expires_ms": 0},
        {"expires_ms": 2**53},
        {"chain_id": ""},
        {"chain_id": "테스트"},
    ],
)
def test_invalid_requests_cannot_exist(change: dict[str, Any]) -> None:
    with pytest.raises(PaymentRequestError) as caught:
        request(**change)
    assert caught.value.reason == "bad_payment_request"


def _body(**change: Any) -> dict[str, Any]:
    return {**request().body(), **change}


def _tampered() -> str:
    body = request().signed(MERCHANT).to_qr_payload()
    value = dict(json.loads(from_b64url(body[len(QR_SCHEME) :])))
    value["amount"] = 45
    return encode(value)


def _noncanonical() -> str:
    return QR_SCHEME + b64url(b'{"v": 1}')


BAD: list[tuple[str, str, str]] = [
    ("wrong scheme", "pay:" + request().to_qr_payload()[len(QR_SCHEME) :], "bad_payment_request"),
    ("over-long", QR_SCHEME + "A" * MAX_QR_TEXT, "bad_payment_request"),
    ("not base64url", QR_SCHEME + "not base64!", "bad_payment_request"),
    ("padded base64", request().to_qr_payload() + "=", "bad_payment_request"),
    ("not JSON", QR_SCHEME + b64url(b"\xff\x00"), "bad_payment_request"),
    ("a JSON list", encode([1, 2]), "bad_payment_request"),
    ("not canonical", _noncanonical(), "bad_payment_request"),
    ("unknown field", encode(_body(tip=100)), "bad_payment_request"),
    (
        "missing field",
        encode({k: v for k, v in _body().items() if k != "memo"}),
        "bad_payment_request",
    ),
    ("wrong version", encode(_body(v=2)), "bad_payment_request"),
    ("bool version", encode(_body(v=True)), "bad_payment_request"),
    ("string amount", encode(_body(amount="4500")), "bad_payment_request"),
    ("signature not text", encode(_body(sig=5)), "bad_payment_request"),
    ("signature not base64url", encode(_body(sig="!!")), "bad_payment_request"),
    ("wrong chain", request(chain_id="othertown-1").to_qr_payload(), "wrong_chain"),
    ("expired", request(expires_ms=NOW).to_qr_payload(), "expired_request"),
    ("tampered amount", _tampered(), "bad_signature"),
    ("signed by another key", encode(_body(sig=b64url(OTHER.sign(b"x")))), "bad_signature"),
]


@pytest.mark.parametrize(("label", "text", "reason"), BAD, ids=[b[0] for b in BAD])
def test_refused_qr_texts(label: str, text: str, reason: str) -> None:
    with pytest.raises(CivicError) as caught:
        read(text)
    assert caught.value.reason == reason, (label, caught.value)


def test_expiry_is_exclusive() -> None:
    made = request(expires_ms=NOW + 1)
    assert read(made.to_qr_payload(), NOW) == made
    with pytest.raises(PaymentRequestError):
        read(made.to_qr_payload(), NOW + 1)


def test_signature_is_bound_to_the_chain() -> None:
    signed = request().signed(MERCHANT)
    moved = replace(signed, chain_id="othertown-1")
    with pytest.raises(SignatureError):
        moved.verify_signature()
