"""Proof bundles a citizen can keep and check offline, with no database and no trust in the node.

An inclusion bundle holds the log entry (the signed transaction and its receipt), its leaf index,
the audit path and the signed tree head. ``verify_inclusion_bundle`` checks, in order: the tree
head's signature (and that its signer is trusted), that the entry hashes to a leaf on the path to
the signed root, the transaction's own signature, and that the receipt belongs to the transaction.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from civicledger.crypto import merkle
from civicledger.crypto.encoding import canonical_json, from_hex, parse_json
from civicledger.errors import CivicError, ProofError
from civicledger.ledger.block import SignedTreeHead
from civicledger.ledger.receipt import Receipt, log_leaf_bytes
from civicledger.ledger.tx import SignedTx, tx_from_json

_HEX32 = r"^[0-9a-f]{64}$"


class InclusionBundle(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    kind: str = Field(default="civicledger/inclusion-proof/v1", pattern=r"^civicledger/inclusion")
    leaf_index: int = Field(ge=0)
    tree_size: int = Field(ge=1)
    path: tuple[str, ...]
    entry: dict[str, Any]
    """``{"receipt": ..., "tx": ...}`` exactly as hashed into the log leaf."""
    tree_head: SignedTreeHead


class ConsistencyBundle(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    kind: str = Field(
        default="civicledger/consistency-proof/v1", pattern=r"^civicledger/consistency"
    )
    old_head: SignedTreeHead
    new_head: SignedTreeHead
    proof: tuple[str, ...]


def build_inclusion_bundle(
    envelope: bytes, receipt: bytes, leaf_index: int, path: list[bytes], head: SignedTreeHead
) -> InclusionBundle:
    return InclusionBundle(
        leaf_index=leaf_index,
        tree_size=head.tree_head.tree_size,
        path=tuple(h.hex() for h in path),
        entry={"receipt": parse_json(receipt), "tx": parse_json(envelope)},
        tree_head=head,
    )


def load_bundle(data: bytes) -> InclusionBundle | ConsistencyBundle:
    """Parse a proof file of either kind; raises ProofError if it is neither."""
    try:
        doc = parse_json(data)
    except CivicError as e:
        raise ProofError(f"proof file is not JSON: {e}") from e
    kind = doc.get("kind", "") if isinstance(doc, dict) else ""
    model: type[InclusionBundle] | type[ConsistencyBundle]
    model = (
        ConsistencyBundle if str(kind).startswith("civicledger/consistency") else InclusionBundle
    )
    try:
        return model.model_validate_json(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProofError(f"proof file {where}: {first['msg']}") from e


def verify_inclusion_bundle(
    bundle: InclusionBundle, trusted_signers: frozenset[str] | None
) -> tuple[SignedTx, Receipt]:
    """Check everything a bundle claims; return the proven transaction and receipt.

    ``trusted_signers`` are the did:keys allowed to sign tree heads (the genesis producers).
    ``None`` checks the signature but trusts any signer: callers must say so to the user.
    """
    head = bundle.tree_head.tree_head
    try:
        bundle.tree_head.verify(trusted_signers)
    except CivicError as e:
        raise ProofError(str(e)) from e
    if head.tree_size != bundle.tree_size:
        raise ProofError(f"bundle says tree size {bundle.tree_size}, tree head {head.tree_size}")
    if set(bundle.entry) != {"receipt", "tx"}:
        raise ProofError('entry must be {"receipt": ..., "tx": ...}')
    try:
        tx = tx_from_json(bundle.entry["tx"])
        receipt = Receipt.model_validate_json(canonical_json(bundle.entry["receipt"]))
        path = [from_hex(h, size=32) for h in bundle.path]
        root = from_hex(head.root_hash, size=32)
    except (CivicError, ValidationError) as e:
        raise ProofError(f"bundle entry is malformed: {e}") from e
    leaf = log_leaf_bytes(tx.envelope_bytes(), receipt.canonical_bytes())
    if leaf != canonical_json(bundle.entry):
        raise ProofError("entry is not in canonical form")
    merkle.verify_inclusion(merkle.leaf_hash(leaf), bundle.leaf_index, bundle.tree_size, path, root)
    if tx.body.chain_id != head.chain_id:
        raise ProofError(f"transaction is for chain {tx.body.chain_id}, tree head {head.chain_id}")
    try:
        tx.verify_signature()
    except CivicError as e:
        raise ProofError(f"transaction signature: {e}") from e
    if receipt.tx_id != tx.tx_id_hex or receipt.leaf_index != bundle.leaf_index:
        raise ProofError("receipt does not belong to this transaction or leaf")
    return tx, receipt


def verify_consistency_bundle(
    bundle: ConsistencyBundle, trusted_signers: frozenset[str] | None
) -> None:
    """Check that the newer tree head's log extends the older one's, both signed by trusted keys."""
    old, new = bundle.old_head.tree_head, bundle.new_head.tree_head
    try:
        bundle.old_head.verify(trusted_signers)
        bundle.new_head.verify(trusted_signers)
        proof = [from_hex(h, size=32) for h in bundle.proof]
        old_root = from_hex(old.root_hash, size=32)
        new_root = from_hex(new.root_hash, size=32)
    except CivicError as e:
        raise ProofError(str(e)) from e
    if old.chain_id != new.chain_id:
        raise ProofError("tree heads are from different chains")
    merkle.verify_consistency(old.tree_size, new.tree_size, old_root, new_root, proof)
