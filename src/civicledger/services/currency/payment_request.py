"""A merchant's payment request, shown as a QR code the payer's wallet scans.

The QR text is ``civic-pay:`` followed by the unpadded base64url of the request's RFC 8785 JSON:
``{"v", "chain_id", "currency_id", "merchant_id", "account", "amount", "memo", "expires_ms"}``
and, when the merchant signed it, ``"sig"``: an Ed25519 signature by the ``account`` key over
``signing_message(chain_id, "payment-request", <the canonical JSON without "sig">)``.

The request is not a transaction: the payer's wallet turns it into the ``pay`` arguments
(``payment_args``) and signs those with its own key. A signature proves the request (amount,
memo, expiry) was made by the holder of ``account``; that ``account`` is the account of the
registered, active merchant ``merchant_id`` is checked against the ``currency`` contract's
merchant record (``agency.currency_desk.CurrencyDesk.check_request``).

Invariants: a ``PaymentRequest`` is always well formed (validated in the constructor);
``from_qr_payload(r.to_qr_payload(), ...) == r`` for every request ``r`` still valid at that
time on that chain; the QR text of a request is unique (only the canonical encoding is read).
Pure: no I/O, no clock (``now_ms`` is passed in).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from civicledger.crypto.encoding import (
    b64url,
    canonical_json,
    from_b64url,
    parse_json,
    sha256,
)
from civicledger.crypto.keys import PrivateKey, PublicKey, signing_message
from civicledger.errors import CivicError, EncodingError, SignatureError
from civicledger.services.currency.contract import (
    CODE_PATTERN,
    CURRENCY_ID_PATTERN,
    MAX_AMOUNT,
    MAX_TIME_MS,
)

__all__ = [
    "MAX_MEMO",
    "MAX_QR_TEXT",
    "QR_SCHEME",
    "SIGNING_PURPOSE",
    "PaymentRequest",
    "PaymentRequestError",
    "from_qr_payload",
    "payment_args",
]

QR_SCHEME = "civic-pay:"
SIGNING_PURPOSE = "payment-request"
VERSION = 1
MAX_MEMO = 140
"""Characters of the memo the payer sees (an order number, a table); only its hash is paid."""
MAX_QR_TEXT = 1024
"""Longer QR texts are refused before decoding (a signed request with a full memo is ~700)."""
_CHAIN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_FIELDS = frozenset(
    {"v", "chain_id", "currency_id", "merchant_id", "account", "amount", "memo", "expires_ms"}
)


class PaymentRequestError(CivicError):
    """A payment request is malformed, for another chain, expired, or does not fit a payment.

    Reasons: ``bad_payment_request`` (malformed, over-long, wrong scheme, not canonical),
    ``wrong_chain``, ``expired_request``, ``amount_mismatch``, ``amount_required``.
    A bad merchant signature raises ``SignatureError`` (``bad_signature``).
    """

    reason = "bad_payment_request"


def _malformed(message: str) -> PaymentRequestError:
    return PaymentRequestError(message, reason="bad_payment_request")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class PaymentRequest:
    """What a merchant asks to be paid; validated on construction."""

    currency_id: str
    """The currency to pay in."""
    merchant_id: str
    """The merchant's id in the ``currency`` contract's registry."""
    account: str
    """The merchant's account key (a did:key): the ``to`` of the payment."""
    amount: int | None
    """Won to pay, or ``None``: the payer types the amount."""
    memo: str
    """Shown to the payer; the payment carries only its SHA-256 (``memo_hash``). May be empty."""
    expires_ms: int
    """The request is refused at or after this time (ms since the epoch)."""
    chain_id: str
    """The city ledger the payment goes to."""
    signature: bytes | None = None
    """The ``account`` key's Ed25519 signature over ``signing_bytes()``, if the merchant signed."""

    def __post_init__(self) -> None:
        if not isinstance(self.currency_id, str) or not re.fullmatch(
            CURRENCY_ID_PATTERN, self.currency_id
        ):
            raise _malformed(f"not a currency id: {str(self.currency_id)[:70]!r}")
        if not isinstance(self.merchant_id, str) or not re.fullmatch(
            CODE_PATTERN, self.merchant_id
        ):
            raise _malformed(f"not a merchant id: {str(self.merchant_id)[:70]!r}")
        if not isinstance(self.account, str):
            raise _malformed("the account is not a did:key")
        try:
            PublicKey.from_did(self.account)
        except EncodingError as e:
            raise _malformed(f"the account is not a did:key: {e.message}") from e
        if self.amount is not None and not (
            _is_int(self.amount) and 1 <= self.amount <= MAX_AMOUNT
        ):
            raise _malformed(f"the amount is not an integer in 1..{MAX_AMOUNT}")
        if not isinstance(self.memo, str) or len(self.memo) > MAX_MEMO:
            raise _malformed(f"the memo is not a text of at most {MAX_MEMO} characters")
        if any(not ch.isprintable() for ch in self.memo):
            raise _malformed("the memo has control characters")
        if not (_is_int(self.expires_ms) and 0 < self.expires_ms <= MAX_TIME_MS):
            raise _malformed("expires_ms is not a time in ms")
        if not isinstance(self.chain_id, str) or not re.fullmatch(_CHAIN_ID_PATTERN, self.chain_id):
            raise _malformed(f"not a chain id: {str(self.chain_id)[:70]!r}")
        if self.signature is not None and not isinstance(self.signature, bytes):
            raise _malformed("the signature is not bytes")

    def body(self) -> dict[str, Any]:
        """The signed fields, as JSON."""
        return {
            "v": VERSION,
            "chain_id": self.chain_id,
            "currency_id": self.currency_id,
            "merchant_id": self.merchant_id,
            "account": self.account,
            "amount": self.amount,
            "memo": self.memo,
            "expires_ms": self.expires_ms,
        }

    def signing_bytes(self) -> bytes:
        """The bytes the merchant's key signs (domain-separated by purpose and chain)."""
        return signing_message(self.chain_id, SIGNING_PURPOSE, canonical_json(self.body()))

    @property
    def memo_hash(self) -> str | None:
        """The SHA-256 (hex) of the memo as the ``pay`` transaction carries it, if any memo."""
        return sha256(self.memo.encode()).hex() if self.memo else None

    def signed(self, key: PrivateKey) -> PaymentRequest:
        """This request signed by ``key``, which must be the ``account`` key."""
        if key.public.did != self.account:
            raise _malformed("only the account's own key may sign its payment request")
        return replace(self, signature=key.sign(self.signing_bytes()))

    def verify_signature(self) -> None:
        """Raise ``SignatureError`` unless the request is signed by its ``account`` key."""
        if self.signature is None:
            raise SignatureError("the payment request is not signed")
        PublicKey.from_did(self.account).verify(self.signing_bytes(), self.signature)

    def to_json(self) -> dict[str, Any]:
        """The request as shown over the API (the signature as base64url, or null)."""
        sig = None if self.signature is None else b64url(self.signature)
        return {**self.body(), "memo_hash": self.memo_hash, "sig": sig}

    def to_qr_payload(self) -> str:
        """The QR text: ``civic-pay:`` + base64url(RFC 8785 JSON)."""
        body = self.body()
        if self.signature is not None:
            body["sig"] = b64url(self.signature)
        text = QR_SCHEME + b64url(canonical_json(body))
        if len(text) > MAX_QR_TEXT:
            raise _malformed(f"the QR text would be {len(text)} characters, over {MAX_QR_TEXT}")
        return text


