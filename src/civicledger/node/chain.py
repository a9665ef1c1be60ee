"""The chain: executes blocks, commits each one atomically, and answers reads with proofs.

Invariants:
- Everything of one block (header, tree head, transactions, receipts, state writes, log nodes)
  is written in ONE SQLite transaction; a crash at any point leaves the previous block as head.
- Only one thread writes (the block producer, or a replayer); reads use per-thread connections
  that see committed blocks only.
- ``apply_block`` re-executes a block produced elsewhere and refuses it unless every root and
  the state hash come out identical: that is how replay and verification work.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from civicledger.contracts.executor import (
    BlockExecution,
    Dropped,
    Executor,
    Included,
    PreparedTx,
    nonce_key,
)
from civicledger.contracts.governance import genesis_writes
from civicledger.contracts.registry import ContractRegistry
from civicledger.crypto import merkle
from civicledger.crypto.encoding import canonical_json, load_trusted_json
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import GenesisError, LedgerError, ProofError
from civicledger.ledger.block import (
    ZERO_HASH,
    BlockHeader,
    SignedBlockHeader,
    SignedTreeHead,
)
from civicledger.ledger.genesis import Genesis
from civicledger.ledger.proofs import ConsistencyBundle, InclusionBundle, build_inclusion_bundle
from civicledger.ledger.receipt import Receipt, log_leaf_bytes
from civicledger.ledger.state import StateStore, WriteSet, next_state_hash
from civicledger.ledger.store import connect, insert_rows
from civicledger.ledger.tlog import StagedAppend, TransparencyLog
from civicledger.ledger.tx import SignedTx, decode_tx
from civicledger.services.registry import city_registry

DB_NAME = "ledger.sqlite"

# A block's transactions are the log leaves from its first leaf up to the next block's: a range
# of the primary key, so reading one block (or one page of it) never scans the whole table.
_BLOCK_TXS_SQL = """
SELECT envelope, receipt FROM txs
WHERE leaf_index >= (SELECT first_leaf FROM blocks WHERE height = ?1) + ?2
  AND leaf_index < COALESCE(
      (SELECT first_leaf FROM blocks WHERE height = ?1 + 1), 9223372036854775807)
  AND height = ?1
ORDER BY leaf_index LIMIT ?3
"""


@dataclass(frozen=True)
class CommittedBlock:
    header: SignedBlockHeader
    tree_head: SignedTreeHead
    included: list[Included]
    dropped: list[Dropped]


@dataclass(frozen=True)
class StagedBlock:
    """A block executed and signed but not yet written (see ``Chain.stage_block``)."""

    header: SignedBlockHeader
    tree_head: SignedTreeHead
    included: list[Included]
    dropped: list[Dropped]
    writes: WriteSet
    log_append: StagedAppend
    tx_rows: list[tuple[int, bytes, int, bytes, bytes]]


@dataclass(frozen=True)
class StoredTx:
    tx: SignedTx
    receipt: Receipt
    envelope: bytes
    receipt_bytes: bytes


class _Reader:
    """A thread's read-only view: its own connection, state store and log over it."""

    def __init__(self, path: Path) -> None:
        self.conn = connect(path, readonly=True)
        self.state = StateStore(self.conn)
        self.log = TransparencyLog(self.conn)


