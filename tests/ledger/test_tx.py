"""The signed envelope: ids, canonical bytes, domain separation and every decoding refusal."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civicledger.crypto.encoding import b64url, canonical_json, sha256
from civicledger.crypto.keys import signing_message
from civicledger.errors import RejectReason, TxRejected
from civicledger.ledger.tx import MAX_TX_BYTES, SignedTx, decode_tx, sign_tx, tx_from_json
from conftest import CHAIN_ID, FAR_FUTURE_MS, city_key, digest

CLERK = city_key("clerk")
OTHER = city_key("outsider")


def _tx(**changes: Any) -> SignedTx:
    fields: dict[str, Any] = {
        "chain_id": CHAIN_ID,
        "nonce": 1,
        "contract": "notary",
        "method": "anchor",
        "args": {"digest": digest("doc"), "label": "minutes"},
        "expires_at": FAR_FUTURE_MS,
    }
    fields.update(changes)
    return sign_tx(CLERK, **fields)


def _envelope(tx: SignedTx) -> dict[str, Any]:
    return json.loads(tx.envelope_bytes())


def test_round_trip_keeps_id_body_and_signature() -> None:
    tx = _tx()
    decoded = decode_tx(tx.envelope_bytes())
    assert decoded.tx_id == tx.tx_id == sha256(canonical_json(tx.body.model_dump()))
    assert decoded.body == tx.body
    assert decoded.signature == tx.signature
    assert decoded.envelope_bytes() == tx.envelope_bytes() == canonical_json(tx.to_json())
    decoded.verify_signature()


def test_the_signature_covers_the_domain_tagged_canonical_body() -> None:
    tx = _tx()
    CLERK.public.verify(
        signing_message(CHAIN_ID, "tx", canonical_json(tx.body.model_dump())), tx.signature
    )


_ARG_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53 - 1), 2**53 - 1), st.text()),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None)
@given(
    args=st.dictionaries(st.text(max_size=8), _ARG_VALUES, max_size=4),
    nonce=st.integers(1, 2**53 - 1),
    expires_at=st.integers(0, 2**53 - 1),
)
def test_any_valid_body_round_trips(args: dict[str, Any], nonce: int, expires_at: int) -> None:
    tx = _tx(args=args, nonce=nonce, expires_at=expires_at)
    decoded = decode_tx(tx.envelope_bytes())
    decoded.verify_signature()
    assert decoded.tx_id == tx.tx_id
    assert decoded.envelope_bytes() == tx.envelope_bytes()


def test_non_canonical_wire_bytes_decode_to_the_same_transaction() -> None:
    tx = _tx(args={"digest": digest("doc"), "label": "café"})
    doc = _envelope(tx)
    pretty = json.dumps({"signature": doc["signature"], "body": doc["body"]}, indent=3).encode()
    escaped = json.dumps(doc, ensure_ascii=True).encode()  # "caf\u00e9"
    for wire in (pretty, escaped):
        assert wire != tx.envelope_bytes()
        decoded = decode_tx(wire)
        decoded.verify_signature()
        assert decoded.tx_id == tx.tx_id
        assert decoded.envelope_bytes() == tx.envelope_bytes()


@pytest.mark.parametrize(
    ("chain_id", "purpose"),
    [("other-city", "tx"), (CHAIN_ID, "block"), (CHAIN_ID, "tree-head")],
)
def test_a_signature_for_another_chain_or_purpose_does_not_verify(
    chain_id: str, purpose: str
) -> None:
    tx = _tx()
    forged = replace(tx, signature=CLERK.sign(signing_message(chain_id, purpose, tx.body_bytes)))
    with pytest.raises(TxRejected) as caught:
        forged.verify_signature()
    assert caught.value.reject_reason is RejectReason.BAD_SIGNATURE


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_flipped_bit_is_refused_or_changes_nothing(data: st.DataObject) -> None:
    """No single-bit change of the wire bytes yields a *different* valid transaction."""
    tx = _tx()
    wire = bytearray(tx.envelope_bytes())
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    wire[bit // 8] ^= 1 << (bit % 8)
    try:
        decoded = decode_tx(bytes(wire))
        decoded.verify_signature()
    except TxRejected:
        return
    # Only the spare low bits of the signature's last base64url character can flip unnoticed:
    # they decode to the same signature, and the canonical envelope drops them again.
    assert decoded.tx_id == tx.tx_id
    assert decoded.signature == tx.signature
    assert decoded.envelope_bytes() == tx.envelope_bytes()


def _body(**changes: Any) -> dict[str, Any]:
    body = _envelope(_tx())["body"]
    for key, value in changes.items():
        if value is _DELETE:
            del body[key]
        else:
            body[key] = value
    return body


_DELETE = object()
_SIG = b64url(bytes(64))
_VALID = _envelope(_tx())

DECODE_REFUSALS: list[tuple[str, bytes, RejectReason, str]] = [
    ("not json", b"{nope", RejectReason.MALFORMED, "not valid JSON"),
    ("invalid utf-8", b'{"body": "\xff"}', RejectReason.MALFORMED, "not valid JSON"),
    ("a list", b"[]", RejectReason.MALFORMED, "is an object"),
    ("a string", b'"tx"', RejectReason.MALFORMED, "is an object"),
    (
        "no signature",
        json.dumps({"body": _VALID["body"]}).encode(),
        RejectReason.MALFORMED,
        "is an object",
    ),
    (
        "extra top-level key",
        json.dumps({**_VALID, "note": "hi"}).encode(),
        RejectReason.MALFORMED,
        "is an object",
    ),
    (
        "duplicate top-level key",
        b'{"body": {}, "body": ' + json.dumps(_VALID["body"]).encode() + b', "signature": "x"}',
        RejectReason.MALFORMED,
        "duplicate JSON key 'body'",
    ),
    (
        "duplicate key in body",
        json.dumps({"body": _VALID["body"], "signature": _SIG})
        .encode()[:-1]
        .replace(b'"nonce": 1', b'"nonce": 1, "nonce": 2')
        + b"}",
        RejectReason.MALFORMED,
        "duplicate JSON key 'nonce'",
    ),
    (
        "float nonce",
        json.dumps({"body": _body(nonce=1.0), "signature": _SIG}).encode(),
        RejectReason.MALFORMED,
        "floats are not allowed",
    ),
    (
        "float in args",
        json.dumps({"body": _body(args={"amount": 2.5}), "signature": _SIG}).encode(),
        RejectReason.MALFORMED,
        "floats are not allowed",
    ),
    (
        "NaN in args",
        b'{"body": {"args": {"x": NaN}}, "signature": "x"}',
        RejectReason.MALFORMED,
        "invalid JSON constant NaN",
    ),
    (
        "signature is a number",
        json.dumps({"body": _VALID["body"], "signature": 7}).encode(),
        RejectReason.MALFORMED,
        "base64url string",
    ),
    (
        "signature not base64url",
        json.dumps({"body": _VALID["body"], "signature": "A"}).encode(),
        RejectReason.MALFORMED,
        "not base64url",
    ),
    (
        "signature of 63 bytes",
        json.dumps({"body": _VALID["body"], "signature": b64url(bytes(63))}).encode(),
        RejectReason.BAD_SIGNATURE,
        "64 bytes",
    ),
    (
        "signature of 65 bytes",
        json.dumps({"body": _VALID["body"], "signature": b64url(bytes(65))}).encode(),
        RejectReason.BAD_SIGNATURE,
        "64 bytes",
    ),
    (
        "junk characters inside the signature",
        json.dumps({"body": _VALID["body"], "signature": _SIG[:10] + "!!" + _SIG[10:]}).encode(),
        RejectReason.MALFORMED,
        "not base64url",
    ),
    (
        "signature with padding",
        json.dumps({"body": _VALID["body"], "signature": _SIG + "="}).encode(),
        RejectReason.MALFORMED,
        "base64url",
    ),
]

_BODY_REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("body is a list", {"__body__": []}, "body"),
    ("missing nonce", {"nonce": _DELETE}, "body.nonce"),
    ("missing args", {"args": _DELETE}, "body.args"),
    ("extra field", {"fee": 1}, "body.fee"),
    ("nonce 0", {"nonce": 0}, "body.nonce"),
    ("nonce beyond 2**53", {"nonce": 2**53}, "body.nonce"),
    ("nonce true", {"nonce": True}, "body.nonce"),
    ("nonce as string", {"nonce": "1"}, "body.nonce"),
    ("negative expiry", {"expires_at": -1}, "body.expires_at"),
    ("empty chain id", {"chain_id": ""}, "body.chain_id"),
    ("upper-case contract", {"contract": "Notary"}, "body.contract"),
    ("method with a dash", {"method": "an-chor"}, "body.method"),
    ("args not an object", {"args": ["digest"]}, "body.args"),
    ("signer not a did:key", {"signer": "did:web:example.org"}, "not a base58btc did:key"),
    ("int beyond 2**53 in args", {"args": {"n": 2**53}}, "cannot be canonicalised"),
    ("lone surrogate in args", {"args": {"s": "\ud800"}}, "cannot be canonicalised"),
]
for _name, _changes, _match in _BODY_REFUSALS:
    _doc_body = _changes["__body__"] if "__body__" in _changes else _body(**_changes)
    DECODE_REFUSALS.append(
        (
            _name,
            json.dumps({"body": _doc_body, "signature": _SIG}).encode(),
            RejectReason.MALFORMED,
            _match,
        )
    )


@pytest.mark.parametrize(
    ("wire", "reason", "match"),
    [row[1:] for row in DECODE_REFUSALS],
    ids=[row[0] for row in DECODE_REFUSALS],
)
def test_decode_refuses(wire: bytes, reason: RejectReason, match: str) -> None:
    with pytest.raises(TxRejected, match=match) as caught:
        decode_tx(wire)
    assert caught.value.reject_reason is reason
    assert caught.value.reason == reason.value


def test_size_limit_is_inclusive() -> None:
    wire = _tx().envelope_bytes()
    at_limit = wire + b" " * (MAX_TX_BYTES - len(wire))
    assert len(at_limit) == MAX_TX_BYTES
    assert decode_tx(at_limit).tx_id == _tx().tx_id
    with pytest.raises(TxRejected) as caught:
        decode_tx(at_limit + b" ")
    assert caught.value.reject_reason is RejectReason.OVERSIZE


def test_oversize_is_refused_before_parsing() -> None:
    with pytest.raises(TxRejected) as caught:
        decode_tx(b"{" * (MAX_TX_BYTES + 1))  # would be MALFORMED if it were parsed
    assert caught.value.reject_reason is RejectReason.OVERSIZE


def test_tx_from_json_needs_the_body_fields_the_signature_covers() -> None:
    doc = _envelope(_tx())
    doc["body"]["nonce"] = 2
    tampered = tx_from_json(doc)  # decodes: the body is well formed ...
    assert tampered.tx_id != _tx().tx_id
    with pytest.raises(TxRejected) as caught:
        tampered.verify_signature()  # ... but nobody signed it
    assert caught.value.reject_reason is RejectReason.BAD_SIGNATURE


def test_a_body_signed_by_another_key_does_not_verify() -> None:
    tx = _tx()
    forged = replace(tx, signature=OTHER.sign(signing_message(CHAIN_ID, "tx", tx.body_bytes)))
    with pytest.raises(TxRejected) as caught:
        decode_tx(forged.envelope_bytes()).verify_signature()
    assert caught.value.reject_reason is RejectReason.BAD_SIGNATURE
