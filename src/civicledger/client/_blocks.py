"""Checks on blocks a node hands out: pure functions, bytes and models in, verdicts by raising.

A signed header is authentic if a genesis producer signed it for the genesis chain. A block's
transactions are the block's if, all of them together, they hash to the header's ``tx_root``
and ``receipts_root``, each is signed by its signer, and each receipt names its transaction,
the block, its position and its log leaf. The header's log size and root must be the tree head
of the block, which the caller then checks against its view of the log.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from civicledger.crypto import merkle
from civicledger.crypto.encoding import canonical_json
from civicledger.errors import CivicError, ProofError
from civicledger.ledger.block import BlockHeader, SignedBlockHeader, SignedTreeHead
from civicledger.ledger.genesis import Genesis
from civicledger.ledger.receipt import Receipt
from civicledger.ledger.tx import SignedTx, tx_from_json


def verify_header(signed: SignedBlockHeader, genesis: Genesis) -> BlockHeader:
    """Raise ProofError unless a genesis producer signed this header for the genesis chain."""
    header = signed.header
    if header.chain_id != genesis.chain_id:
        raise ProofError(f"block {header.height} is for chain {header.chain_id!r}")
    if header.producer not in genesis.producers:
        raise ProofError(f"block {header.height} is made by {header.producer}, not a producer")
    if signed.signed_by not in genesis.producers:
        raise ProofError(f"block {header.height} is signed by {signed.signed_by}, not a producer")
    try:
        signed.verify()
    except CivicError as e:
        raise ProofError(str(e)) from e
    return header


def verify_header_run(headers: Sequence[SignedBlockHeader], genesis: Genesis) -> None:
    """Headers newest first, consecutive heights, each naming the next one's hash as previous."""
    for signed in headers:
        verify_header(signed, genesis)
    for newer, older in itertools.pairwise(headers):
        if newer.header.height != older.header.height + 1:
            raise ProofError(
                f"block {older.header.height} does not come right before {newer.header.height}"
            )
        if newer.header.prev_hash != older.header.hash().hex():
            raise ProofError(
                f"block {newer.header.height} does not link to the block before it: a fork"
            )


def verify_block_head(header: BlockHeader, tree_head: SignedTreeHead) -> None:
    """The tree head served with a block must be the one the block's header commits to."""
    # In a cluster each node signs the block's tree head itself: the signer may be any genesis
    # producer (checked with the head's signature); everything else must be the header's.
    if tree_head.tree_head != header.tree_head(tree_head.tree_head.signer):
        raise ProofError(f"the tree head given with block {header.height} is not the block's")


def verify_block_txs(
    header: BlockHeader, items: Sequence[Any]
) -> tuple[tuple[SignedTx, Receipt], ...]:
    """Every transaction of the block with its receipt, checked against the signed header."""
    if len(items) != header.tx_count:
        raise ProofError(
            f"block {header.height} has {header.tx_count} transactions, got {len(items)}"
        )
    first_leaf = header.log_size - header.tx_count
    out: list[tuple[SignedTx, Receipt]] = []
    for index, item in enumerate(items):
        where = f"block {header.height} transaction {index}"
        if not isinstance(item, dict) or set(item) != {"tx", "receipt"}:
            raise ProofError(f'{where}: expected {{"tx": ..., "receipt": ...}}')
        try:
            tx = tx_from_json(item["tx"])
            receipt = Receipt.model_validate_json(canonical_json(item["receipt"]))
            tx.verify_signature()
        except (CivicError, ValidationError) as e:
            raise ProofError(f"{where}: {e}") from e
        if tx.body.chain_id != header.chain_id:
            raise ProofError(f"{where} is for chain {tx.body.chain_id!r}")
        if (receipt.tx_id, receipt.height, receipt.index, receipt.leaf_index) != (
            tx.tx_id_hex,
            header.height,
            index,
            first_leaf + index,
        ):
            raise ProofError(f"{where}: the receipt is not this transaction's at this place")
        out.append((tx, receipt))
    tx_root = merkle.root_from_leaf_hashes([merkle.leaf_hash(tx.tx_id) for tx, _ in out])
    receipts_root = merkle.root_from_leaf_hashes(
        [merkle.leaf_hash(receipt.canonical_bytes()) for _, receipt in out]
    )
    if tx_root.hex() != header.tx_root:
        raise ProofError(f"block {header.height}: the transactions do not hash to its tx root")
    if receipts_root.hex() != header.receipts_root:
        raise ProofError(f"block {header.height}: the receipts do not hash to its receipts root")
    return tuple(out)