class Chain:
    """One node's copy of the ledger, in ``<data_dir>/ledger.sqlite``."""

    def __init__(self, data_dir: Path, registry: ContractRegistry | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_NAME
        if not self.path.exists():
            raise LedgerError(f"no ledger at {self.path}; create one with `civic init`")
        self.executor = Executor(registry or city_registry())
        self._conn = connect(self.path)
        self._state_reader = connect(self.path, readonly=True)
        self._state = StateStore(self._conn, cache_size=200_000, read_conn=self._state_reader)
        self._log = TransparencyLog(self._conn)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        if "genesis" not in meta:
            raise LedgerError(f"{self.path} has no genesis; it was never initialised")
        self.genesis = Genesis.from_json_bytes(bytes(meta["genesis"]))
        self.chain_id = self.genesis.chain_id
        self._head = self._load_head()
        self._tip = self._head
        """The latest block executed, durable or staged; the next block builds on it."""

    # -- creation -----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        data_dir: Path,
        genesis: Genesis,
        producer_key: PrivateKey,
        registry: ContractRegistry | None = None,
    ) -> Chain:
        """Write the genesis block (height 0), signed by ``producer_key``, into a new database."""
        if producer_key.public.did not in genesis.producers:
            raise GenesisError("the node key is not one of the genesis producers")
        header = genesis_header(genesis, producer_key.public.did)
        signed = SignedBlockHeader.sign(header, producer_key)
        head = SignedTreeHead.sign(header.tree_head(), producer_key)
        return cls.create_from_genesis_block(data_dir, genesis, signed, head, registry)

    @classmethod
    def create_from_genesis_block(
        cls,
        data_dir: Path,
        genesis: Genesis,
        signed: SignedBlockHeader,
        head: SignedTreeHead,
        registry: ContractRegistry | None = None,
    ) -> Chain:
        """Start a replica from another node's genesis block, after checking it against the file."""
        producers = frozenset(genesis.producers)
        if signed.header.producer not in producers:
            raise GenesisError("the genesis block is not signed by a genesis producer")
        if signed.header != genesis_header(genesis, signed.header.producer):
            raise GenesisError("the genesis block does not match the genesis file")
        signed.verify()
        head.verify(producers)
        if head.tree_head != signed.tree_head():
            raise GenesisError("the genesis tree head does not match the genesis block")
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / DB_NAME
        if path.exists():
            raise LedgerError(f"a ledger already exists at {path}")
        conn = connect(path)
        try:
            TransparencyLog(conn)
            state = StateStore(conn)  # creates its table: must run outside the block's transaction
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('genesis', ?)", (genesis.canonical_bytes(),)
            )
            state.apply(genesis_writes(genesis))
            _insert_block(conn, signed, head)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return cls(data_dir, registry)

    # -- writing --------------------------------------------------------------------------------

    @property
    def head(self) -> SignedBlockHeader:
        """The latest durable block."""
        return self._head

    def prepare(self, tx: SignedTx) -> PreparedTx:
        return self.executor.prepare(tx)

    def produce_block(
        self, txs: Sequence[PreparedTx], time_ms: int, key: PrivateKey
    ) -> CommittedBlock:
        """Execute ``txs`` in a new block signed by ``key`` and write it.

        If every transaction is dropped, nothing is written and the head block is returned.
        """
        staged, dropped = self.stage_block(txs, time_ms, key)
        if staged is None:
            return CommittedBlock(self._head, self.tree_head(), [], dropped)
        return self.write_block(staged)

    def stage_block(
        self,
        txs: Sequence[PreparedTx],
        time_ms: int,
        key: PrivateKey,
        producer: str | None = None,
    ) -> tuple[StagedBlock | None, list[Dropped]]:
        """Execute and sign the next block on top of every staged one, without writing it.

        The block producer stages block N+1 while block N is still being written; each staged
        block must then be passed to ``write_block`` in order (or ``reset`` called).
        ``producer`` (default: the key's did) is the header's producer; a cluster node names the
        node whose cut closed the block and signs the identical header with its own key.
        """
        if producer is not None and producer not in self.genesis.producers:
            raise LedgerError(f"block producer {producer} is not a genesis producer")
        with self._write_lock:
            prev = self._tip.header
            height = prev.height + 1
            time_ms = max(time_ms, prev.time_ms + 1)
            execution = self.executor.execute(
                self._state, txs, height=height, time_ms=time_ms, first_leaf_index=self._log.size
            )
            if not execution.included:
                return None, execution.dropped
            maker = producer or key.public.did
            return self._stage(execution, height, time_ms, maker, key, None), (execution.dropped)

    def apply_block(
        self, signed: SignedBlockHeader, tree_head: SignedTreeHead, txs: Sequence[SignedTx]
    ) -> CommittedBlock:
        """Re-execute a block made elsewhere; commit only if it reproduces the header exactly."""
        with self._write_lock:
            header = signed.header
            if signed.signer is not None and signed.signer not in self.genesis.producers:
                raise LedgerError(
                    f"block {header.height}: header signature by {signed.signer}, "
                    "which is not a genesis producer"
                )
            signed.verify()
            tree_head.verify(frozenset(self.genesis.producers))
            if tree_head.tree_head != signed.tree_head():
                raise LedgerError(f"block {header.height}: tree head does not match the header")
            if header.producer not in self.genesis.producers:
                raise LedgerError(f"block {header.height}: producer is not a genesis producer")
            prev = self._tip.header
            if header.height != prev.height + 1 or header.prev_hash != prev.hash().hex():
                raise LedgerError(f"block {header.height} does not follow block {prev.height}")
            if header.time_ms <= prev.time_ms:
                raise LedgerError(
                    f"block {header.height}: time {header.time_ms} is not after "
                    f"block {prev.height}'s {prev.time_ms}"
                )
            for tx in txs:
                if tx.body.chain_id != self.chain_id:
                    raise LedgerError(f"block {header.height}: a transaction for another chain")
                tx.verify_signature()
            prepared = [self.executor.prepare(tx) for tx in txs]
            execution = self.executor.execute(
                self._state,
                prepared,
                height=header.height,
                time_ms=header.time_ms,
                first_leaf_index=self._log.size,
            )
            if execution.dropped:
                first = execution.dropped[0]
                raise LedgerError(
                    f"block {header.height}: tx {first.prepared.tx.tx_id_hex} would be dropped "
                    f"({first.error.reason})"
                )
            staged = self._stage(
                execution, header.height, header.time_ms, header.producer, None, (signed, tree_head)
            )
        return self.write_block(staged)

    def _stage(
        self,
        execution: BlockExecution,
        height: int,
        time_ms: int,
        producer: str,
        key: PrivateKey | None,
        expected: tuple[SignedBlockHeader, SignedTreeHead] | None,
    ) -> StagedBlock:
        """Compute the block's header (sign it with ``key``, or check it equals ``expected``)."""
        prev = self._tip.header
        included = execution.included
        envelopes = [item.prepared.tx.envelope_bytes() for item in included]
        leaves = [
            log_leaf_bytes(env, item.receipt_bytes)
            for env, item in zip(envelopes, included, strict=True)
        ]
        tx_root = merkle.root_from_leaf_hashes(
            [merkle.leaf_hash(item.prepared.tx.tx_id) for item in included]
        )
        receipts_root = merkle.root_from_leaf_hashes(
            [merkle.leaf_hash(item.receipt_bytes) for item in included]
        )
        writes = execution.state.writes
        state_hash = next_state_hash(bytes.fromhex(prev.state_hash), writes)
        frontier_before = self._log.frontier
        log_append = self._log.stage([merkle.leaf_hash(leaf) for leaf in leaves])
        header = BlockHeader(
            chain_id=self.chain_id,
            height=height,
            prev_hash=prev.hash().hex(),
            time_ms=time_ms,
            tx_count=len(included),
            tx_root=tx_root.hex(),
            receipts_root=receipts_root.hex(),
            state_hash=state_hash.hex(),
            log_size=self._log.size,
            log_root=self._log.root().hex(),
            producer=producer,
        )
        if expected is not None:
            signed, head = expected
            if signed.header != header:
                self._log.restore(frontier_before)
                raise LedgerError(_header_mismatch(signed.header, header))
        else:
            assert key is not None
            signed = SignedBlockHeader.sign(header, key)
            head = SignedTreeHead.sign(signed.tree_head(), key)
        first = log_append.first
        tx_rows = [
            (first + i, item.prepared.tx.tx_id, height, env, item.receipt_bytes)
            for i, (item, env) in enumerate(zip(included, envelopes, strict=True))
        ]
        self._state.stage_pending(writes)
        self._tip = signed
        return StagedBlock(signed, head, included, execution.dropped, writes, log_append, tx_rows)

    def write_block(
        self, staged: StagedBlock, meta: dict[str, bytes] | None = None
    ) -> CommittedBlock:
        """Write a staged block in one SQLite transaction; safe to call from a writer thread.

        ``meta`` rows (a cluster node's stream position) are written in the same transaction,
        so the block and them never disagree after a crash. On failure everything staged is
        discarded (``reset``) and the error is raised.
        """
        conn = self._conn
        height = staged.header.header.height
        try:
            conn.execute("BEGIN IMMEDIATE")
            for key, value in (meta or {}).items():
                _check_meta_key(key)
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES (?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
            self._log.write_staged(staged.log_append)
            self._state.apply(staged.writes)
            insert_rows(
                conn,
                "INSERT INTO txs(leaf_index, tx_id, height, envelope, receipt) VALUES",
                staged.tx_rows,
            )
            _insert_block(conn, staged.header, staged.tree_head, staged.log_append.first)
            conn.execute("COMMIT")
        except BaseException as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.reset()
            if isinstance(e, sqlite3.Error):
                raise LedgerError(f"block {height} could not be written: {e}") from e
            raise
        self._state.committed()
        self._head = staged.header
        return CommittedBlock(staged.header, staged.tree_head, staged.included, staged.dropped)

    def write_meta(self, values: dict[str, bytes]) -> None:
        """Write ``meta`` rows alone, in one transaction (e.g. the stream position after a block
        whose every transaction was dropped)."""
        conn = self._conn
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for key, value in values.items():
                    _check_meta_key(key)
                    conn.execute(
                        "INSERT INTO meta(key, value) VALUES (?, ?)"
                        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (key, value),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def meta(self, key: str) -> bytes | None:
        """A ``meta`` row as durable now (read on the writer's connection)."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def reset(self) -> None:
        """Forget every staged block: the tip, log and state go back to the durable head."""
        with self._write_lock:
            self._log.reload()
            self._state.forget()
            self._tip = self._head

    # -- reading ------------------------------------------------------------------------------

    def _reader(self) -> _Reader:
        reader: _Reader | None = getattr(self._local, "reader", None)
        if reader is None:
            reader = _Reader(self.path)
            self._local.reader = reader
        return reader

    def _snapshot(self) -> _Reader:
        """Begin a read transaction on this thread's reader: a consistent view of the blocks."""
        reader = self._reader()
        reader.conn.execute("BEGIN")
        reader.log.reload()
        return reader

    def _load_head(self) -> SignedBlockHeader:
        return _latest_header(self._conn, self.path)

    @property
    def height(self) -> int:
        return self._head.header.height

    def block(self, height: int) -> SignedBlockHeader | None:
        row = (
            self._reader()
            .conn.execute("SELECT header FROM blocks WHERE height = ?", (height,))
            .fetchone()
        )
        return None if row is None else SignedBlockHeader.model_validate_json(bytes(row[0]))

    def tree_head(self, height: int | None = None) -> SignedTreeHead:
        conn = self._reader().conn
        if height is None:
            row = conn.execute(
                "SELECT tree_head FROM blocks ORDER BY height DESC LIMIT 1"
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT tree_head FROM blocks WHERE height = ?", (height,)
            ).fetchone()
        if row is None:
            raise LedgerError(f"no block at height {height}")
        return SignedTreeHead.model_validate_json(bytes(row[0]))

    def block_txs(self, height: int, offset: int = 0, limit: int | None = None) -> list[StoredTx]:
        """The block's transactions in order; ``offset``/``limit`` read one page of a big block."""
        rows = (
            self._reader()
            .conn.execute(_BLOCK_TXS_SQL, (height, offset, -1 if limit is None else limit))
            .fetchall()
        )
        return [_stored_tx(bytes(e), bytes(r)) for e, r in rows]

    def tx(self, tx_id: bytes) -> StoredTx | None:
        row = (
            self._reader()
            .conn.execute("SELECT envelope, receipt FROM txs WHERE tx_id = ?", (tx_id,))
            .fetchone()
        )
        return None if row is None else _stored_tx(bytes(row[0]), bytes(row[1]))

    def last_nonce(self, did: str) -> int:
        raw = self._reader().state.get_raw(nonce_key(did))
        return 0 if raw is None else int(load_trusted_json(raw))

    def query(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        return self.query_at_head(contract, method, args)[1]

    def query_at_head(self, contract: str, method: str, args: dict[str, Any]) -> tuple[int, Any]:
        """A query at the latest durable block; returns that block's height with the result."""
        reader = self._snapshot()
        try:
            head = self._read_head(reader)
            result = self.executor.query(
                reader.state, contract, method, args, height=head.height, time_ms=head.time_ms
            )
            return head.height, result
        finally:
            reader.conn.execute("COMMIT")

    def _read_head(self, reader: _Reader) -> BlockHeader:
        return _latest_header(reader.conn, self.path).header

    def inclusion_proof(self, tx_id: bytes, height: int | None = None) -> InclusionBundle:
        """A bundle proving ``tx_id`` is in the log at ``height``'s tree head (default: latest)."""
        reader = self._snapshot()
        try:
            row = reader.conn.execute(
                "SELECT leaf_index, envelope, receipt FROM txs WHERE tx_id = ?", (tx_id,)
            ).fetchone()
            if row is None:
                raise ProofError(f"no committed transaction {tx_id.hex()}")
            head = self.tree_head(height)
            size = head.tree_head.tree_size
            leaf_index = int(row[0])
            if leaf_index >= size:
                raise ProofError(f"transaction {tx_id.hex()} is not in the tree at height {height}")
            path = reader.log.inclusion_proof(leaf_index, size)
        finally:
            reader.conn.execute("COMMIT")
        return build_inclusion_bundle(bytes(row[1]), bytes(row[2]), leaf_index, path, head)

    def consistency_proof(
        self, old_height: int, new_height: int | None = None
    ) -> ConsistencyBundle:
        reader = self._snapshot()
        try:
            old = self.tree_head(old_height)
            new = self.tree_head(new_height)
            proof = reader.log.consistency_proof(old.tree_head.tree_size, new.tree_head.tree_size)
        finally:
            reader.conn.execute("COMMIT")
        return ConsistencyBundle(old_head=old, new_head=new, proof=tuple(h.hex() for h in proof))

    def raw_rows(self, sql: str) -> Generator[tuple[Any, ...], None, None]:
        """Rows of a read-only SQL query on the writer's connection (for ``civic verify``)."""
        if not sql.lstrip().upper().startswith("SELECT"):
            raise LedgerError("raw_rows runs SELECT statements only")
        yield from self._conn.execute(sql)

    def close(self) -> None:
        self._conn.close()
        self._state_reader.close()
        reader: _Reader | None = getattr(self._local, "reader", None)
        if reader is not None:
            reader.conn.close()
            self._local.reader = None


def genesis_header(genesis: Genesis, producer: str) -> BlockHeader:
    """Height 0: no transactions, the genesis agencies in state, an empty log."""
    empty = merkle.EMPTY_ROOT.hex()
    state_hash = next_state_hash(genesis.hash(), genesis_writes(genesis))
    return BlockHeader(
        chain_id=genesis.chain_id,
        height=0,
        prev_hash=ZERO_HASH,
        time_ms=genesis.time_ms,
        tx_count=0,
        tx_root=empty,
        receipts_root=empty,
        state_hash=state_hash.hex(),
        log_size=0,
        log_root=empty,
        producer=producer,
    )


def _insert_block(
    conn: sqlite3.Connection, signed: SignedBlockHeader, head: SignedTreeHead, first_leaf: int = 0
) -> None:
    conn.execute(
        "INSERT INTO blocks(height, hash, header, tree_head, first_leaf) VALUES (?,?,?,?,?)",
        (
            signed.header.height,
            signed.header.hash(),
            canonical_json(signed.model_dump()),
            canonical_json(head.model_dump()),
            first_leaf,
        ),
    )


def _latest_header(conn: sqlite3.Connection, path: Path) -> SignedBlockHeader:
    row = conn.execute("SELECT header FROM blocks ORDER BY height DESC LIMIT 1").fetchone()
    if row is None:
        raise LedgerError(f"{path} has no blocks")
    return SignedBlockHeader.model_validate_json(bytes(row[0]))


def _check_meta_key(key: str) -> None:
    if key == "genesis" or not key.replace("_", "").isalnum():
        raise LedgerError(f"meta key {key!r} may not be written by a block")


def _stored_tx(envelope: bytes, receipt: bytes) -> StoredTx:
    return StoredTx(decode_tx(envelope), Receipt.model_validate_json(receipt), envelope, receipt)


def _header_mismatch(expected: BlockHeader, got: BlockHeader) -> str:
    diffs = [
        name for name in BlockHeader.model_fields if getattr(expected, name) != getattr(got, name)
    ]
    return f"block {expected.height}: re-execution differs in {', '.join(diffs)}"


__all__ = ["Chain", "CommittedBlock", "StoredTx", "WriteSet", "genesis_header"]
