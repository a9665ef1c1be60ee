"""Opening the node's SQLite database so that a block commit is atomic and durable."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from civicledger.errors import LedgerError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    header BLOB NOT NULL,       -- RFC 8785 JSON of the SignedBlockHeader
    tree_head BLOB NOT NULL,    -- RFC 8785 JSON of the SignedTreeHead after this block
    first_leaf INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS txs (
    leaf_index INTEGER PRIMARY KEY,  -- every committed transaction is one log leaf
    tx_id BLOB NOT NULL UNIQUE,
    height INTEGER NOT NULL,
    envelope BLOB NOT NULL,          -- RFC 8785 JSON of the signed envelope
    receipt BLOB NOT NULL            -- RFC 8785 JSON of the receipt
);
"""


_MAX_ROWS_PER_STATEMENT = 500


def insert_rows(
    conn: sqlite3.Connection, statement: str, rows: Sequence[tuple[Any, ...]], suffix: str = ""
) -> None:
    """Insert many rows with multi-row ``VALUES`` statements, 500 rows per statement.

    ``statement`` is ``INSERT INTO t(a, b) VALUES``. Python's ``executemany`` runs one SQLite
    step per row and releases and re-takes the GIL each time; when another thread is busy in
    Python every re-take waits for a switch interval. One statement per 500 rows takes the GIL
    once per chunk, which lets a writer thread run alongside the block producer.
    """
    if not rows:
        return
    width = len(rows[0])
    group = "(" + ",".join("?" * width) + ")"
    for start in range(0, len(rows), _MAX_ROWS_PER_STATEMENT):
        chunk = rows[start : start + _MAX_ROWS_PER_STATEMENT]
        sql = f"{statement} {','.join([group] * len(chunk))} {suffix}"
        conn.execute(sql, [value for row in chunk for value in row])


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the database in WAL mode with full fsync: a commit that returned survives a crash.

    ``readonly`` connections refuse every write (``query_only``); they are for reader threads
    and for ``civic verify``, which must never change what it checks.
    """
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(SCHEMA)
        if readonly:
            conn.execute("PRAGMA query_only=ON")
    except sqlite3.Error as e:
        raise LedgerError(f"cannot open ledger database {path}: {e}") from e
    return conn
