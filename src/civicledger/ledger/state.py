"""Contract state: a key-value store in SQLite, views that buffer writes, and the state hash.

Invariants:
- Values are RFC 8785 bytes; a deleted key is written as ``None``.
- A transaction writes into its own buffer; the buffer is merged into the block's write-set only
  if the transaction succeeds, so a failed transaction changes nothing.
- ``state_hash(h) = SHA-256("CivicLedger/state/v1" || state_hash(h-1) || digest(write-set(h)))``
  where the digest covers the write-set sorted by key bytes. Two nodes that execute the same
  transactions therefore agree byte for byte, whatever order they wrote keys in.
"""

from __future__ import annotations

import bisect
import itertools
import sqlite3
import struct
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

from civicledger.crypto.encoding import canonical_json, load_trusted_json, sha256
from civicledger.errors import LedgerError
from civicledger.ledger.store import insert_rows

STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
"""

_DELETED = 0xFFFFFFFF
WriteSet = dict[str, bytes | None]


class IndexedWrites(dict[str, bytes | None]):
    """A block's write-set that also keeps its keys sorted, so a prefix scan visits only the
    keys under its prefix: a block of thousands of transactions that each scan (a payer's lots)
    costs O(n log n), not O(n²). Keys are only ever added (a delete writes ``None``)."""

    def __init__(self) -> None:
        super().__init__()
        self.sorted_keys: list[str] = []

    def __setitem__(self, key: str, value: bytes | None) -> None:
        if key not in self:
            bisect.insort(self.sorted_keys, key)
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


def _in_range(
    writes: Mapping[str, bytes | None], prefix: str, after: str
) -> list[tuple[str, bytes | None]]:
    """The writes under ``prefix`` and strictly after ``after``, in key order."""
    if isinstance(writes, IndexedWrites):
        keys = writes.sorted_keys
        if after >= prefix:
            start = bisect.bisect_right(keys, after)
        else:
            start = bisect.bisect_left(keys, prefix)
        found = []
        for key in itertools.islice(keys, start, None):
            if not key.startswith(prefix):
                break
            found.append((key, writes[key]))
        return found
    return sorted(
        ((k, v) for k, v in writes.items() if k.startswith(prefix) and k > after),
        key=lambda kv: kv[0],
    )


def write_set_digest(writes: Mapping[str, bytes | None]) -> bytes:
    """Digest of a block's writes, independent of the order they were made in."""
    parts: list[bytes] = []
    for key in sorted(writes, key=lambda k: k.encode("utf-8")):
        raw_key = key.encode("utf-8")
        value = writes[key]
        parts.append(struct.pack(">I", len(raw_key)))
        parts.append(raw_key)
        if value is None:
            parts.append(struct.pack(">I", _DELETED))
        else:
            parts.append(struct.pack(">I", len(value)))
            parts.append(value)
    return sha256(b"".join(parts))


def next_state_hash(previous: bytes, writes: Mapping[str, bytes | None]) -> bytes:
    return sha256(b"CivicLedger/state/v1" + previous + write_set_digest(writes))


class StateStore:
    """Committed state in the node's SQLite database; writes go through ``apply``.

    The single writer (``cache_size`` > 0) keeps two layers in front of SQLite:
    - *pending* write-sets: blocks executed but not yet durable, newest last, so the next block
      can execute while an earlier one is still being written (``stage_pending``);
    - a cache of durable values, so hot keys (nonces, roles) are read from SQLite once.
    ``committed()`` moves the oldest pending write-set into the cache once its block is durable.
    Misses are read through ``read_conn``, so they never wait for a write in progress; a key a
    pending block writes is always answered from the pending layer. Readers on other
    connections use neither layer: they see durable blocks only.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        cache_size: int = 0,
        read_conn: sqlite3.Connection | None = None,
    ) -> None:
        self._conn = conn
        self._read = read_conn or conn
        self._cache: dict[str, bytes | None] = {}
        self._cache_size = cache_size
        self._pending: deque[Mapping[str, bytes | None]] = deque()
        self._lock = threading.Lock()
        conn.executescript(STATE_SCHEMA)

    def get_raw(self, key: str) -> bytes | None:
        with self._lock:
            for writes in reversed(self._pending):
                if key in writes:
                    return writes[key]
            if key in self._cache:
                return self._cache[key]
        row = self._read.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        value = None if row is None else bytes(row[0])
        if self._cache_size:
            with self._lock:
                if len(self._cache) >= self._cache_size:
                    self._cache.clear()
                self._cache[key] = value
        return value

    def scan_raw(self, prefix: str, limit: int = 1000, after: str = "") -> list[tuple[str, bytes]]:
        """Keys starting with ``prefix`` and after ``after``, in byte order (a defined order)."""
        with self._lock:
            pending = list(self._pending)
        extra = sum(len(_in_range(w, prefix, after)) for w in pending)
        rows = self._read.execute(
            "SELECT key, value FROM state WHERE key >= ? AND key < ? AND key > ? "
            "ORDER BY key LIMIT ?",
            (prefix, prefix + "\U0010ffff", after, limit + extra),
        ).fetchall()
        items = [(k, bytes(v)) for k, v in rows]
        for writes in pending:
            items = _overlay(items, writes, prefix, limit + extra, after)
        return items[:limit]

    def stage_pending(self, writes: Mapping[str, bytes | None]) -> None:
        """Make a block's writes visible to later blocks before they are durable."""
        with self._lock:
            self._pending.append(writes)

    def committed(self) -> None:
        """The oldest pending block is durable: its writes move into the cache."""
        with self._lock:
            writes = self._pending.popleft()
            if self._cache_size:
                if len(self._cache) + len(writes) >= self._cache_size:
                    self._cache.clear()
                self._cache.update(writes)

    def forget(self) -> None:
        """Drop pending writes and the cache (after a failed write: re-read from SQLite)."""
        with self._lock:
            self._pending.clear()
            self._cache.clear()

    def apply(self, writes: Mapping[str, bytes | None]) -> None:
        """Write a block's write-set; the caller owns the SQLite transaction."""
        upserts = [(k, v) for k, v in writes.items() if v is not None]
        deletes = [(k,) for k, v in writes.items() if v is None]
        try:
            insert_rows(
                self._conn,
                "INSERT INTO state(key, value) VALUES",
                upserts,
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )
            if deletes:
                self._conn.executemany("DELETE FROM state WHERE key = ?", deletes)
        except sqlite3.Error as e:
            raise LedgerError(f"cannot write state: {e}") from e


def _overlay(
    base: list[tuple[str, bytes]],
    writes: Mapping[str, bytes | None],
    prefix: str,
    limit: int,
    after: str = "",
) -> list[tuple[str, bytes]]:
    """``base`` with buffered ``writes`` under ``prefix`` (and after ``after``) laid over it.

    Python compares strings by code point, which is the UTF-8 byte order SQLite sorts by.
    """
    merged = dict(base)
    for key, value in _in_range(writes, prefix, after):
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return sorted(merged.items(), key=lambda kv: kv[0].encode("utf-8"))[:limit]


class BlockState:
    """The state as a block under construction sees it: committed state plus the block's writes."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self.writes: IndexedWrites = IndexedWrites()

    def get_raw(self, key: str) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self._store.get_raw(key)

    def scan_raw(self, prefix: str, limit: int, after: str = "") -> list[tuple[str, bytes]]:
        # Only the block's writes under the prefix can hide or add rows of the base scan.
        shadowing = len(_in_range(self.writes, prefix, after))
        base = self._store.scan_raw(prefix, limit + shadowing, after)
        return _overlay(base, self.writes, prefix, limit, after)

    def begin_tx(self) -> TxState:
        return TxState(self)


class TxState:
    """One transaction's buffered writes over a BlockState; merged only on success."""

    def __init__(self, block: BlockState) -> None:
        self._block = block
        self.writes: WriteSet = {}

    def get_raw(self, key: str) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self._block.get_raw(key)

    def get(self, key: str) -> Any:
        """Parsed value, or None when absent; a fresh object, so mutating it changes nothing."""
        raw = self.get_raw(key)
        if raw is None:
            return None
        if raw == b"true":  # role and membership flags: the most read values
            return True
        if raw.isdigit() and len(raw) < 16:  # nonces and counters (canonical: no leading zeros)
            return int(raw)
        if raw[:1] == b'"' and b"\\" not in raw:  # a string with no escapes (agency ids)
            return raw[1:-1].decode("utf-8")
        return load_trusted_json(raw)

    def put(self, key: str, value: Any) -> None:
        if value is None:
            raise LedgerError("store None by calling delete()")
        self.writes[key] = canonical_json(value)

    def delete(self, key: str) -> None:
        self.writes[key] = None

    def scan(self, prefix: str, limit: int = 1000, after: str = "") -> Iterator[tuple[str, Any]]:
        """Keys under ``prefix`` strictly after the full key ``after``, in key byte order."""
        base = self._block.scan_raw(prefix, limit + len(self.writes), after)
        for key, raw in _overlay(base, self.writes, prefix, limit, after):
            yield key, load_trusted_json(raw)

    def commit(self) -> None:
        self._block.writes.update(self.writes)
        self.writes = {}
