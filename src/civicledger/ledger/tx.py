"""The signed transaction envelope.

Invariants:
- ``tx_id`` is SHA-256 of the RFC 8785 bytes of the body; the signature covers the same bytes,
  domain-separated by chain id, so a transaction signed for one city is worthless on another.
- Wire bytes need not be canonical, but everything derived (id, envelope, log leaf) uses the
  canonical form, so two nodes always agree on what was signed.
- An envelope over ``MAX_TX_BYTES`` is refused before it is parsed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from civicledger.crypto.encoding import (
    b64url,
    canonical_json,
    from_b64url,
    parse_json,
    sha256,
)
from civicledger.crypto.keys import PrivateKey, PublicKey, signing_message
from civicledger.errors import CivicError, RejectReason, TxRejected

MAX_TX_BYTES = 32 * 1024
"""Upper bound on a transaction's wire size; large documents go on the ledger as hashes."""

DEFAULT_EXPIRY_S = 300
"""How long a freshly signed transaction may wait for a block, unless its signer says otherwise."""

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
_MAX_TIME_MS = 2**53 - 1

Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class TxBody(BaseModel):
    """What the signer authorises. Every field is covered by the signature."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    chain_id: str = Field(min_length=1, max_length=64)
    """The city's chain; a transaction is valid on exactly one."""
    signer: str = Field(min_length=8, max_length=128)
    """did:key of the signing key."""
    nonce: int = Field(ge=1, le=2**53 - 1)
    """Per-signer sequence number, starting at 1 and increasing by exactly 1."""
    contract: Name
    method: Name
    args: dict[str, Any]
    expires_at: int = Field(ge=0, le=_MAX_TIME_MS)
    """Block time (ms) after which the transaction may no longer be included."""


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A decoded, signature-checked-or-not transaction with its derived bytes cached."""

    body: TxBody
    body_bytes: bytes
    """RFC 8785 bytes of ``body``: what the id hashes and the signature covers."""
    signature: bytes
    tx_id: bytes
    signer_key: PublicKey

    @property
    def tx_id_hex(self) -> str:
        return self.tx_id.hex()

    def envelope_bytes(self) -> bytes:
        """Canonical bytes of ``{"body": ..., "signature": ...}``.

        Built by concatenation: the keys are already in RFC 8785 order and base64url needs no
        escaping, so this equals ``canonical_json(self.to_json())`` at a fraction of the cost.
        """
        sig = b64url(self.signature).encode("ascii")
        return b'{"body":' + self.body_bytes + b',"signature":"' + sig + b'"}'

    def to_json(self) -> dict[str, Any]:
        return {"body": self.body.model_dump(), "signature": b64url(self.signature)}

    def verify_signature(self) -> None:
        """Raise TxRejected(bad_signature) unless the signer's key signed the body for its chain."""
        message = signing_message(self.body.chain_id, "tx", self.body_bytes)
        try:
            self.signer_key.verify(message, self.signature)
        except CivicError as e:
            raise TxRejected(RejectReason.BAD_SIGNATURE, "signature does not verify") from e


def sign_tx(
    key: PrivateKey,
    *,
    chain_id: str,
    nonce: int,
    contract: str,
    method: str,
    args: dict[str, Any],
    expires_at: int,
) -> SignedTx:
    """Build and sign a transaction with ``key``."""
    body = _validate_body(
        {
            "chain_id": chain_id,
            "signer": key.public.did,
            "nonce": nonce,
            "contract": contract,
            "method": method,
            "args": args,
            "expires_at": expires_at,
        }
    )
    body_bytes = canonical_json(body.model_dump())
    signature = key.sign(signing_message(chain_id, "tx", body_bytes))
    return SignedTx(body, body_bytes, signature, sha256(body_bytes), key.public)


def expiry_from_now(seconds: int) -> int:
    """``expires_at`` for a transaction signed now that may wait ``seconds`` for a block.

    Signers read their own clock here; the chain compares the result with block time only.
    """
    return int(time.time() * 1000) + seconds * 1000


def decode_tx(raw: bytes) -> SignedTx:
    """Parse wire bytes into a SignedTx. Does not check the signature (see ``verify_signature``)."""
    if len(raw) > MAX_TX_BYTES:
        raise TxRejected(
            RejectReason.OVERSIZE, f"transaction is {len(raw)} bytes; the limit is {MAX_TX_BYTES}"
        )
    try:
        doc = parse_json(raw)
    except CivicError as e:
        raise TxRejected(RejectReason.MALFORMED, e.message) from e
    return tx_from_json(doc)


def tx_from_json(doc: Any) -> SignedTx:
    """Build a SignedTx from an already parsed envelope (e.g. from a stored log leaf)."""
    if not isinstance(doc, dict) or set(doc) != {"body", "signature"}:
        raise TxRejected(
            RejectReason.MALFORMED, 'a transaction is an object {"body": ..., "signature": ...}'
        )
    if not isinstance(doc["signature"], str):
        raise TxRejected(RejectReason.MALFORMED, "signature must be a base64url string")
    try:
        signature = from_b64url(doc["signature"])
    except CivicError as e:
        raise TxRejected(RejectReason.MALFORMED, e.message) from e
    if len(signature) != 64:
        raise TxRejected(RejectReason.BAD_SIGNATURE, "an Ed25519 signature is 64 bytes")
    body = _validate_body(doc["body"])
    try:
        key = signer_key(body.signer)
        body_bytes = canonical_json(doc["body"])
    except CivicError as e:
        raise TxRejected(RejectReason.MALFORMED, e.message) from e
    return SignedTx(body, body_bytes, signature, sha256(body_bytes), key)


@lru_cache(maxsize=1 << 16)
def signer_key(did: str) -> PublicKey:
    """The public key of a did:key; cached, as the same signers recur in every block."""
    return PublicKey.from_did(did)


def _validate_body(doc: Any) -> TxBody:
    try:
        return TxBody.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise TxRejected(RejectReason.MALFORMED, f"body.{where}: {first['msg']}") from e
