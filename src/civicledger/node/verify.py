"""``civic verify``: re-check a whole ledger from genesis, trusting nothing stored in it.

For every block: the header signature and producer, the link to the previous header, each
transaction's canonical form, id and signature; then the block is re-executed on a fresh replica
and must reproduce the stored header exactly (tx root, receipts root, state hash, log size and
root) and every stored receipt byte for byte. At the end the stored state table and every stored
Merkle log node must equal the replica's, so state or proofs cannot be altered behind the hashes.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

from civicledger.contracts.registry import ContractRegistry
from civicledger.crypto.encoding import sha256
from civicledger.errors import ChainVerificationError, CivicError
from civicledger.ledger.block import SignedBlockHeader, SignedTreeHead
from civicledger.ledger.genesis import Genesis
from civicledger.ledger.store import connect
from civicledger.ledger.tx import SignedTx, decode_tx
from civicledger.node.chain import DB_NAME, Chain

Progress = Callable[[int, int], None]
"""Called with (height verified, head height)."""


@dataclass(frozen=True)
class VerifyReport:
    chain_id: str
    height: int
    transactions: int
    state_hash: str
    log_size: int
    log_root: str


def verify_chain(
    data_dir: Path,
    *,
    registry: ContractRegistry | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Raise ChainVerificationError at the first thing that does not check out."""
    source = connect(Path(data_dir) / DB_NAME, readonly=True)
    try:
        source.execute("BEGIN")  # one consistent snapshot, even while a node keeps writing
        with tempfile.TemporaryDirectory(prefix="civic-verify-") as scratch:
            return _verify(source, Path(scratch), registry, progress)
    except CivicError as e:
        if isinstance(e, ChainVerificationError):
            raise
        raise ChainVerificationError(str(e)) from e
    finally:
        source.close()


def _verify(
    source: sqlite3.Connection,
    scratch: Path,
    registry: ContractRegistry | None,
    progress: Progress | None,
) -> VerifyReport:
    row = source.execute("SELECT value FROM meta WHERE key = 'genesis'").fetchone()
    if row is None:
        raise ChainVerificationError("the ledger has no genesis")
    genesis = Genesis.from_json_bytes(bytes(row[0]))
    head_height = source.execute("SELECT max(height) FROM blocks").fetchone()[0]
    blocks = _blocks(source)
    first = next(blocks, None)
    if first is None or first[0].header.height != 0:
        raise ChainVerificationError("the ledger has no genesis block")
    replica = Chain.create_from_genesis_block(
        scratch / "replica", genesis, first[0], first[1], registry
    )
    transactions = 0
    try:
        for signed, tree_head, stored_hash in blocks:
            height = signed.header.height
            if stored_hash != signed.header.hash():
                raise ChainVerificationError(f"block {height}: stored hash is not the header's")
            txs, receipts = _block_txs(source, height)
            committed = replica.apply_block(signed, tree_head, txs)
            for item, stored in zip(committed.included, receipts, strict=True):
                if item.receipt_bytes != stored:
                    raise ChainVerificationError(
                        f"block {height}: stored receipt of {item.prepared.tx.tx_id_hex} differs"
                    )
            transactions += len(txs)
            if progress is not None:
                progress(height, head_height)
        _same_rows(source, replica, "state key", 1, "SELECT key, value FROM state ORDER BY key")
        _same_rows(
            source,
            replica,
            "log node (level, index)",
            2,
            "SELECT level, idx, hash FROM log_nodes ORDER BY level, idx",
        )
        # Rows readers trust without re-hashing them (a tx lookup, the log size on open) must
        # be exactly what re-execution wrote too: no extra transaction outside every block.
        _same_rows(
            source,
            replica,
            "block row (height)",
            1,
            "SELECT height, hash, header, tree_head, first_leaf FROM blocks ORDER BY height",
        )
        _same_rows(
            source,
            replica,
            "transaction row (leaf index)",
            1,
            "SELECT leaf_index, tx_id, height, envelope, receipt FROM txs ORDER BY leaf_index",
        )
        _same_rows(source, replica, "log meta", 1, "SELECT key, value FROM log_meta ORDER BY key")
        header = replica.head.header
        if header.height != head_height:
            raise ChainVerificationError(f"blocks stop at {header.height}, head is {head_height}")
        return VerifyReport(
            chain_id=genesis.chain_id,
            height=header.height,
            transactions=transactions,
            state_hash=header.state_hash,
            log_size=header.log_size,
            log_root=header.log_root,
        )
    finally:
        replica.close()


def _blocks(conn: sqlite3.Connection) -> Iterator[tuple[SignedBlockHeader, SignedTreeHead, bytes]]:
    rows = conn.execute("SELECT height, header, tree_head, hash FROM blocks ORDER BY height")
    for expected, (height, header, tree_head, stored_hash) in enumerate(rows):
        if height != expected:
            raise ChainVerificationError(f"block {expected} is missing")
        signed = SignedBlockHeader.model_validate_json(bytes(header))
        if signed.header.height != height:
            raise ChainVerificationError(f"row {height} holds the header of {signed.header.height}")
        yield signed, SignedTreeHead.model_validate_json(bytes(tree_head)), bytes(stored_hash)


def _block_txs(conn: sqlite3.Connection, height: int) -> tuple[list[SignedTx], list[bytes]]:
    txs: list[SignedTx] = []
    receipts: list[bytes] = []
    for tx_id, envelope, receipt in conn.execute(
        # The block's leaf range (a primary-key search, not a table scan per block); the
        # height test keeps a row whose height was altered from passing unnoticed.
        "SELECT tx_id, envelope, receipt FROM txs"
        " WHERE leaf_index >= (SELECT first_leaf FROM blocks WHERE height = ?1)"
        " AND leaf_index < COALESCE("
        "   (SELECT first_leaf FROM blocks WHERE height = ?1 + 1), 9223372036854775807)"
        " AND height = ?1 ORDER BY leaf_index",
        (height,),
    ):
        tx = decode_tx(bytes(envelope))
        if tx.envelope_bytes() != bytes(envelope):
            raise ChainVerificationError(f"block {height}: a stored transaction is not canonical")
        if bytes(tx_id) != tx.tx_id or sha256(tx.body_bytes) != tx.tx_id:
            raise ChainVerificationError(
                f"block {height}: stored tx id {bytes(tx_id).hex()} is wrong"
            )
        txs.append(tx)
        receipts.append(bytes(receipt))
    return txs, receipts


def _same_rows(
    source: sqlite3.Connection, replica: Chain, what: str, key_columns: int, sql: str
) -> None:
    theirs = replica.raw_rows(sql)
    try:
        for mine, expected in zip_longest(source.execute(sql), theirs):
            if mine != expected:
                # The smaller key is where the two first part: a changed, extra or missing row.
                where = min(row[:key_columns] for row in (mine, expected) if row is not None)
                raise ChainVerificationError(f"stored {what} {where!r} differs from re-execution")
    finally:
        theirs.close()
