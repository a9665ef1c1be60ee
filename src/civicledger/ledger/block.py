"""Block headers and signed tree heads.

Invariants:
- A header's hash is SHA-256 of its RFC 8785 bytes; the producer signs those bytes under the
  purpose ``block``; the next header names it as ``prev_hash``. In a cluster every node signs
  the identical header with its own key and names itself as ``signer`` (``None`` means the
  producer, so single-node data is unchanged byte for byte).
- ``tx_root`` is the RFC 9162 Merkle root over the block's tx ids (as leaves), ``receipts_root``
  over the canonical receipts; both are recomputed by ``civic verify``.
- ``state_hash`` chains every block's sorted write-set (see ``state.py``); ``log_size`` and
  ``log_root`` are the transparency log after this block.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from civicledger.crypto.encoding import b64url, canonical_json, from_b64url, sha256
from civicledger.crypto.keys import PrivateKey, PublicKey, signing_message
from civicledger.errors import CivicError, SignatureError

ZERO_HASH = "00" * 32
HexHash = str


class _Frozen(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class BlockHeader(_Frozen):
    chain_id: str
    height: int = Field(ge=0)
    prev_hash: HexHash = Field(pattern=r"^[0-9a-f]{64}$")
    time_ms: int = Field(ge=0)
    """Block time: the only clock contracts ever see; strictly increasing."""
    tx_count: int = Field(ge=0)
    tx_root: HexHash
    receipts_root: HexHash
    state_hash: HexHash
    log_size: int = Field(ge=0)
    log_root: HexHash
    producer: str
    """did:key of the node that produced and signed the block."""

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.model_dump())

    def hash(self) -> bytes:
        return sha256(self.canonical_bytes())

    def tree_head(self, signer: str | None = None) -> TreeHead:
        """The tree head this block commits to, for ``signer`` (default: its producer) to sign."""
        return TreeHead(
            chain_id=self.chain_id,
            tree_size=self.log_size,
            root_hash=self.log_root,
            height=self.height,
            time_ms=self.time_ms,
            signer=signer or self.producer,
        )


def _sign(key: PrivateKey, chain_id: str, purpose: str, payload: bytes) -> str:
    return b64url(key.sign(signing_message(chain_id, purpose, payload)))


def _check_signature(
    signer: str, chain_id: str, purpose: str, payload: bytes, signature: str, what: str
) -> None:
    """Raise SignatureError unless the did:key ``signer`` signed ``payload`` under ``purpose``."""
    try:
        key = PublicKey.from_did(signer)
        key.verify(signing_message(chain_id, purpose, payload), from_b64url(signature))
    except CivicError as e:
        raise SignatureError(f"{what} signature: {e}") from e


class SignedBlockHeader(_Frozen):
    header: BlockHeader
    signature: str
    signer: str | None = None
    """did:key of the node that signed, when it is not the producer (a cluster's other nodes)."""

    @model_serializer(mode="wrap")
    def _drop_default_signer(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Leave ``signer`` out when it is the producer: single-node bytes stay as they were."""
        data = handler(self)
        if isinstance(data, dict) and data.get("signer") is None:
            data.pop("signer", None)
        return data

    @classmethod
    def sign(cls, header: BlockHeader, key: PrivateKey) -> SignedBlockHeader:
        signature = _sign(key, header.chain_id, "block", header.canonical_bytes())
        did = key.public.did
        return cls(
            header=header, signature=signature, signer=None if did == header.producer else did
        )

    @property
    def signed_by(self) -> str:
        """The did:key whose signature this is: ``signer``, or else the producer."""
        return self.signer or self.header.producer

    def tree_head(self) -> TreeHead:
        """The tree head this header commits to, as its signer signs it."""
        return self.header.tree_head(self.signed_by)

    def verify(self) -> None:
        """Raise SignatureError unless ``signer`` (default ``header.producer``) signed it."""
        header = self.header
        _check_signature(
            self.signed_by,
            header.chain_id,
            "block",
            header.canonical_bytes(),
            self.signature,
            f"block {header.height}: header",
        )


class TreeHead(_Frozen):
    """A signed tree head (RFC 9162 §4.10 in spirit): the log's size and root at a block."""

    chain_id: str
    tree_size: int = Field(ge=0)
    root_hash: HexHash
    height: int = Field(ge=0)
    time_ms: int = Field(ge=0)
    signer: str

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.model_dump())


class SignedTreeHead(_Frozen):
    tree_head: TreeHead
    signature: str

    @classmethod
    def sign(cls, head: TreeHead, key: PrivateKey) -> SignedTreeHead:
        signature = _sign(key, head.chain_id, "tree-head", head.canonical_bytes())
        return cls(tree_head=head, signature=signature)

    def verify(self, trusted_signers: frozenset[str] | None = None) -> None:
        """Raise SignatureError unless a trusted signer signed this tree head."""
        head = self.tree_head
        if trusted_signers is not None and head.signer not in trusted_signers:
            raise SignatureError(f"tree head signed by {head.signer}, which is not trusted")
        _check_signature(
            head.signer,
            head.chain_id,
            "tree-head",
            head.canonical_bytes(),
            self.signature,
            "tree head",
        )
