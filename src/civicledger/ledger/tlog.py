"""A Merkle transparency log (RFC 9162 hashing) stored in SQLite.

Storage: ``log_nodes(level, idx, hash)`` holds the hash of every complete aligned subtree, node
``(level, idx)`` covering leaves ``[idx << level, (idx + 1) << level)``; level 0 holds the leaf
hashes. ``log_meta('size')`` holds the number of leaves, written in the same statement batch as
the nodes so it is O(1) to read and never disagrees with them after a commit.

Invariants:
- Nodes are only ever inserted, never updated: a node is written once, when it becomes complete.
- ``size`` in memory equals ``log_meta('size')`` in the caller's current transaction, and the
  in-memory frontier (``CompactRange``) holds the stored peaks of a tree of that size.
- This object never begins, commits or rolls back: the caller owns the transaction, so a block
  and its log nodes commit atomically. After a rollback the caller must call ``reload()``.
- One writer per database: another connection appending behind this object's back is only seen
  after ``reload()``.

Roots and proofs at any past size need O(log n) node reads, because every node they touch,
except along the right edge of that past tree, is a stored complete subtree.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from civicledger.crypto.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    StoredNode,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    node_hash,
)
from civicledger.errors import EncodingError, LedgerError, ProofError
from civicledger.ledger.store import insert_rows

__all__ = ["TransparencyLog"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS log_nodes (
        level INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS log_meta (key TEXT PRIMARY KEY, value INTEGER)",
)
_SIZE_KEY = "size"
_READ_NODE = "SELECT hash FROM log_nodes WHERE level = ? AND idx = ?"
_INSERT_NODES = "INSERT INTO log_nodes (level, idx, hash) VALUES"
_WRITE_SIZE = (
    "INSERT INTO log_meta (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


@dataclass(frozen=True)
class StagedAppend:
    """Leaves hashed into the in-memory frontier but not yet written (see ``stage``)."""

    first: int
    nodes: list[StoredNode]
    size: int


class TransparencyLog:
    """An append-only Merkle log over an open SQLite connection; see the module invariants."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._frontier = CompactRange()
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
        except sqlite3.Error as e:
            raise LedgerError(f"cannot create the log tables: {e}") from e
        self.reload()

    @property
    def size(self) -> int:
        """Number of leaves in the log."""
        return self._frontier.size

    @property
    def frontier(self) -> CompactRange:
        """A copy of the in-memory frontier (the peaks of the current tree)."""
        return self._frontier.copy()

    def reload(self) -> None:
        """Re-read size and frontier from the database, e.g. after the caller rolled back."""
        try:
            row = self._conn.execute(
                "SELECT value FROM log_meta WHERE key = ?", (_SIZE_KEY,)
            ).fetchone()
        except sqlite3.Error as e:
            raise LedgerError(f"cannot read the log size: {e}") from e
        size = 0 if row is None else row[0]
        if not isinstance(size, int) or size < 0:
            raise LedgerError(f"stored log size is not a non-negative integer: {size!r}")
        if size > 0 and self._read_node(0, size - 1) is None:
            raise LedgerError(f"log size is {size} but leaf {size - 1} is missing")
        if self._read_node(0, size) is not None:
            raise LedgerError(f"log size is {size} but leaf {size} is stored")
        peaks = []
        for level, idx in CompactRange.peaks(size):
            peaks.append(self._node(level, idx))
        self._frontier = CompactRange(size, peaks)

    def root(self, size: int | None = None) -> bytes:
        """The tree head at ``size`` (default: now); a past size costs O(log n) reads."""
        if size is None or size == self.size:
            return self._frontier.root()
        self._check_size(size)
        if size == 0:
            return EMPTY_ROOT
        return self.subtree(0, size)

    def append_leaves(self, datas: Sequence[bytes]) -> int:
        """Append leaves (their data, hashed here); return the index of the first one.

        Writes inside the caller's transaction and neither begins nor commits.
        """
        return self.append_leaf_hashes([leaf_hash(d) for d in datas])

    def append_leaf_hashes(self, hashes: Sequence[bytes]) -> int:
        """Append already-hashed leaves; return the index of the first one."""
        frontier = self._frontier
        staged = self.stage(hashes)
        try:
            self.write_staged(staged)
        except BaseException:
            self._frontier = frontier
            raise
        return staged.first

    def restore(self, frontier: CompactRange) -> None:
        """Put back a frontier taken before ``stage`` (a staged append that will not be written)."""
        self._frontier = frontier

    def stage(self, hashes: Sequence[bytes]) -> StagedAppend:
        """Hash leaves into the frontier without writing; ``root()`` and ``size`` move on.

        Lets a block producer compute the next header while an earlier block is still being
        written. The caller must ``write_staged`` each staged append in order, or ``reload()``.
        """
        frontier = self._frontier.copy()
        try:
            nodes = frontier.extend(hashes)
        except EncodingError as e:
            raise EncodingError(f"cannot append to the log: {e.message}") from e
        first = self._frontier.size
        self._frontier = frontier
        return StagedAppend(first, nodes, frontier.size)

    def write_staged(self, staged: StagedAppend) -> None:
        """Write a staged append inside the caller's transaction (any thread)."""
        if not staged.nodes:
            return
        try:
            insert_rows(self._conn, _INSERT_NODES, staged.nodes)
            self._conn.execute(_WRITE_SIZE, (_SIZE_KEY, staged.size))
        except sqlite3.Error as e:
            raise LedgerError(
                f"cannot append {staged.size - staged.first} leaves at {staged.first}: {e}"
            ) from e

    def leaf_hash(self, index: int) -> bytes:
        """The stored hash of leaf ``index``."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.size:
            raise ProofError(f"leaf index {index!r} is not in a log of size {self.size}")
        return self._node(0, index)

    def subtree(self, start: int, end: int) -> bytes:
        """MTH of leaves ``[start, end)``: one read if it is a complete aligned subtree.

        Otherwise it splits at the largest power of two below ``end - start``; for the ranges
        proofs ask for, only the right part can be incomplete, so this costs O(log n) reads.
        """
        if not 0 <= start < end <= self.size:
            raise ProofError(f"range [{start}, {end}) is not in a log of size {self.size}")
        return self._subtree(start, end)

    def _subtree(self, start: int, end: int) -> bytes:
        width = end - start
        if width & (width - 1) == 0 and start % width == 0:
            level = width.bit_length() - 1
            return self._node(level, start >> level)
        mid = start + (1 << ((width - 1).bit_length() - 1))
        return node_hash(self._subtree(start, mid), self._subtree(mid, end))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Audit path of leaf ``index`` in the tree of ``size`` leaves (default: now)."""
        size = self.size if size is None else size
        self._check_size(size)
        return [self._subtree(s, e) for s, e in inclusion_ranges(index, size)]

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Proof that the tree of ``old_size`` leaves is a prefix of that of ``new_size``."""
        new_size = self.size if new_size is None else new_size
        self._check_size(new_size)
        return [self._subtree(s, e) for s, e in consistency_ranges(old_size, new_size)]

    def _check_size(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= self.size:
            raise ProofError(f"tree size {size!r} is not in 0..{self.size}")

    def _read_node(self, level: int, idx: int) -> bytes | None:
        try:
            row = self._conn.execute(_READ_NODE, (level, idx)).fetchone()
        except sqlite3.Error as e:
            raise LedgerError(f"cannot read log node ({level}, {idx}): {e}") from e
        if row is None:
            return None
        value = row[0]
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise LedgerError(f"log node ({level}, {idx}) is not a {HASH_SIZE}-byte hash")
        return value

    def _node(self, level: int, idx: int) -> bytes:
        value = self._read_node(level, idx)
        if value is None:
            raise LedgerError(f"log node ({level}, {idx}) is missing")
        return value