def _decode(text: str) -> dict[str, Any]:
    """The JSON object of a QR text, refused unless bounded, of our scheme and canonical."""
    if not isinstance(text, str) or len(text) > MAX_QR_TEXT:
        raise _malformed(f"a payment request QR text is at most {MAX_QR_TEXT} characters")
    if not text.startswith(QR_SCHEME):
        raise _malformed(f"not a payment request: it does not start with {QR_SCHEME!r}")
    try:
        raw = from_b64url(text[len(QR_SCHEME) :])
        value = parse_json(raw)
    except EncodingError as e:
        raise _malformed(f"the payment request is not base64url JSON: {e.message}") from e
    if not isinstance(value, dict):
        raise _malformed("the payment request is not a JSON object")
    if canonical_json(value) != raw:
        raise _malformed("the payment request is not in canonical (RFC 8785) form")
    return value


def _signature(sig: object) -> bytes | None:
    if sig is None:
        return None
    if not isinstance(sig, str):
        raise _malformed("the signature is not base64url")
    try:
        return from_b64url(sig)
    except EncodingError as e:
        raise _malformed(f"the signature is not base64url: {e.message}") from e


def from_qr_payload(text: str, *, chain_id: str, now_ms: int) -> PaymentRequest:
    """Read a scanned QR text; refuse it unless well formed, canonical, for ``chain_id`` and
    unexpired at ``now_ms``. A present signature must verify (``SignatureError`` if not); an
    absent one is allowed (``request.signature is None``: the payer's wallet decides)."""
    value = _decode(text)
    signature = _signature(value.pop("sig", None))
    if set(value) != _FIELDS:
        raise _malformed(f"the payment request has fields {sorted(value)}, not {sorted(_FIELDS)}")
    if not _is_int(value["v"]) or value["v"] != VERSION:
        raise _malformed(f"unknown payment request version {value['v']!r}")
    request = PaymentRequest(
        currency_id=value["currency_id"],
        merchant_id=value["merchant_id"],
        account=value["account"],
        amount=value["amount"],
        memo=value["memo"],
        expires_ms=value["expires_ms"],
        chain_id=value["chain_id"],
        signature=signature,
    )
    if request.chain_id != chain_id:
        raise PaymentRequestError(
            f"the payment request is for chain {request.chain_id!r}, not {chain_id!r}",
            reason="wrong_chain",
        )
    if now_ms >= request.expires_ms:
        raise PaymentRequestError("the payment request has expired", reason="expired_request")
    if signature is not None:
        request.verify_signature()
    return request


def payment_args(request: PaymentRequest, amount: int | None = None) -> dict[str, Any]:
    """The ``currency.pay`` arguments the payer's wallet signs for ``request``.

    A fixed-amount request takes ``amount`` only to confirm it (it must match); an open one
    needs it. The memo is bound as its hash."""
    if request.amount is not None and amount is not None and amount != request.amount:
        raise PaymentRequestError(
            f"the request asks for {request.amount}, not {amount}", reason="amount_mismatch"
        )
    paid = request.amount if request.amount is not None else amount
    if paid is None:
        raise PaymentRequestError(
            "the request leaves the amount to the payer", reason="amount_required"
        )
    if not (_is_int(paid) and 1 <= paid <= MAX_AMOUNT):
        raise PaymentRequestError(
            f"the amount is not an integer in 1..{MAX_AMOUNT}", reason="amount_mismatch"
        )
    args: dict[str, Any] = {
        "currency_id": request.currency_id,
        "to": request.account,
        "amount": paid,
    }
    if request.memo_hash is not None:
        args["memo_hash"] = request.memo_hash
    return args
